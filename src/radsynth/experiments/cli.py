"""The ``radsynth experiment`` and ``radsynth report`` verbs (parsers and what they run)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_experiment_parser(sub: argparse._SubParsersAction, text: str) -> None:
    from radsynth.experiments.run import EXPERIMENTS

    parser = sub.add_parser("experiment", help=text, description=text + ". A finished stage is not recomputed when the command runs again.")
    parser.add_argument("name", help=", ".join(EXPERIMENTS))
    parser.add_argument("--data", type=Path, required=True, help="the real set: prepared, or any source `radsynth data prepare` reads")
    parser.add_argument("--out", type=Path, required=True, help="run directory (resumed when it exists)")
    presets = "; ".join(f"{name}: {', '.join(experiment.presets)}" for name, experiment in EXPERIMENTS.items())
    parser.add_argument("--preset", default="quick", help=f"quick (CPU, default) or another of the experiment's presets ({presets}; paper: the paper's settings)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--redo", action="append", default=[], metavar="STAGE", help="run this stage again even if done (repeatable)")
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN", help="run only the stages matching this shell pattern, e.g. 'seg-*' (repeatable)")
    parser.add_argument("--force", action="store_true", help="start the whole run directory over")
    parser.add_argument("--classify-data", type=Path, default=None, metavar="DIR",
                        help="cosingan: a second set, with slices with and without infection (e.g. ct-rp9-dev), for the "
                             "classification Tables 2-3; default the --data set")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting of the preset (repeatable; dotted keys reach nested ones, e.g. "
                             "segment.class_weights=[1,1,1] or seeds=[0]); a run directory resumes only with the same settings")


def add_report_parser(sub: argparse._SubParsersAction, text: str) -> None:
    parser = sub.add_parser("report", help=text, description=text + " (report/index.html) again from its finished stages")
    parser.add_argument("run", type=Path, help="a folder written by `radsynth experiment` or `radsynth demo`")


def run_experiment_verb(args: argparse.Namespace) -> int:
    from radsynth.config import parse_set
    from radsynth.experiments.run import run_experiment

    overrides = parse_set(args.set)
    if args.classify_data:
        overrides["classify_data"] = str(args.classify_data.resolve())
    page = run_experiment(args.name, args.data, args.out, args.preset, overrides, seed=args.seed, device=args.device, force=args.force,
                          redo=args.redo, only=args.only)
    print(f"wrote {page}")
    return 0


def run_report_verb(args: argparse.Namespace) -> int:
    from radsynth.experiments.run import rebuild_report

    print(f"wrote {rebuild_report(args.run)}")
    return 0
