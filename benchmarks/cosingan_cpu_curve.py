"""CoSinGAN on a CPU: fidelity of the synthetic disease against CPU minutes, one row per schedule (issue 21).

For each variant (a name and ``--set`` overrides of a preset) the script trains CoSinGAN on one slice
of a prepared set, synthesizes one image per labelled condition of that set (``--split``), and
measures, against the real slices of the same conditions (``radsynth.quality.fidelity``):

* GGO - lung and consolidation - lung mean intensity offsets as ratios to the real offsets;
* lung high-frequency energy (mean |4-neighbour Laplacian| inside the lung) as a ratio to real;
* the training slice's own reconstruction PSNR at the largest scale (run.json);
* training CPU minutes (user + system time of the training process) and wall minutes.

Variants run one after another; a variant whose ``fidelity.json`` exists is read, not rerun, so a cut
run continues where it stopped. Output: ``OUT/curve.json`` and ``OUT/curve.md``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cosingan_cpu_curve.py --data PREPARED_128 --slice 000032 \\
        --variant quick: '--variant=resize-reuse:upsample=resize;reuse_weights=true' --out OUT
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from radsynth.quality.fidelity import OFFSETS, WITHIN, fidelity, ratios
from radsynth.quality.sets import load_set

MEASURES = (*OFFSETS[:2], "lung_hf_energy", *WITHIN[:2])  # GGO / consolidation offsets, texture, the same offsets within images


def parse_variant(text: str) -> tuple[str, list[str]]:
    """'name:k=v;k=v' -> (name, ['k=v', 'k=v']); ';' between settings, since list values hold commas."""
    name, _, settings = text.partition(":")
    if not name:
        raise SystemExit(f"--variant needs a name before ':', got {text!r}")
    return name, [s for s in settings.split(";") if s]


def load(path: Path, split: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, S, S) images in [-1, 1] and (N, S, S) labels of a prepared or synthetic set (one split, or all)."""
    images = load_set(path, keep=(lambda row: row["split"] == split) if split else None)
    return images.images, images.labels


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_variant(args: argparse.Namespace, name: str, settings: list[str], real: dict) -> dict:
    out = args.out / name
    done = out / "fidelity.json"
    if done.exists():
        return json.loads(done.read_text())
    cli = [sys.executable, "-m", "radsynth"]
    sets = [f"--set={s}" for s in settings]
    cpu0, wall0 = children_cpu_s(), time.time()
    subprocess.run([*cli, "train", "cosingan", "--data", str(args.data), "--slice", args.slice, "--preset", args.preset, *sets,
                    "--seed", str(args.seed), "--out", str(out / "run"), "--force", "--device", "cpu"], check=True)
    train_cpu, train_wall = children_cpu_s() - cpu0, time.time() - wall0
    row: dict = {"name": name, "settings": settings, "preset": args.preset, "train_cpu_min": train_cpu / 60, "train_wall_min": train_wall / 60}
    record = json.loads((out / "run" / "run.json").read_text())
    psnr = record.get("reconstruction_psnr", {})
    row["reconstruction_psnr"] = psnr
    for diversify in args.diversify:
        synth = out / f"synth-{diversify}"
        subprocess.run([*cli, "synth", str(out / "run"), "--conditions", str(args.data), *(["--split", args.split] if args.split else []),
                        "--diversify", diversify, "--seed", str(args.seed), "--out", str(synth), "--force", "--device", "cpu"], check=True)
        measured = fidelity(*load(synth, None))
        row[diversify] = {"fidelity": measured, "ratio": ratios(measured, real)}
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(row, indent=1, default=float))
    return row


def largest_scale_psnr(row: dict) -> float:
    """Stage-2 PSNR at the largest scale from run.json's reconstruction_psnr (NaN when absent)."""
    psnr = row.get("reconstruction_psnr") or {}
    if not psnr:
        return math.nan
    return float(psnr[max(psnr, key=int)]["stage2"])


def table(rows: list[dict], diversify: list[str]) -> str:
    head = "| variant | settings | train CPU min | train wall min | recon PSNR (largest scale, dB) |"
    for d in diversify:
        head += f" {d}: GGO-lung / cons-lung / lung HF / within images: GGO-lung / cons-lung (x real) |"
    lines = [head, "|" + "---|" * (5 + len(diversify))]
    for row in rows:
        cells = [row["name"], " ".join(row["settings"]) or "(preset)", f"{row['train_cpu_min']:.1f}", f"{row['train_wall_min']:.1f}",
                 f"{largest_scale_psnr(row):.1f}"]
        for d in diversify:
            r = row[d]["ratio"]
            cells.append(" / ".join(f"{r[m]:.2f}" for m in MEASURES))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="prepared set (conditions and real reference)")
    parser.add_argument("--slice", required=True, help="the one training slice's id")
    parser.add_argument("--variant", action="append", required=True, help="NAME:k=v;k=v (settings over --preset); repeatable")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--split", default="train", help="conditions of this split ('' = all)")
    parser.add_argument("--diversify", action="append", default=None, help="none (default), rc, dropout; repeatable")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.diversify = args.diversify or ["none"]
    args.out.mkdir(parents=True, exist_ok=True)
    real = fidelity(*load(args.data, args.split or None))
    rows = [run_variant(args, *parse_variant(v), real) for v in args.variant]
    (args.out / "curve.json").write_text(json.dumps({"data": str(args.data), "slice": args.slice, "real": real, "rows": rows}, indent=1, default=float))
    text = table(rows, args.diversify)
    (args.out / "curve.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
