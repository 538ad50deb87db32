"""``radsynth bench``: argument parsing and the run (kept here so radsynth/cli.py stays thin)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from radsynth.errors import InputError

HELP = "speed and memory benchmarks"


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes such as 128,256,512, got '{text}'") from None


def add_bench_parser(subparsers: argparse._SubParsersAction, help_text: str = HELP) -> None:
    from radsynth.bench.cases import CASES

    bench = subparsers.add_parser("bench", help=help_text, description=help_text + ": training it/s, synthesis images/s and peak memory "
                                  "of every synthesizer, the UNet segmenter and ResNet18, each also as a plain eager fp32 reference")
    bench.add_argument("--quick", action="store_true", help="narrow nets at 64 px, 2 timed steps (about 25 s on 2 idle CPU cores)")
    bench.add_argument("--sizes", type=_sizes, default=None, help="image sides, e.g. 128,256,512 (default; --quick: 64)")
    bench.add_argument("--cases", default=None, help=f"comma-separated subset of {','.join(CASES)}")
    bench.add_argument("--steps", type=int, default=None, help="timed training steps per case (default 10; --quick 2)")
    bench.add_argument("--no-reference", action="store_true", help="skip the plain reference loop (no ratios)")
    bench.add_argument("--threads", type=int, default=None, help="torch CPU threads for the run (default: torch's own, or OMP_NUM_THREADS)")
    bench.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    bench.add_argument("--out", type=Path, default=Path("bench-out"), help="folder for bench.json and bench.md (default bench-out)")


def run_bench(args: argparse.Namespace) -> int:
    import torch

    from radsynth.bench.report import machine, write_report
    from radsynth.bench.suite import BenchOptions, jobs, run_suite
    from radsynth.progress import progress_bar
    from radsynth.training.trainer import resolve_device

    changes = {}
    if args.sizes is not None:
        changes["sizes"] = args.sizes
    if args.cases:
        changes["cases"] = tuple(c.strip() for c in args.cases.split(",") if c.strip())
    if args.steps is not None:
        if args.steps < 1:
            raise InputError("--steps", f"must be >= 1, got {args.steps}")
        changes["steps"] = args.steps
    if args.no_reference:
        changes["reference"] = False
    options = BenchOptions.quick_run(**changes) if args.quick else BenchOptions(**changes)
    options.check()
    if args.threads is not None:
        if args.threads < 1:
            raise InputError("--threads", f"must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)  # the CLI process only; recorded in bench.json / bench.md
    device = resolve_device(args.device)
    info = machine(device)
    with progress_bar("benchmarking", len(jobs(options))) as update:
        rows, seconds = run_suite(options, device, lambda done, _row: update(done))
    json_path, md_path = write_report(args.out, rows, info, options, seconds)
    sys.stdout.write(md_path.read_text(encoding="utf-8"))
    print(f"\nwrote {json_path} and {md_path}")
    return 0
