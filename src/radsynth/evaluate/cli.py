"""``radsynth evaluate``: argument parsing and printing only (the work is in ``segment`` and ``tables``).

    radsynth evaluate segment --train SPEC --test DIR [--test DIR2 ...] --model unet|enet --out DIR
    radsynth evaluate table RESULTS_DIR [RESULTS_DIR ...] [--out FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "train segmenters / classifiers on real, synthetic and mixed sets; test on real patients"


def add_evaluate_parser(subparsers: argparse._SubParsersAction, help_text: str = HELP) -> None:
    """Register the ``evaluate`` verb and its sub-verbs on the top-level subparsers."""
    from radsynth.evaluate import SPEC_HELP  # light: no torch import while building the parser

    evaluate = subparsers.add_parser("evaluate", help=help_text, description=help_text)
    verbs = evaluate.add_subparsers(dest="evaluate_verb", required=True, metavar="{segment,table}")

    segment = verbs.add_parser(
        "segment",
        help="train a UNet / ENet on a protocol's training set and score it on real held-out patients",
        description="Train a segmenter (CoSinGAN 3.3.2's recipe by default) on the training set SPEC names and "
        "report DSC, sensitivity and specificity with 95% Student-t intervals on the real test patients.",
    )
    segment.add_argument("--train", required=True, metavar="SPEC", help=SPEC_HELP.replace("%", "%%"))
    segment.add_argument("--test", type=Path, action="append", required=True, metavar="DIR", help="prepared REAL set whose --test-split is scored (repeatable: several sets, e.g. modalities)")
    segment.add_argument("--real", type=Path, default=None, metavar="DIR", help="prepared set whose train split is the real training data (default: the first --test)")
    segment.add_argument("--test-split", default="test", help="split of the --test sets to score (default test)")
    segment.add_argument("--model", choices=("unet", "enet"), default=None, help="segmenter (default unet)")
    segment.add_argument("--out", type=Path, required=True, help="output folder (results.json, results.md, segmenter.safetensors, checkpoints)")
    segment.add_argument("--name", default=None, help="row label in the tables (default: OC-TS, Sin-TS, Two-TS or the synthetic folder's name)")
    segment.add_argument("--preset", default=None, help="paper (CoSinGAN 3.3.2, the defaults) or quick (CPU minutes)")
    segment.add_argument("--config", type=Path, default=None, help="YAML file of config values")
    segment.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config value (repeatable), e.g. epochs=10")
    segment.add_argument("--seed", type=int, default=None)
    segment.add_argument("--size", type=int, default=None, help="network input side in px (train and test images are resized to it)")
    segment.add_argument("--epochs", type=int, default=None)
    segment.add_argument("--group-by", default=None, metavar="COLUMN", help="report subgroups by this test-manifest column, or 'set' (default with several --test)")
    segment.add_argument("--ci", choices=("patient", "fold"), default=None, help="interval units: test patients (CoSinGAN, default) or folds (Jiang)")
    segment.add_argument("--folds", type=int, default=None, help="folds for --ci fold (default 10, Jiang)")
    segment.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    segment.add_argument("--resume", action="store_true", help="continue the training in --out from its last checkpoint")
    segment.add_argument("--force", action="store_true", help="replace an existing output folder")

    table = verbs.add_parser("table", help="one Markdown table (CoSinGAN Table 4 and Jiang Tables III-IV shapes) from several results")
    table.add_argument("results", type=Path, nargs="+", help="output folders of `evaluate segment` (or their results.json)")
    table.add_argument("--out", type=Path, default=None, help="write the Markdown here instead of printing it")
    table.add_argument("--force", action="store_true", help="replace an existing --out file")


def _segment_config(args: argparse.Namespace):
    from radsynth.config import build_config, load_yaml, merge, parse_set
    from radsynth.evaluate.config import PRESETS, SegmentConfig

    overrides = load_yaml(args.config) if args.config else {}
    overrides = merge(overrides, parse_set(args.set))
    group_by = args.group_by if args.group_by is not None else ("set" if len(args.test) > 1 else None)
    flags = {"model": args.model, "seed": args.seed, "size": args.size, "epochs": args.epochs, "group_by": group_by, "ci": args.ci, "folds": args.folds}
    overrides = merge(overrides, {k: v for k, v in flags.items() if v is not None})
    return build_config(SegmentConfig, PRESETS, args.preset, overrides)


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``radsynth evaluate ...``; returns the exit code."""
    from radsynth.atomic import atomic_write_text
    from radsynth.errors import InputError
    from radsynth.evaluate.segment import TABLE, evaluate_segmentation, read_results
    from radsynth.evaluate.tables import dsc_table, score_table

    if args.evaluate_verb == "segment":
        config = _segment_config(args)
        results = evaluate_segmentation(
            args.train, args.test, args.out, config, real=args.real, test_split=args.test_split, name=args.name,
            device=args.device, resume=args.resume, force=args.force,
        )
        print(dsc_table([results]))
        ts = results["training_set"]
        print(f"\ntrained {config.model} on {ts['name']} ({ts['steps']} steps, {results['timing']['train_s']:.0f} s); results in {args.out / TABLE}")
        return 0
    all_results = [read_results(path) for path in args.results]
    text = dsc_table(all_results) + "\n\n" + score_table(all_results) + "\n"
    if args.out is None:
        print(text)
        return 0
    if args.out.exists() and not args.force:
        raise InputError(args.out, "already exists; pass --force to replace it")
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0
