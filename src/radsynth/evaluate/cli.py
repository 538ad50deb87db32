"""``radsynth evaluate``: argument parsing and printing only (the work is in ``segment`` and ``tables``).

    radsynth evaluate segment --train SPEC --test DIR [--test DIR2 ...] --model unet|enet --out DIR
    radsynth evaluate classify --train SPEC --test DIR --model resnet18|resnet50|vgg16|densenet121 --out DIR
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
    verbs = evaluate.add_subparsers(dest="evaluate_verb", required=True, metavar="{segment,classify,table}")

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

    classify = verbs.add_parser(
        "classify",
        help="train a ResNet / VGG / DenseNet classifier on real, synthetic or mixed images and score it on real held-out patients",
        description="Train a classifier (presets: cosingan (default), cosingan-512, zunair, liang, liang-transfer, quick) on the training "
        "set SPEC names and report sensitivity, specificity, accuracy, precision, recall, F1, false negatives and skew, with "
        "confidence, Grad-CAM and UMAP figures.",
    )
    classify.add_argument("--train", required=True, metavar="SPEC", help="oc | real | sin:ID | two:ID1,ID2 | synth:DIR[,DIR2] | add:DIR[,DIR2] | add:P:DIR | replace:P:DIR")
    classify.add_argument("--test", type=Path, required=True, metavar="DIR", help="prepared REAL set whose --test-split is scored")
    classify.add_argument("--real", type=Path, default=None, metavar="DIR", help="prepared set whose train split is the real training data (default: --test)")
    classify.add_argument("--test-split", default="test")
    classify.add_argument("--model", choices=("resnet18", "resnet50", "vgg16", "densenet121"), default=None, help="classifier (default resnet18)")
    classify.add_argument("--classes", default=None, help="comma list, positive class last, e.g. Normal,COVID-19 (default: CT absent,present or all classes)")
    classify.add_argument("--skew", type=float, default=None, help="add synthetic positives only until negatives / positives reaches this (add:DIR)")
    classify.add_argument("--weights", type=Path, default=None, help="local ImageNet state dict (torchvision key layout); default: from scratch")
    classify.add_argument("--out", type=Path, required=True, help="output folder (results.json, results.md, figures/, classifier.safetensors)")
    classify.add_argument("--name", default=None, help="row label in the tables")
    classify.add_argument("--preset", default=None, help="cosingan (default), cosingan-512, zunair, liang, liang-transfer, quick")
    classify.add_argument("--config", type=Path, default=None, help="YAML file of config values")
    classify.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config value (repeatable)")
    classify.add_argument("--seed", type=int, default=None)
    classify.add_argument("--size", type=int, default=None)
    classify.add_argument("--epochs", type=int, default=None)
    classify.add_argument("--no-figures", action="store_true", help="skip the confidence / Grad-CAM / occlusion / UMAP figures and the saliency localisation scores")
    classify.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    classify.add_argument("--resume", action="store_true", help="continue the training in --out from its last checkpoint")
    classify.add_argument("--force", action="store_true", help="replace an existing output folder")

    table = verbs.add_parser("table", help="one Markdown table from several results (segmentation: CoSinGAN Table 4, Jiang Tables III-IV; classification: Zunair Tables 1-2, CoSinGAN Tables 2-3)")
    table.add_argument("results", type=Path, nargs="+", help="output folders of `evaluate segment` or `evaluate classify` (or their results.json)")
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


def _classify_config(args: argparse.Namespace):
    from radsynth.config import build_config, load_yaml, merge, parse_set
    from radsynth.evaluate.classify_config import PRESETS, ClassifyConfig

    overrides = load_yaml(args.config) if args.config else {}
    overrides = merge(overrides, parse_set(args.set))
    flags = {"model": args.model, "seed": args.seed, "size": args.size, "epochs": args.epochs, "classes": args.classes, "skew": args.skew}
    overrides = merge(overrides, {k: v for k, v in flags.items() if v is not None})
    return build_config(ClassifyConfig, PRESETS, args.preset, overrides)


def _run_classify(args: argparse.Namespace) -> int:
    from radsynth.evaluate.classify import TABLE, evaluate_classification
    from radsynth.evaluate.classify_tables import cosingan_table, zunair_table

    config = _classify_config(args)
    results = evaluate_classification(
        args.train, args.test, args.out, config, real=args.real, test_split=args.test_split, name=args.name, weights=args.weights,
        device=args.device, resume=args.resume, force=args.force, figures=not args.no_figures,
    )
    print(zunair_table([results]) + "\n\n" + cosingan_table([results]))
    ts = results["training_set"]
    print(f"\ntrained {config.model} ({results['initialisation']['kind']}) on {ts['name']} ({ts['steps_run']} steps, {results['timing']['train_s']:.0f} s); results in {args.out / TABLE}")
    return 0


def _table_text(paths: list[Path]) -> str:
    """Segmentation results -> CoSinGAN Table 4 + Jiang tables; classification results -> Zunair + CoSinGAN tables."""
    import json

    from radsynth.errors import InputError
    from radsynth.evaluate.classify import RESULTS_FORMAT as CLASSIFY_FORMAT
    from radsynth.evaluate.classify import read_classify_results
    from radsynth.evaluate.segment import read_results
    from radsynth.evaluate.tables import dsc_table, score_table

    def is_classify(path: Path) -> bool:
        file = path / "results.json" if path.is_dir() else path
        try:
            return json.loads(file.read_text(encoding="utf-8")).get("format") == CLASSIFY_FORMAT
        except (OSError, json.JSONDecodeError):
            return False

    kinds = {is_classify(Path(p)) for p in paths}
    if kinds == {True}:
        from radsynth.evaluate.classify_tables import cosingan_table, zunair_table

        results = [read_classify_results(p) for p in paths]
        return zunair_table(results) + "\n\n" + cosingan_table(results) + "\n"
    if len(kinds) > 1:
        raise InputError("evaluate table", "give either segmentation or classification results, not both")
    results = [read_results(p) for p in paths]
    return dsc_table(results) + "\n\n" + score_table(results) + "\n"


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``radsynth evaluate ...``; returns the exit code."""
    from radsynth.atomic import atomic_write_text
    from radsynth.errors import InputError
    from radsynth.evaluate.segment import TABLE, evaluate_segmentation
    from radsynth.evaluate.tables import dsc_table

    if args.evaluate_verb == "classify":
        return _run_classify(args)
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
    text = _table_text(args.results)
    if args.out is None:
        print(text)
        return 0
    if args.out.exists() and not args.force:
        raise InputError(args.out, "already exists; pass --force to replace it")
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0
