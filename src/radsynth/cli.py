"""The ``radsynth`` command. Thin: parse, call the library, print a summary.

Bad input (``InputError``) ends with one line ``radsynth: error: <where>: <problem>`` on stderr
and exit code 2; an interrupt ends with exit code 130.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from radsynth import __version__
from radsynth.errors import InputError, NonFiniteLoss
from radsynth.lesions import BURDENS, EDITS
from radsynth.synth import FUSIONS

if TYPE_CHECKING:
    from radsynth.synth.translator import Translator

EXIT_TRAINING_FAILED = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130

VERB_HELP = {
    "data": "inspect, prepare and generate (phantom) data sets",
    "train": "fit a synthesizer (cosingan, globallocal, pix2pix, cyclegan) or a lesion model (lesions)",
    "synth": "generate a synthetic set from a trained run",
    "quality": "image quality, fidelity, diversity and privacy scores of a synthetic set",
    "evaluate": "train segmenters / classifiers on real, synthetic and mixed sets; test on real patients",
    "experiment": "run a paper's whole protocol as one resumable command",
    "report": "build the HTML report of a run or experiment",
    "demo": "the whole idea on the embedded phantom data, in minutes on a CPU",
    "bench": "speed and memory benchmarks",
}
MULTI_PROCESS_VERBS = ("train", "synth", "evaluate segment")  # verbs that run under torchrun (radsynth.distributed)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _window(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI such as -600,1500, got '{text}'") from None
    return lo, hi


def _add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help=VERB_HELP["data"], description=VERB_HELP["data"])
    verbs = data.add_subparsers(dest="data_verb", required=True, metavar="{inspect,prepare,phantom,export,layouts}")

    inspect = verbs.add_parser("inspect", help="print format, patients, slices, sizes, intensities and labels")
    inspect.add_argument("path", type=Path)
    inspect.add_argument("--format", default="auto", help="auto (default), nifti, dicom, png-manifest, class-folders")
    inspect.add_argument("--json", action="store_true", help="print the summary as JSON")

    prepare = verbs.add_parser("prepare", help="write a normalised, resized, split slice set")
    prepare.add_argument("path", type=Path)
    prepare.add_argument("--out", type=Path, required=True)
    prepare.add_argument("--size", type=_positive_int, default=256, help="output side in pixels (default 256)")
    prepare.add_argument("--split", default=None, help="TRAIN,VAL,TEST fractions (default: the source's own split, else 0.7,0.1,0.2)")
    prepare.add_argument("--test-patients", default=None, help="hold out these patients (comma-separated) as the test split; the others "
                         "go to train, or train / val in --split's ratio")
    prepare.add_argument("--seed", type=int, default=0)
    prepare.add_argument("--fit", default="pad", help="pad (default), crop or stretch non-square images")
    prepare.add_argument("--intensity", default="auto", help="auto (default), hu, percentile or range")
    prepare.add_argument("--window", type=_window, default=None, help="HU window LO,HI for --intensity hu (default -1350,150: lung window L-600/W1500; Jiang et al. print -600,1500)")
    prepare.add_argument("--keep", default="all", help="all (default), lung (slices with lung), infection (slices with infection)")
    prepare.add_argument("--format", default="auto")
    prepare.add_argument("--force", action="store_true", help="replace an existing output folder")

    phantom = verbs.add_parser("phantom", help="write the procedural phantom data set (CT NIfTI or X-ray class folders)")
    phantom.add_argument("--out", type=Path, required=True)
    phantom.add_argument("--kind", choices=("ct", "cxr"), default="ct")
    phantom.add_argument("--patients", type=_positive_int, default=4, help="CT volumes (default 4)")
    phantom.add_argument("--slices", type=_positive_int, default=16, help="slices per CT volume (default 16)")
    phantom.add_argument("--per-class", type=_positive_int, default=20, help="X-rays per class (default 20)")
    phantom.add_argument("--size", type=_positive_int, default=256)
    phantom.add_argument("--seed", type=int, default=0)
    phantom.add_argument("--force", action="store_true")

    export = verbs.add_parser("export", help="write a synthetic set as DICOM or NIfTI files marked SYNTHETIC, with no patient data; "
                                             "or real and synthetic sets as one nnU-Net v2 dataset")
    export.add_argument("path", help="a synthetic set (radsynth synth); for nnunet SET[,SET2...]: prepared and synthetic sets")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--format", choices=("dicom", "nifti", "nnunet"), required=True)
    export.add_argument("--dataset-id", type=int, default=None, help="nnunet: the dataset's number (1-999), as in DatasetNNN_NAME")
    export.add_argument("--name", default=None, help="nnunet: the dataset's name (letters, digits, '-')")
    export.add_argument("--force", action="store_true")

    layouts = verbs.add_parser("layouts", help="label maps with the lung of a set's slices and new infection from a lesion run (radsynth train lesions); "
                                               "render them with radsynth synth RUN --conditions DIR")
    layouts.add_argument("--lungs", type=Path, required=True, help="a prepared set with lung labels")
    layouts.add_argument("--model", type=Path, required=True, help="a lesion run (radsynth train lesions)")
    layouts.add_argument("--out", type=Path, required=True)
    layouts.add_argument("--n-per-lung", type=_positive_int, default=1, help="layouts per slice (default 1)")
    layouts.add_argument("--split", default="train", help="split of --lungs: train (default), val, test or all")
    layouts.add_argument("--limit", type=_positive_int, default=None, help="use only the first N slices")
    layouts.add_argument("--seed", type=int, default=0)
    layouts.add_argument("--pleura-gap", type=float, default=0.0, metavar="PX",
                         help="new lesions keep more than PX px (at 128 px) from the lung's border (default 0: anywhere in the lung)")
    layouts.add_argument("--force", action="store_true")


def _add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help=VERB_HELP["train"], description=VERB_HELP["train"])
    train.add_argument("method", help="cosingan, globallocal, pix2pixhd, spade, pix2pix or enhanced-pix2pix; X-ray translators: cyclegan, pix2pix-cxr; "
                                      "lesions: the lesion model of the --slice(s) for synth --edit and data layouts")
    train.add_argument("--data", type=Path, required=True, help="a prepared slice set (radsynth data prepare); cyclegan and pix2pix-cxr use only its train split")
    train.add_argument("--out", type=Path, required=True, help="run directory")
    train.add_argument("--preset", default=None, help="quick (CPU minutes) or paper (the paper's schedule, the default values)")
    train.add_argument("--size", type=_positive_int, default=None)
    train.add_argument("--steps", type=_positive_int, default=None)
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--slice", action="append", default=[], metavar="ID", help="train on this slice id only (repeatable); or auto: the best-ranked train slice (typical layout, then most infection)")
    train.add_argument("--source", default=None, metavar="CLASS", help="cyclegan, pix2pix-cxr: class translated from (default Normal)")
    train.add_argument("--target", default=None, metavar="CLASS", help="cyclegan, pix2pix-cxr: class translated to (default COVID-19)")
    train.add_argument("--balance", default=None, choices=("undersample", "none"), help="cyclegan: under-sample the larger class first (default, Zunair & Hamza 3.3) or not")
    train.add_argument("--config", type=Path, default=None, help="YAML file of config values")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config value (repeatable)")
    train.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--keep-checkpoints", action="store_true",
                       help="keep every checkpoint (weights + optimizer state) of every phase; default: a running phase keeps its newest, "
                            "a finished one only the weights synthesis and later phases need. Storage only: not part of the config")
    train.add_argument("--keep-last", type=_positive_int, default=None, metavar="K",
                       help="a running phase keeps its newest K checkpoints (default 1)")
    train.add_argument("--force", action="store_true", help="replace an existing run directory")


def _add_synth(sub: argparse._SubParsersAction) -> None:
    synth = sub.add_parser("synth", help=VERB_HELP["synth"], description=VERB_HELP["synth"])
    synth.add_argument("run", type=Path, help="a run directory made by radsynth train")
    synth.add_argument("--conditions", type=Path, default=None, help="mask-conditional runs: a prepared slice set whose label maps are the conditions")
    synth.add_argument("--images", type=Path, default=None, help="cyclegan, pix2pix-cxr runs: a prepared X-ray set whose source-class images are translated; "
                                                                     "lesion runs: a prepared CT set whose slices are edited")
    synth.add_argument("--edit", choices=EDITS, default=None,
                       help="lesion runs: add generated lesions, remove annotated infection, paste the run's annotated lesions (CarveMix), "
                            "or replace the slice's infection by generated lesions (remove, then add)")
    synth.add_argument("--burden", choices=BURDENS, default="model",
                       help="--edit add / replace: the new lesions' total area drawn by the lesion model (default), or the same as the "
                            "slice's annotated infection (replace then keeps each slice's amount of infection)")
    synth.add_argument("--pleura-gap", type=float, default=0.0, metavar="PX",
                       help="--edit add / replace: new lesions keep more than PX px (at 128 px) from the lung's border (default 0: "
                            "anywhere in the lung; the README measures 3 px on ct-ma20 at three loss weightings)")
    synth.add_argument("--slice", action="append", default=[], metavar="ID", help="--edit: edit only these slice ids (repeatable)")
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--split", default=None, help="split of the input set to use: all (default for --conditions) or train (default for --images), val, test")
    synth.add_argument("--n", type=_positive_int, default=None, help="--images: exactly N images, source images in a seeded order, cycling (default: each once)")
    synth.add_argument("--rgb", action="store_true", help="--images: also write 8-bit 3-channel copies (rgb/<id>.png)")
    synth.add_argument("--n-per-condition", type=_positive_int, default=1, help="images per condition (--edit: edits per slice)")
    synth.add_argument("--limit", type=_positive_int, default=None, help="use only N conditions, evenly spaced over the set (first and last kept)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--diversify", default="none", help="none, dropout (AD), rc (randomized conditions, cosingan) or fusion (IF, with --fuse-with)")
    synth.add_argument("--fuse-with", type=Path, default=None, metavar="RUN2", help="second run for --diversify fusion")
    synth.add_argument("--fusion", default="blend", choices=FUSIONS, help="with --diversify fusion: blend (eq. 11, default) "
                       "or detail (low frequencies blended, fine texture from one of the two images)")
    synth.add_argument("--augment", default="none", help="warp each condition (with its real image) first: none (default), weak, strong or jiang (Jiang et al. III-D)")
    synth.add_argument("--export", choices=("dicom", "nifti"), default=None,
                       help="also write the set as DICOM or NIfTI files marked SYNTHETIC, with no patient data, into OUT/export-FORMAT")
    synth.add_argument("--device", default="auto")
    synth.add_argument("--force", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radsynth",
        description="Synthesize labelled chest CT and X-ray images from very few real examples, "
        "and prove whether the synthetic data helps.",
    )
    parser.add_argument("--version", action="version", version=f"radsynth {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="{" + ",".join(VERB_HELP) + "}")
    for verb, text in VERB_HELP.items():
        if verb == "data":
            _add_data(sub)
        elif verb == "train":
            _add_train(sub)
        elif verb == "synth":
            _add_synth(sub)
        elif verb == "evaluate":
            from radsynth.evaluate.cli import add_evaluate_parser

            add_evaluate_parser(sub, text)
        elif verb == "quality":
            from radsynth.quality.cli import add_quality_parser

            add_quality_parser(sub, text)
        elif verb == "bench":
            from radsynth.bench.cli import add_bench_parser

            add_bench_parser(sub, text)
        elif verb == "experiment":
            from radsynth.experiments.cli import add_experiment_parser

            add_experiment_parser(sub, text)
        elif verb == "report":
            from radsynth.experiments.cli import add_report_parser

            add_report_parser(sub, text)
        elif verb == "demo":
            demo = sub.add_parser("demo", help=text, description=text)
            demo.add_argument("--out", type=Path, default=Path("demo-out"))
            demo.add_argument("--seed", type=int, default=0)
            demo.add_argument("--data", type=Path, default=None, help="a real CT set (prepared, or any source `data prepare` reads) instead of the phantom")
            demo.add_argument("--force", action="store_true", help="replace an existing demo folder")
    return parser


def _run_data(args: argparse.Namespace) -> int:
    from radsynth.data.detect import open_source
    from radsynth.data.inspect import summarise
    from radsynth.progress import progress_bar

    if args.data_verb == "inspect":
        source = open_source(args.path, args.format)
        with progress_bar("reading", len(source.units)) as update:
            summary = summarise(source, update)
        print(json.dumps(summary.as_dict(), indent=2) if args.json else "\n".join(summary.lines()))
        return 0
    if args.data_verb == "prepare":
        from radsynth.data.intensity import IntensitySpec
        from radsynth.data.prepare import PrepareOptions, prepare
        from radsynth.data.splits import parse_fractions

        intensity = None
        if args.intensity != "auto":
            intensity = IntensitySpec(mode=args.intensity, **({"window": args.window} if args.window else {}))
        elif args.window:
            intensity = IntensitySpec(mode="hu", window=args.window)
        options = PrepareOptions(
            size=args.size,
            fractions=parse_fractions(args.split) if args.split else None,
            test_patients=tuple(p.strip() for p in (args.test_patients or "").split(",") if p.strip()),
            seed=args.seed,
            fit=args.fit,
            intensity=intensity,
            keep=args.keep,
        )
        source = open_source(args.path, args.format)
        with progress_bar("preparing", len(source.units)) as update:
            info = prepare(source, args.out, options, force=args.force, progress=update)
        print(f"wrote {sum(info['slices'].values())} slices to {args.out}: " + ", ".join(f"{k} {v}" for k, v in sorted(info["slices"].items())))
        print(f"intensity: {info['intensity']}; split: {info['split']}")
        return 0
    if args.data_verb == "layouts":
        from radsynth.lesions.run import write_layouts

        from radsynth.data.slices import SliceSet

        split = None if args.split == "all" else args.split
        total = min(len(SliceSet(args.lungs, split=split, cache=False)), args.limit or 10**9) * args.n_per_lung
        with progress_bar("layouts", total) as update:
            write_layouts(args.lungs, args.model, args.out, split=split, n_per_lung=args.n_per_lung, seed=args.seed,
                          limit=args.limit, force=args.force, progress=update, pleura_gap=args.pleura_gap)
        print(f"wrote layouts to {args.out} (preview: {args.out / 'preview.png'}); render them with radsynth synth RUN --conditions {args.out}")
        return 0
    if args.data_verb == "export" and args.format == "nnunet":
        from radsynth.data.export_nnunet import export_nnunet

        if args.dataset_id is None or args.name is None:
            raise InputError("--format nnunet", "needs --dataset-id N and --name NAME (nnU-Net names datasets DatasetNNN_NAME)")
        folder = export_nnunet([Path(p) for p in args.path.split(",") if p], args.out, args.dataset_id, args.name, force=args.force)
        info = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
        tests = sum(c["split"] == "test" for c in info["radsynth"]["cases"].values())
        print(f"wrote {folder}: {info['numTraining']} training cases, {tests} test images; labels {info['labels']}")
        return 0
    if args.data_verb == "export":
        from radsynth.synth.export_volumes import export_synthetic_set

        if "," in args.path:
            raise InputError("--format", f"{args.format} exports one synthetic set at a time")
        written = export_synthetic_set(Path(args.path), args.out, args.format, force=args.force)
        print(f"wrote {len(written)} {args.format} files to {args.out}")
        return 0
    from radsynth.atomic import atomic_output_dir
    from radsynth.data import phantom

    with atomic_output_dir(args.out, args.force) as tmp:
        if args.kind == "ct":
            written = phantom.write_ct_phantom(tmp, args.patients, args.slices, args.size, args.seed)
        else:
            written = phantom.write_cxr_phantom(tmp, args.per_class, args.size, args.seed)
    print(f"wrote {len(written)} phantom files to {args.out}")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from radsynth.config import build_config, load_yaml, merge, parse_set
    from radsynth.synth.registry import method_entry
    from radsynth.training.checkpoint import Retention

    if args.method == "lesions":
        return _run_train_lesions(args)
    entry = method_entry(args.method)
    overrides = load_yaml(args.config) if args.config else {}
    if args.slice == ["auto"]:  # resolved here so that every method's run.json config names the slice
        from radsynth.data.representative import auto_slice

        args.slice = [auto_slice(args.data)]
        print(f"--slice auto chose slice {args.slice[0]}")
    flags = {"size": args.size, "steps": args.steps, "seed": args.seed, "slice_ids": args.slice or None,
             "source": args.source, "target": args.target, "balance": args.balance}
    overrides = merge(overrides, {k: v for k, v in flags.items() if v is not None})
    set_values = parse_set(args.set)
    overrides = merge(overrides, set_values)
    for key, value in entry.fixed.items():
        if key in overrides and overrides[key] != value:
            raise InputError("--set" if key in set_values else "--config",
                             f"{key}={overrides[key]} contradicts '{args.method}', which means {key}={value}; train the method you want by its name")
    overrides = merge(overrides, entry.fixed)
    config = build_config(entry.config, entry.presets, args.preset, overrides)
    if args.keep_checkpoints and args.keep_last is not None:
        raise InputError("--keep-last", "has no effect with --keep-checkpoints, which keeps every checkpoint")
    retention = Retention(keep_all=args.keep_checkpoints, keep_last=args.keep_last or 1)
    entry.synthesizer.fit(args.data, config, args.out, resume=args.resume, force=args.force, device=args.device, retention=retention)
    print(f"trained {args.method} into {args.out} (samples in {args.out / 'samples'})")
    return 0


def _run_train_lesions(args: argparse.Namespace) -> int:
    """``train lesions``: measure the lesion model of the annotated slice(s)."""
    from radsynth.config import parse_set
    from radsynth.lesions.run import train_lesions

    values = parse_set(args.set)
    unknown = sorted(set(values) - {"prior_weight"})
    if unknown:
        raise InputError("--set", f"unknown key(s) {', '.join(unknown)} for lesions; it has prior_weight (0..1, share of the COVID-19 prior)")
    for flag, given in (("--preset", args.preset), ("--size", args.size), ("--steps", args.steps), ("--config", args.config), ("--resume", args.resume or None)):
        if given is not None:
            raise InputError(flag, "does not apply to 'lesions' (it measures the slices; nothing is trained step by step)")
    run = train_lesions(args.data, args.slice, args.out, seed=args.seed or 0, prior_weight=float(values.get("prior_weight", 0.5)), force=args.force)
    print(f"measured the lesion model of slice(s) {', '.join(json.loads((run / 'run.json').read_text())['data']['slice_ids'])} into {run} "
          f"(preview: {run / 'preview.png'})")
    return 0


def _run_edit(args: argparse.Namespace) -> int:
    """``synth LESION_RUN --edit MODE --images SET``."""
    from radsynth.lesions.run import edit_set
    from radsynth.progress import progress_bar

    if args.images is None or args.conditions is not None or args.edit is None:
        raise InputError("--edit", "a lesion run edits real slices: give --edit add|remove|paste|replace and --images SET")
    for flag, given in (("--fuse-with", args.fuse_with is not None), ("--diversify", args.diversify != "none"),
                        ("--augment", args.augment != "none"), ("--n", args.n is not None), ("--rgb", args.rgb)):
        if given:
            raise InputError(flag, "does not apply to lesion edits")
    from radsynth.data.slices import SliceSet

    split = "train" if args.split is None else None if args.split == "all" else args.split
    total = (len(args.slice) or min(len(SliceSet(args.images, split=split, cache=False)), args.limit or 10**9)) * args.n_per_condition
    with progress_bar(f"editing ({args.edit})", total) as update:
        edit_set(args.run, args.images, args.out, args.edit, split=split, n_per_image=args.n_per_condition, seed=args.seed,
                 slice_ids=args.slice or None, limit=args.limit, force=args.force, progress=update, burden=args.burden,
                 pleura_gap=args.pleura_gap)
    print(f"wrote an edited set ({args.edit}) to {args.out} (preview: {args.out / 'preview.png'})")
    return _export_after_synth(args)


def _run_synth(args: argparse.Namespace) -> int:
    from radsynth.data.slices import SliceSet
    from radsynth.progress import progress_bar
    from radsynth.synth.base import read_run
    from radsynth.synth.diversify import FusedSynthesizer
    from radsynth.synth.generate import synthesize_set
    from radsynth.synth.registry import load_synthesizer
    from radsynth.synth.translator import Translator

    record = read_run(args.run)
    if record.get("method") == "lesions":
        return _run_edit(args)
    lesion_flags = (("--edit", args.edit is not None), ("--slice", bool(args.slice)), ("--burden", args.burden != "model"),
                    ("--pleura-gap", args.pleura_gap != 0))
    for flag, given in lesion_flags:
        if given:
            raise InputError(flag, f"only applies to lesion runs (radsynth train lesions), not '{record.get('method')}'")
    synthesizer = load_synthesizer(args.run, args.device)
    model_name = record["method"]
    if isinstance(synthesizer, Translator):
        return _run_translate(args, synthesizer, model_name)
    if args.conditions is None or args.images is not None:
        raise InputError("--conditions", f"a '{model_name}' run synthesizes from label maps: give --conditions SET, not --images")
    if args.n is not None or args.rgb:
        raise InputError("--n" if args.n is not None else "--rgb", f"only applies to X-ray translator runs (--images), not '{model_name}'")
    if args.diversify == "fusion":
        if args.fuse_with is None:
            raise InputError("--fuse-with", "--diversify fusion needs a second run (--fuse-with RUN2)")
        synthesizer = FusedSynthesizer(synthesizer, load_synthesizer(args.fuse_with, args.device), mode=args.fusion)
        model_name = f"{synthesizer.set_name}({record['method']},{read_run(args.fuse_with)['method']})"
    elif args.fuse_with is not None or args.fusion != "blend":
        raise InputError("--fuse-with" if args.fuse_with is not None else "--fusion", "only goes with --diversify fusion")
    split = None if args.split in (None, "all") else args.split
    conditions = SliceSet(args.conditions, split=split, cache=False)
    if not any(row["label"] and bool((conditions[i][1] > 0).any()) for i, row in enumerate(conditions.rows)):  # stops at the first non-empty one
        raise InputError(args.conditions, "every label map is empty (all background); mask-conditional synthesis needs conditions")
    total = len(conditions) * args.n_per_condition
    with progress_bar("synthesizing", total) as update:
        synthesize_set(
            synthesizer, model_name, synthesizer.output_size, args.conditions, args.out, split=split,
            n_per_condition=args.n_per_condition, seed=args.seed, diversify=args.diversify, limit=args.limit,
            augment=args.augment, force=args.force, progress=update,
        )
    print(f"wrote a synthetic set to {args.out}")
    return _export_after_synth(args)


def _export_after_synth(args: argparse.Namespace) -> int:
    """``synth --export FORMAT``: the finished set also as DICOM / NIfTI files in OUT/export-FORMAT."""
    from radsynth import distributed
    from radsynth.synth.export_volumes import export_synthetic_set

    if args.export is None or not distributed.is_main():
        return 0
    written = export_synthetic_set(args.out, args.out / f"export-{args.export}", args.export, force=True)
    print(f"wrote {len(written)} {args.export} files to {args.out / f'export-{args.export}'}")
    return 0


def _run_translate(args: argparse.Namespace, translator: Translator, model_name: str) -> int:
    """``synth RUN --images SET`` for the X-ray translators (cyclegan, pix2pix-cxr)."""
    from radsynth.progress import progress_bar
    from radsynth.synth.domains import open_prepared
    from radsynth.synth.translate import source_rows, translate_set

    if args.conditions is not None or args.images is None:
        raise InputError("--images", f"a '{model_name}' run translates X-rays: give --images SET (a prepared set), not --conditions")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise InputError("torchrun", "X-ray translation (synth --images) runs in one process; start it without torchrun")
    for flag, given in (("--fuse-with", args.fuse_with is not None), ("--n-per-condition", args.n_per_condition != 1),
                        ("--limit", args.limit is not None), ("--augment", args.augment != "none")):
        if given:
            raise InputError(flag, f"does not apply to '{model_name}' runs (use --n to choose how many images)")
    split = "train" if args.split is None else None if args.split == "all" else args.split
    total = args.n or len(source_rows(open_prepared(args.images), translator.source_class, split))
    with progress_bar("translating", total) as update:
        translate_set(
            translator, model_name, args.images, args.out, split=split, n=args.n, seed=args.seed,
            diversify=args.diversify, rgb=args.rgb, force=args.force, progress=update,
        )
    print(f"wrote {total} synthetic {translator.target_class} images (from {translator.source_class}) to {args.out}; preview: {args.out / 'preview.png'}")
    return _export_after_synth(args)


def _dispatch(args: argparse.Namespace) -> int:
    if args.verb == "data":
        return _run_data(args)
    if args.verb == "train":
        return _run_train(args)
    if args.verb == "synth":
        return _run_synth(args)
    if args.verb == "evaluate":
        from radsynth.evaluate.cli import run_evaluate

        return run_evaluate(args)
    if args.verb == "quality":
        from radsynth.quality.cli import run_quality

        return run_quality(args)
    if args.verb == "bench":
        from radsynth.bench.cli import run_bench

        return run_bench(args)
    if args.verb == "experiment":
        from radsynth.experiments.cli import run_experiment_verb

        return run_experiment_verb(args)
    if args.verb == "report":
        from radsynth.experiments.cli import run_report_verb

        return run_report_verb(args)
    if args.verb == "demo":
        from radsynth.demo import run_demo

        run_demo(args.out, seed=args.seed, force=args.force, data=args.data)
        return 0
    raise AssertionError(f"no handler for verb {args.verb!r}")  # argparse admits only the verbs above


def _join_processes(args: argparse.Namespace) -> bool:
    """Under torchrun with several processes: check the verb can share its work, join the process
    group (radsynth.distributed) and return True; else False (and torch is not imported here)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    from radsynth import distributed

    verb = args.verb + (f" {args.evaluate_verb}" if args.verb == "evaluate" else "")
    if verb not in MULTI_PROCESS_VERBS:
        raise InputError("torchrun", f"'radsynth {verb}' runs in one process; under torchrun use {', '.join(MULTI_PROCESS_VERBS)}")
    distributed.init(args.device)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    joined = False
    try:
        joined = _join_processes(args)
        return _dispatch(args)
    except InputError as exc:
        text = f"{exc.where}: {exc.problem}"
        message = " ".join(line.strip() for line in text.splitlines() if line.strip())  # one line, even when a library's message has several
        print(f"radsynth: error: {message}", file=sys.stderr)
        return EXIT_INPUT
    except NonFiniteLoss as exc:
        print(f"radsynth: error: {exc}", file=sys.stderr)
        return EXIT_TRAINING_FAILED
    except KeyboardInterrupt:
        print("radsynth: interrupted; finished work is kept (training: resume with --resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if joined:
            from radsynth import distributed

            distributed.shutdown()


if __name__ == "__main__":
    sys.exit(main())
