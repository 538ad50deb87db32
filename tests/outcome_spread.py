"""Run the ``outcome`` tests under several CPU kernel choices and tabulate what each measured.

    python tests/outcome_spread.py [--out DIR] [pytest args...]

torch picks its CPU kernels by instruction set (ATen: ``ATEN_CPU_CAPABILITY``; convolutions: oneDNN,
``ONEDNN_MAX_CPU_ISA``; matrix products: MKL, ``MKL_ENABLE_INSTRUCTIONS``), so the same seed trains along another path on another CPU. Each setting below
runs ``pytest -m outcome`` with ``RADSYNTH_OUTCOME_LOG`` set (see the ``outcome`` fixture in
conftest.py); the table lists every recorded value per setting with its min and max, which is the
spread each threshold must leave room for. Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from other_cpu import AVX2_MACHINE, PLAIN_MACHINE  # noqa: E402

# name -> (environment, pytest-xdist workers): with 2 workers each keeps one torch thread (as under
# make test); with none, torch uses every core. The two "machines" are tests/other_cpu.py's.
SETTINGS = {
    "native, 1 thread": ({}, 2),
    "AVX2 machine": (AVX2_MACHINE, 2),
    "plain machine": (PLAIN_MACHINE, 2),
    "native, 2 threads": ({}, 0),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outcome-spread"))
    parser.add_argument("--only", action="append", help="run only the named settings")
    args, pytest_args = parser.parse_known_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[1]
    for name, (env, n_workers) in SETTINGS.items():
        if args.only and name not in args.only:
            continue
        log = args.out / (name.replace(" ", "_").replace(",", "").replace("+", "and") + ".jsonl")
        log.unlink(missing_ok=True)
        workers = ["-n", str(n_workers), "--dist", "loadfile"] if n_workers else []
        command = [sys.executable, "-m", "pytest", "-q", "-m", "outcome", "-p", "no:cacheprovider", *workers, *pytest_args]
        print(f"== {name}: {' '.join(f'{k}={v}' for k, v in env.items())}", flush=True)
        subprocess.run(command, cwd=root, env={**os.environ, **env, "RADSYNTH_OUTCOME_LOG": str(log.resolve())}, check=False)
    print(table(args.out))
    return 0


def table(folder: Path) -> str:
    """Markdown: one row per (test, measured name), one column per setting, then min and max."""
    values: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    settings = []
    for log in sorted(folder.glob("*.jsonl")):
        settings.append(log.stem)
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            values[(entry["test"].split("::")[-1], entry["name"])][log.stem] = entry["value"]
    lines = ["| test | value | " + " | ".join(settings) + " | min | max |", "|---|---|" + "---|" * (len(settings) + 2)]
    for (test, name), by_setting in sorted(values.items()):
        cells = [f"{by_setting[s]:.4g}" if s in by_setting else "" for s in settings]
        lines.append(f"| {test} | {name} | " + " | ".join(cells) + f" | {min(by_setting.values()):.4g} | {max(by_setting.values()):.4g} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
