"""``radsynth experiment ct-cgan``: Jiang et al. 2020 (global-local cGAN for lung CT), section IV.

The global-local cGAN and its comparison methods (pix2pixHD, SPADE, pix2pix; radsynth has no SEAN)
are trained on the infection slices of the training patients (IV-A), pix2pix with the same four-label
condition, augmentation, steps and batch as a global-local training step; each synthesizes the lung for
the held-out patients' masks (pasted into their real non-lung area) for the image-quality scores of
Table II; the global-local cGAN also synthesizes from augmented training masks (III-D) for the UNet
sweeps: a proportion of the real training images replaced by synthetic ones (Table III) or added
(Table IV), tested on the real held-out patients with the 95 % interval over 10 folds (IV-B-2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from radsynth.config import build_config
from radsynth.data.slices import SliceSet
from radsynth.evaluate.config import PRESETS as SEGMENT_PRESETS
from radsynth.evaluate.config import SegmentConfig
from radsynth.evaluate.segment import evaluate_segmentation, read_results
from radsynth.evaluate.tables import score_table
from radsynth.experiments.common import departure_line, done_results, fit_stage, prepare_stage, prepared_set, read_json
from radsynth.experiments.stages import Stage, StageContext
from radsynth.report import published
from radsynth.report.html import Section, write_report
from radsynth.synth.generate import synthesize_set
from radsynth.synth.globallocal import PRESETS as GAN_PRESETS
from radsynth.synth.globallocal import GlobalLocalConfig
from radsynth.synth.registry import load_synthesizer

TITLE = "Global-local cGAN for COVID-19 lung CT (Jiang et al. 2020)"
METHOD_TITLES = {"globallocal": "Ours (global-local)", "pix2pixhd": "Pix2pixHD", "spade": "SPADE", "pix2pix": "Pix2pix"}

# IV-A: 300 training and 73 test slices, about 80 / 20; split here by patient (a slice split would put
# neighbouring slices of one patient on both sides) and without a val split (the paper has none, nothing uses one)
SPLIT = {"train": 0.8, "val": 0.0, "test": 0.2}
# IV-A: pix2pix as Jiang compares it with the global-local cGAN: the same condition (the four labels, GGO and
# consolidation apart), the same augmentation, pix2pix's plain L1 (weight 100; WPPL with equal weights) and, as
# "all of the image synthesis methods are trained with 20 epochs", the same steps and batch as one global-local
# training step (``_gan_budget``); CoSinGAN's pix2pix (grey 3-level condition, 4000 x 4 samples) is not that baseline
JIANG_PIX2PIX = {"condition": "onehot", "augment": "jiang", "wppl_weights": [1.0, 1.0, 1.0]}

PRESETS: dict[str, dict[str, Any]] = {
    # IV-A: 512 px, 20 epochs (each method's paper preset); IV-B-2: ratios 0 % ... 50 % in steps of 10 %, 10 folds
    "paper": {"size": 512, "methods": ["globallocal", "pix2pixhd", "spade", "pix2pix"], "gan_preset": "paper", "gan": {},
              "pix2pix": {"size": 512}, "ratios": [0.1, 0.2, 0.3, 0.4, 0.5], "segment_preset": "paper", "segment": {"ci": "fold"},
              "synth_copies": 1},
    # CPU: 128 px, short schedules, three ratios, a narrow UNet
    "quick": {"size": 128, "methods": ["globallocal", "pix2pixhd", "pix2pix"], "gan_preset": "quick", "gan": {"steps": 300},
              "pix2pix": {"size": 128}, "ratios": [0.3, 0.5],
              "segment_preset": "quick", "segment": {"ci": "fold", "epochs": 6, "samples_per_epoch": 256, "unet_features": [16, 16, 32, 64, 128, 16]},
              "synth_copies": 1},
}


def _gan_config(settings: dict) -> GlobalLocalConfig:
    """The global-local cGAN's config as its stage builds it."""
    return build_config(GlobalLocalConfig, GAN_PRESETS, settings["gan_preset"], {**settings["gan"], "size": settings["size"]})


