"""``radsynth quality``: argument parsing and printing only (the work is in ``run``).

    radsynth quality --real DIR --synth DIR [--synth DIR2 ...] [--segmenter CKPT ...]
                     [--features domain|inception:PATH|none[,frd]] --out DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "image quality, fidelity, diversity and privacy scores of a synthetic set"


def add_quality_parser(subparsers: argparse._SubParsersAction, help_text: str = HELP) -> None:
    """Register the ``quality`` verb on the top-level subparsers."""
    quality = subparsers.add_parser(
        "quality", help=help_text,
        description="Score synthetic sets against a real prepared set: paired PSNR / SSIM / RMSE on the complemented image "
        "and the lung (Jiang Table II), FD and KID on Inception-v3 or domain features, the segmentation-based score "
        "(CoSinGAN Table 1), diversity, and a memorisation audit against the real training images.",
    )
    quality.add_argument("--real", type=Path, required=True, help="the real prepared set; its train split is the reference (--set reference_split=...)")
    quality.add_argument("--synth", type=Path, action="append", required=True, metavar="DIR", help="a synthetic set (radsynth synth) or any prepared set to score (repeatable: one table row each)")
    quality.add_argument("--name", action="append", default=None, metavar="NAME", help="row label of each --synth, in order (default: the folder names)")
    quality.add_argument("--segmenter", type=Path, action="append", default=[], metavar="CKPT",
                         help="a segmenter trained on real data (`radsynth evaluate segment --out DIR`: DIR or DIR/segmenter.safetensors); repeatable "
                         "(CoSinGAN Table 1 uses ENet and UNet); the first UNet also gives the domain features")
    quality.add_argument("--features", default="domain", metavar="SPEC",
                         help="distribution features: domain (default; the encoder of the --segmenter UNet, reported as 'FD (domain UNet encoder)'), "
                         "inception:PATH (Inception-v3 from a local weights file; needs torch-fidelity; reported as FID) or none; "
                         "add ,frd (or frd alone) for the Frechet Radiomics Distance (needs the optional frd-score and pyradiomics packages; the error names the pip commands; "
                         "--set frd_max_images=N caps the images per side)")
    quality.add_argument("--out", type=Path, required=True, help="output folder (results.json, results.md, memorisation_<set>.png)")
    quality.add_argument("--preset", default=None, help="default or quick (fewer KID subsets and diversity pairs)")
    quality.add_argument("--config", type=Path, default=None, help="YAML file of config values")
    quality.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config value (repeatable), e.g. calibration_quantile=0.01")
    quality.add_argument("--seed", type=int, default=None)
    quality.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N")
    quality.add_argument("--force", action="store_true", help="replace an existing output folder")


def run_quality(args: argparse.Namespace) -> int:
    """Run ``radsynth quality``; returns the exit code."""
    from radsynth.config import build_config, load_yaml, merge, parse_set
    from radsynth.quality.config import PRESETS, QualityConfig
    from radsynth.quality.run import TABLE, assess_quality
    from radsynth.quality.tables import image_quality_table, memorisation_table, segmentation_table

    overrides = load_yaml(args.config) if args.config else {}
    overrides = merge(overrides, parse_set(args.set))
    if args.seed is not None:
        overrides = merge(overrides, {"seed": args.seed})
    config = build_config(QualityConfig, PRESETS, args.preset, overrides)
    results = assess_quality(
        args.real, args.synth, args.out, config, segmenters=args.segmenter, features=args.features, names=args.name,
        device=args.device, force=args.force, log=lambda text: print(text, flush=True),
    )
    table, notes = image_quality_table(results)
    print("\n" + table)
    for note in notes:
        print(f"note: {note}")
    if results["segmenters"]:
        print("\n" + segmentation_table(results))
    print("\n" + memorisation_table(results))
    print(f"\nresults in {args.out / TABLE}")
    return 0