def _gan_budget(settings: dict) -> dict:
    """pix2pix's steps and batch: those of one global-local training step on the same training slices."""
    gan = _gan_config(settings)
    return {"batch_size": gan.batch_size, "steps": lambda run_dir: gan.phase_steps(len(SliceSet(prepared_set(run_dir), "train")))}


def _fit(method: str, settings: dict, seed: int, device: str):
    if method == "pix2pix":
        overrides = {**settings["pix2pix"], **JIANG_PIX2PIX, **_gan_budget(settings), "seed": seed}
        return fit_stage("pix2pix", settings["gan_preset"], overrides, device=device)
    return fit_stage(method, settings["gan_preset"], {**settings["gan"], "size": settings["size"], "seed": seed}, device=device)


def _synth(method: str, split: str, augment: str, settings: dict, seed: int, device: str):
    def run(ctx: StageContext) -> None:
        model = load_synthesizer(ctx.stage(f"train-{method}"), device)
        synthesize_set(model, method, model.output_size, prepared_set(ctx.run_dir), ctx.folder / "set", split=split,
                       n_per_condition=settings["synth_copies"] if split == "train" else 1, seed=seed, augment=augment, force=True)

    return run


def sweep(settings: dict, run_dir: Path) -> list[tuple[str, str, str]]:
    """(stage, SPEC, table row) of the UNet runs: 0 % once, then each ratio replaced and added."""
    synthetic = Path(run_dir) / "synth-train-globallocal" / "set"
    out = [("seg-0", "oc", "0%")]
    for kind in ("replace", "add"):
        out += [(f"seg-{kind}-{round(100 * r)}", f"{kind}:{r}:{synthetic}", f"{kind} {round(100 * r)}%") for r in settings["ratios"]]
    return out


def _segment(index: int, settings: dict, seed: int, device: str):
    def run(ctx: StageContext) -> None:
        _, spec, name = sweep(settings, ctx.run_dir)[index]
        config = build_config(SegmentConfig, SEGMENT_PRESETS, settings["segment_preset"], {**settings["segment"], "model": "unet", "seed": seed})
        resume = ctx.partial and (ctx.folder / "segment.json").exists()
        evaluate_segmentation(spec, [prepared_set(ctx.run_dir)], ctx.folder, config, name=name, device=device, resume=resume,
                              force=not resume, console=ctx.console)

    return run


def _quality(settings: dict, device: str):
    def run(ctx: StageContext) -> None:
        from radsynth.quality.config import QualityConfig
        from radsynth.quality.run import assess_quality

        sets = [ctx.stage(f"synth-test-{m}") / "set" for m in settings["methods"]]
        assess_quality(prepared_set(ctx.run_dir), sets, ctx.folder / "quality", QualityConfig(), segmenters=[ctx.stage("seg-0")],
                       names=[METHOD_TITLES[m] for m in settings["methods"]],
                       device=device, force=True, log=lambda text: ctx.console.print(f"    {text}"))

    return run


def stages(data: Path, settings: dict, seed: int = 0, device: str = "auto") -> list[Stage]:
    size = settings["size"]
    out = [Stage("prepare", prepare_stage(data, size, seed, keep="infection", fractions=SPLIT), f"the infection slices at {size} px, 80 / 20 patient split (IV-A)")]
    out += [Stage(f"train-{m}", _fit(m, settings, seed, device), METHOD_TITLES[m], resumable=True) for m in settings["methods"]]
    out += [Stage(f"synth-test-{m}", _synth(m, "test", "none", settings, seed, device), f"{METHOD_TITLES[m]} for the test masks (Table II)")
            for m in settings["methods"]]
    out.append(Stage("synth-train-globallocal", _synth("globallocal", "train", "jiang", settings, seed, device), "from augmented training masks (III-D)"))
    out += [Stage(name, _segment(i, settings, seed, device), f"UNet, {row}", resumable=True) for i, (name, _, row) in enumerate(sweep(settings, Path(".")))]
    # after seg-0: its UNet (trained on the real images) gives the domain features of the FID-style distance
    out.append(Stage("quality", _quality(settings, device), "Table II: FID (domain features), PSNR, SSIM, RMSE"))
    return out


# departures of every table (IV-A): the data handling
DATA_DEPARTURES = [
    "split 80 / 20 by patient (paper: 300 / 73 slices, not said to be by patient)",
    "each test slice scored once, not augmented (paper: 73 -> 10,220 test images)",
    "HU sources use the lung window L -600 / W 1500, not the literal [-600, 1500] (data/intensity.py)",
]


def departures(record: dict) -> dict[str, str]:
    """Each table's remaining departures from the paper (IV), one line per table ('II', 'III', 'IV')."""
    settings = record["settings"]
    methods = settings["methods"]
    quality = ["FD on the encoder features of a UNet trained on the real images, not Inception FID (no downloaded weights)", "no SEAN"]
    if "pix2pix" in methods:
        quality.append("pix2pix synthesizes the whole frame, not the lung pasted into the real non-lung area")
    segment = build_config(SegmentConfig, SEGMENT_PRESETS, settings["segment_preset"], settings["segment"])
    quick = (f"{settings['size']} px, {settings['gan'].get('steps')} steps per training step, {' / '.join(methods)}, ratios "
             f"{', '.join(f'{round(100 * r)} %' for r in settings['ratios'])}, {segment.epochs} UNet epochs")
    return {
        "II": departure_line(quality + DATA_DEPARTURES, record, quick),
        "III": departure_line(DATA_DEPARTURES, record, quick),
        "IV": departure_line(DATA_DEPARTURES, record, quick),
    }


def build_report(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    record = read_json(run_dir / "experiment.json")
    settings = record["settings"]
    sections = []
    lines = departures(record)
    quality = run_dir / "quality" / "quality"
    if (quality / "results.json").exists():
        from radsynth.quality.run import read_results as read_quality
        from radsynth.quality.tables import image_quality_table

        table, notes = image_quality_table(read_quality(quality))
        sections.append(Section("Image quality (Table II)", notes + ["FD: Fréchet distance of the encoder features of a UNet trained on the real "
                                                                     "training images (radsynth's stand-in for Inception FID without downloads)."],
                                [("Quality scores", table, published.JIANG_TABLE2)], links=[(quality / "results.md", "quality/results.md (every score)")],
                                departures=lines["II"]))
    runs = sweep(settings, run_dir)
    for kind, paper in (("replace", published.JIANG_TABLE3), ("add", published.JIANG_TABLE4)):
        names = ["seg-0"] + [n for n, _, _ in runs if n.startswith(f"seg-{kind}-")]
        results = done_results(run_dir, names, read_results)
        if results:
            sections.append(Section(f"UNet, synthetic images {'replacing' if kind == 'replace' else 'added to'} real ones (Table {'III' if kind == 'replace' else 'IV'})",
                                    [], [("Dice / Sen / Spec (%)", score_table(results), paper)], links=[(run_dir / n / "results.md", n) for n in names],
                                    departures=lines["III" if kind == "replace" else "IV"]))
    images = [(run_dir / f"synth-test-{m}" / "set" / "preview.png", METHOD_TITLES[m]) for m in settings["methods"]]
    sections.append(Section("Synthetic images", images=images + [(run_dir / "synth-train-globallocal" / "set" / "preview.png", "from augmented training masks")]))
    return write_report(run_dir, TITLE, sections, [f"Data: {record['data']}; preset {record['preset']}; seed {record['seed']}."])
