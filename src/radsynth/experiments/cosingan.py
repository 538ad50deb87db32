"""``radsynth experiment cosingan``: Zhang et al. 2020 (CoSinGAN), section 3, as one resumable command.

Two CoSinGANs are trained on two chosen slices (the best-ranked training slices of two different
patients, ``radsynth.data.representative``: typical layout, then most infection; the paper's two
"representative slices" of modality 1 and modality 2, 3.2); O-STS (the first
model as it is), RC-STS (randomized conditions, 2.4) and IF-STS (image fusion of both models, 2.4)
are synthesized for every training condition; segmenters (Table 4) and classifiers (Tables 2-3)
are trained on OC-TS, Sin-TS, Two-TS, O-STS, RC-STS and IF-STS and tested on the real held-out
patients; pix2pix, enhanced pix2pix and CoSinGAN are scored by segmenters trained on real images
(Table 1). Classifiers run at two sizes (Table 2: 256 px, Table 3: 512 px in the paper).
Setting ``detail_fusion_row`` adds one row beside the paper's six: IF-STS made with radsynth's
detail-keeping fusion (``radsynth.synth.diversify``) instead of eq. 11's blend, trained and tested like the
others. Off in every preset: on ct-ma20 (cpu preset, segmenter seeds 0-1) it kept more lung texture and taught
no more (41.7 against 43.0 infection DSC).

The classification tables need slices with and without infection; ct-ma20-png keeps only slices with
infection. Setting ``classify_data`` (``radsynth experiment cosingan --classify-data DIR``) names a second
set for Tables 2-3: the same protocol (its own two slices, two CoSinGANs, O/RC/IF-STS) runs on it in the
stages ``tables23-*``, and the classifiers train and test there. Patients are split 3 : 1 for training /
testing, the test quarter rounded up (3.2: 15 / 5 of 20 scans); no val split (nothing early-stops).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from radsynth.atomic import atomic_write_text
from radsynth.config import build_config, merge
from radsynth.data.representative import pick_slices, rank_slices
from radsynth.data.slices import SliceSet
from radsynth.data.splits import holdout_fractions
from radsynth.errors import InputError
from radsynth.evaluate.classify import evaluate_classification, read_classify_results
from radsynth.evaluate.classify_config import PRESETS as CLASSIFY_PRESETS
from radsynth.evaluate.classify_config import ClassifyConfig
from radsynth.evaluate.classify_tables import cosingan_table
from radsynth.evaluate.config import PRESETS as SEGMENT_PRESETS
from radsynth.evaluate.config import SegmentConfig
from radsynth.evaluate.segment import evaluate_segmentation, read_results
from radsynth.evaluate.tables import dsc_table
from radsynth.experiments.common import departure_line, done_results, fit_stage, prepare_stage, prepared_set, read_json
from radsynth.experiments.stages import Stage, StageContext
from radsynth.report import published
from radsynth.report.html import Section, write_report
from radsynth.synth.diversify import FusedSynthesizer
from radsynth.synth.generate import synthesize_set
from radsynth.synth.registry import load_synthesizer

TITLE = "CoSinGAN (Zhang et al. 2020): learning COVID-19 diagnosis from a single CT slice"

# the training sets of 3.3.1, in the paper's table order: (stage suffix, table name, real images)
SETS = [("sin", "Sin-TS"), ("o-sts", "O-STS"), ("rc-sts", "RC-STS"), ("two", "Two-TS"), ("if-sts", "IF-STS"), ("oc", "OC-TS")]
DETAIL_ROW = ("if-sts-detail", "IF-STS, detail fusion (radsynth)")  # with ``detail_fusion_row``, before OC-TS
# Table 1's synthesizers: (stage suffix, registry method, table name)
QUALITY_METHODS = [("pix2pix", "pix2pix", "Pix2pix"), ("enhanced-pix2pix", "enhanced-pix2pix", "Enhanced Pix2pix")]
TEST_SHARE = 0.25  # 3.2: 15 of the 20 scans for training, the other 5 for testing
CLASSIFY_TAG = "tables23-"  # stage-name prefix of the classification branch on a second data set
# the classification tables: (key, index into settings['classify_sizes'], stage prefix, published table)
CLASSIFY_TABLES = [("2", 0, "cls", published.COSINGAN_TABLE2), ("3", 1, "cls-large", published.COSINGAN_TABLE3)]


def split_fractions(n_patients: int) -> dict[str, float]:
    """The patient split: a quarter for testing, rounded up (15 / 5 of 20 scans, 10 / 4 of ct-ma20-png's 14), no val."""
    return holdout_fractions(n_patients, TEST_SHARE)

# CPU, 128 px, within an hour on 2 cores: CoSinGAN's own quick preset (32 -> 128, about 9 min per
# pyramid; two more with classify_data), one UNet, one ResNet18, at most 400 synthesized images per set
# and 256 segmenter samples per epoch. With narrower pyramids (ngf 16, 120 + 60 steps) the whole run took 11.6 min on ct-ma20.
QUICK: dict[str, Any] = {
    "size": 128, "cosingan_preset": "quick",
    "cosingan": {},
    "pix2pix_preset": "quick", "pix2pix": {"size": 128, "ngf": 16, "ndf": 16, "steps": 200, "feature_unet_steps": 100},
    "segment_preset": "quick", "segment": {"epochs": 10, "samples_per_epoch": 256, "unet_features": [16, 16, 32, 64, 128, 16]},
    "segmenters": ["unet"],
    "classify_preset": "quick", "classify": {"epochs": 1}, "classifiers": ["resnet18"],
    "classify_sizes": [64, 128],  # Table 2 at half the CoSinGAN size, Table 3 at its full size (as 256 / 512)
    "classify_data": None,
    "synth_limit": 400, "quality_preset": "quick",
    "fusion": "blend",  # IF-STS: eq. 11 (blend) or radsynth's detail-keeping variant (radsynth.synth.diversify)
    "detail_fusion_row": False,  # also an IF-STS row made with the detail fusion (DETAIL_ROW), beside the paper's
}

PRESETS: dict[str, dict[str, Any]] = {
    # the paper's values: the synthesizers', segmenters' and classifiers' own paper presets (2.5, 3.3.1, 3.3.2)
    "paper": {
        "size": 512, "cosingan_preset": "paper", "cosingan": {}, "pix2pix_preset": "paper", "pix2pix": {"size": 512},
        "segment_preset": "paper", "segment": {}, "segmenters": ["enet", "unet"],
        "classify_preset": "cosingan", "classify": {}, "classifiers": ["resnet18", "resnet50"],
        "classify_sizes": [256, 512],  # 3.3.1: Table 2 at 256 px, Table 3 at 512 px
        "classify_data": None,  # a second set for Tables 2-3 (None: the main set)
        "synth_limit": None, "quality_preset": "default", "fusion": "blend", "detail_fusion_row": False,
    },
    "quick": QUICK,
    # CPU, 128 px, about 85 min on 2 cores split into two processes with --only (measured on ct-ma20: each pyramid
    # about 35 min, each UNet about 13 min alone on a core): CoSinGAN's cpu preset (twice quick's steps, resize
    # upsampling, weights carried between scales), every training condition rendered, and a segmenter schedule long enough not to flatter
    # synthetic sets (issue 21 item 4: quick's 10 x 256 samples put O-STS above Sin-TS, longer training reverses it).
    # OC-TS infection DSC on ct-ma20's held-out patients with this 16-wide UNet, 10 epochs of 256 / 1024 / 2048
    # samples: 41.2 / 52.3 / 61.4 (2 / 8 / 16 CPU minutes).
    "cpu": merge(QUICK, {"cosingan_preset": "cpu", "segment": {"samples_per_epoch": 2048}, "synth_limit": None}),
}


def training_sets(settings: dict) -> list[tuple[str, str]]:
    """Table 4's (and Tables 2-3's) rows as (stage suffix, name): the paper's six, with DETAIL_ROW before OC-TS where
    ``detail_fusion_row`` is set (records written before the setting existed read as without it)."""
    return [*SETS[:-1], DETAIL_ROW, SETS[-1]] if settings.get("detail_fusion_row") else SETS


def _slices(tag: str = ""):
    """Stage ``choose-slices``: two train slices (``radsynth.data.representative.pick_slices``: typical layout,
    most infection, both carrying sizeable infection, from two patients and, where named, two modalities)."""

    def run(ctx: StageContext) -> None:
        _choose_slices(ctx, prepared_set(ctx.run_dir, f"{tag}prepare"))

    return run


def _choose_slices(ctx: StageContext, prepared: Path) -> None:
    ranked = rank_slices(SliceSet(prepared, "train"))
    if not ranked:
        raise InputError(prepared, "has no train slice with lung and infection to train CoSinGAN on")
    picked = pick_slices(ranked, 2)
    first, second = picked[0], (picked[1:] or picked)[0]
    atomic_write_text(ctx.folder / "slices.json", json.dumps({
        "a": first.id, "b": second.id, "patients": [first.patient, second.patient], "infection_pixels": [first.infection, second.infection],
        "body_fraction": [round(s.body_fraction, 3) if not math.isnan(s.body_fraction) else None for s in (first, second)],  # None: no lung labels
        "typical_layout": [first.typical, second.typical],
        "modalities": [first.modality, second.modality],
    }, indent=2))


def chosen(run_dir: Path, tag: str = "") -> dict:
    return read_json(Path(run_dir) / f"{tag}choose-slices" / "slices.json")


def _synth_stage(runs: list[str], diversify: str, limit: int | None, seed: int, device: str, tag: str = "", fusion: str = "blend"):
    def run(ctx: StageContext) -> None:
        models = [load_synthesizer(ctx.stage(r), device) for r in runs]
        model = models[0] if len(models) == 1 else FusedSynthesizer(*models, mode=fusion)
        name = model.name if len(models) == 1 else model.set_name
        synthesize_set(model, name, model.output_size, prepared_set(ctx.run_dir, f"{tag}prepare"), ctx.folder / "set", split="train",
                       seed=seed, diversify=diversify, limit=limit, force=True)

    return run


def _spec(run_dir: Path, suffix: str, tag: str = "") -> str:
    ids = chosen(run_dir, tag)
    synthetic = Path(run_dir) / f"{tag}synth-{suffix}" / "set"
    return {"sin": f"sin:{ids['a']}", "two": f"two:{ids['a']},{ids['b']}", "oc": "oc"}.get(suffix, f"synth:{synthetic}")


def _segment_stage(model: str, suffix: str, name: str, settings: dict, seed: int, device: str):
    def run(ctx: StageContext) -> None:
        prepared = prepared_set(ctx.run_dir)
        group = {"group_by": "modality"} if names_modalities(prepared) else {}  # Table 4's M1 / M2 columns
        config = build_config(SegmentConfig, SEGMENT_PRESETS, settings["segment_preset"],
                              {**settings["segment"], "model": model, "seed": seed, **group})
        resume = ctx.partial and (ctx.folder / "segment.json").exists()
        evaluate_segmentation(_spec(ctx.run_dir, suffix), [prepared], ctx.folder, config, name=name, device=device, resume=resume,
                              force=not resume, console=ctx.console)

    return run


def names_modalities(prepared: Path) -> bool:
    """Whether every test slice of ``prepared`` names its modality (ct-ma20-png: coronacases | radiopaedia)."""
    return all(row.get("modality") for row in SliceSet(prepared, "test").rows)


SKIPPED = "skipped.json"  # written instead of results when a stage cannot run on this data, with the reason


def classification_blocker(prepared: Path) -> str | None:
    """Why the infection present / absent protocol cannot run on ``prepared``, or None when it can.

    Tables 2-3 need slices with and without infection in the training split (the synthetic sets are
    made from its conditions too); some public sets (ct-ma20-png) keep only slices with infection. A
    test split with one class only still runs: the scores it cannot define (e.g. specificity without
    negatives) come out undefined in the results.
    """
    rows = SliceSet(prepared, "train").rows
    counts = {flag: sum(r["has_infection"] == flag for r in rows) for flag in ("0", "1")}
    if not counts["0"] or not counts["1"]:
        missing = "without" if not counts["0"] else "with"
        return (f"the train split holds no slice {missing} infection ({counts['1']} with, {counts['0']} without), so the "
                f"slice-level infection present / absent classifiers (Tables 2-3) cannot be trained on this data")
    return None


def _classify_stage(model: str, suffix: str, name: str, size: int, settings: dict, seed: int, device: str, tag: str = ""):
    def run(ctx: StageContext) -> None:
        prepared = prepared_set(ctx.run_dir, f"{tag}prepare")
        blocker = classification_blocker(prepared)
        if blocker:
            ctx.console.print(f"    skipped: {blocker}")
            atomic_write_text(ctx.folder / SKIPPED, json.dumps({"reason": blocker}, indent=2))
            return
        overrides = {**settings["classify"], "model": model, "seed": seed, "size": size}
        config = build_config(ClassifyConfig, CLASSIFY_PRESETS, settings["classify_preset"], overrides)
        resume = ctx.partial and (ctx.folder / "classify.json").exists()
        evaluate_classification(_spec(ctx.run_dir, suffix, tag), prepared, ctx.folder, config, name=name, device=device,
                                resume=resume, force=not resume, figures=False, console=ctx.console)

    return run


def _check_classification_set(data: Path, size: int, seed: int):
    """Stage ``tables23-prepare``: prepare the second set and refuse it at once when Tables 2-3 cannot run on it."""
    prepare = prepare_stage(data, size, seed, fractions=split_fractions)

    def run(ctx: StageContext) -> None:
        prepare(ctx)
        blocker = classification_blocker(prepared_set(ctx.run_dir, f"{CLASSIFY_TAG}prepare"))
        if blocker:
            raise InputError("classify_data", f"{data}: {blocker}")

    return run


def _quality_stage(settings: dict, device: str):
    def run(ctx: StageContext) -> None:
        from radsynth.quality.config import PRESETS as QUALITY_PRESETS
        from radsynth.quality.config import QualityConfig
        from radsynth.quality.run import assess_quality

        config = build_config(QualityConfig, QUALITY_PRESETS, settings["quality_preset"], {})
        sets = [ctx.stage(f"synth-{s}") / "set" for s, _, _ in QUALITY_METHODS] + [ctx.stage("synth-o-sts") / "set"]
        names = [n for _, _, n in QUALITY_METHODS] + ["CoSinGAN"]
        segmenters = [ctx.stage(f"seg-{m}-oc") for m in settings["segmenters"]]
        assess_quality(prepared_set(ctx.run_dir), sets, ctx.folder / "quality", config, segmenters=segmenters, names=names,
                       device=device, force=True, log=lambda text: ctx.console.print(f"    {text}"))

    return run


def _cosingan_stages(data: Path, settings: dict, seed: int, device: str, tag: str = "") -> list[Stage]:
    """prepare, choose-slices, the two CoSinGANs and O/RC/IF-STS on ``data``, their stage names prefixed ``tag``."""
    size = settings["size"]
    cosingan = {**settings["cosingan"], "seed": seed}
    of = f" ({data.name}, Tables 2-3)" if tag else ""
    prepare = _check_classification_set(data, size, seed) if tag else prepare_stage(data, size, seed, fractions=split_fractions)
    data_of = lambda r: prepared_set(r, f"{tag}prepare")  # noqa: E731
    out = [
        Stage(f"{tag}prepare", prepare, f"the real set at {size} px, patient split 3 : 1{of}"),
        Stage(f"{tag}choose-slices", _slices(tag), f"the two training slices (two patients){of}"),
    ]
    for k in ("a", "b"):
        overrides = {**cosingan, "slice_ids": lambda r, k=k: [chosen(r, tag)[k]]}
        out.append(Stage(f"{tag}train-cosingan-{k}", fit_stage("cosingan", settings["cosingan_preset"], overrides, data_of=data_of, device=device),
                         f"CoSinGAN on slice {k.upper()}{of}", resumable=True))
    limit = settings["synth_limit"]
    a, b = f"{tag}train-cosingan-a", f"{tag}train-cosingan-b"
    out += [
        Stage(f"{tag}synth-o-sts", _synth_stage([a], "none", limit, seed, device, tag), f"O-STS: CoSinGAN A on every training condition{of}"),
        Stage(f"{tag}synth-rc-sts", _synth_stage([a], "rc", limit, seed, device, tag), f"RC-STS: randomized conditions{of}"),
        Stage(f"{tag}synth-if-sts", _synth_stage([a, b], "fusion", limit, seed, device, tag, settings["fusion"]), f"IF-STS: image fusion of A and B{of}"),
    ]
    if settings["detail_fusion_row"]:
        out.append(Stage(f"{tag}synth-{DETAIL_ROW[0]}", _synth_stage([a, b], "fusion", limit, seed, device, tag, "detail"),
                         f"IF-STS with the detail fusion (radsynth){of}"))
    return out


def classify_tag(settings: dict) -> str:
    """Stage-name prefix of the set Tables 2-3 run on: '' (the main set) or CLASSIFY_TAG (``classify_data``)."""
    return CLASSIFY_TAG if settings.get("classify_data") else ""


def stages(data: Path, settings: dict, seed: int = 0, device: str = "auto") -> list[Stage]:
    """The protocol's stages, in order."""
    stages_ = _cosingan_stages(Path(data), settings, seed, device)
    tag = classify_tag(settings)
    if tag:  # right after the main set's preparation, so an unusable second set fails before any training
        branch = _cosingan_stages(Path(settings["classify_data"]), settings, seed, device, tag)
        stages_ = stages_[:1] + branch[:1] + stages_[1:] + branch[1:]
    for suffix, method, name in QUALITY_METHODS:
        overrides = {**settings["pix2pix"], "seed": seed, "slice_ids": lambda r: [chosen(r)["a"]]}
        stages_.append(Stage(f"train-{suffix}", fit_stage(method, settings["pix2pix_preset"], overrides, device=device), f"{name} on slice A (Table 1)", resumable=True))
    limit = settings["synth_limit"]
    stages_ += [Stage(f"synth-{s}", _synth_stage([f"train-{s}"], "none", limit, seed, device), f"{n} images for Table 1") for s, _, n in QUALITY_METHODS]
    for model in settings["segmenters"]:
        stages_ += [Stage(f"seg-{model}-{s}", _segment_stage(model, s, n, settings, seed, device), f"{model} on {n} (Table 4)", resumable=True) for s, n in training_sets(settings)]
    for key, index, prefix, _ in CLASSIFY_TABLES:
        size = settings["classify_sizes"][index]
        for model in settings["classifiers"]:
            stages_ += [Stage(f"{prefix}-{model}-{s}", _classify_stage(model, s, n, size, settings, seed, device, tag),
                              f"{model} on {n} at {size} px (Table {key})", resumable=True) for s, n in training_sets(settings)]
    stages_.append(Stage("quality", _quality_stage(settings, device), "Table 1: segmenters trained on real images score the synthetic sets"))
    return stages_


def departures(record: dict, modalities: bool = False) -> dict[str, str]:
    """Each table's remaining departures from the paper (3.2-3.3), one line per table ('1', '2', '3', '4');
    ``modalities``: the prepared set names each slice's modality (Tables 1 and 4 then have M1 / M2 columns)."""
    settings = record["settings"]
    how = "two modalities where the set names them" if modalities else "two patients (the set names no modality)"
    common = [f"the two training slices are picked automatically (typical layout, sizeable infection, {how}), not by hand"]
    if not settings["cosingan"].get("vgg_weights"):
        common.append("MS-FVL uses a UNet trained on the slice in place of ImageNet VGG19 (no local weights file)")
    overall = [] if modalities else ["overall scores only, no modality 1 / 2 columns (the set names no modality)"]
    classify = ["classifiers start from scratch, not from ImageNet weights"]
    if settings.get("classify_data"):
        classify.append(f"run on a second set ({Path(settings['classify_data']).name}) with its own two slices and CoSinGANs, "
                        "since the main set has no slice without infection")
    limit = settings["synth_limit"]
    cut = f", at most {limit} synthetic images per set" if limit else ""
    segment = build_config(SegmentConfig, SEGMENT_PRESETS, settings["segment_preset"], settings["segment"])
    classifier = build_config(ClassifyConfig, CLASSIFY_PRESETS, settings["classify_preset"], settings["classify"])
    seg = f"{settings['size']} px, CoSinGAN's short CPU schedule, {' / '.join(settings['segmenters'])} only, {segment.epochs} segmenter epochs{cut}"
    sizes = settings.get("classify_sizes", [256, 512])
    cls = f"{settings['size']} px CoSinGAN with its short CPU schedule, {' / '.join(settings['classifiers'])} only, {classifier.epochs} epoch(s){cut}"
    return {
        "1": departure_line(common + overall, record, seg),
        "4": departure_line(common + overall, record, seg),
        "2": departure_line(common + classify, record, f"{sizes[0]} px classifiers, {cls}"),
        "3": departure_line(common + classify, record, f"{sizes[-1]} px classifiers, {cls}"),
    }


def build_report(run_dir: Path) -> Path:
    """``report/index.html`` from whatever stages are done."""
    run_dir = Path(run_dir)
    record = read_json(run_dir / "experiment.json")
    settings = record["settings"]
    sections: list[Section] = []
    prepared = run_dir / "prepare" / "set"
    lines = departures(record, modalities=(prepared / "manifest.csv").exists() and names_modalities(prepared))
    seg_names = [f"seg-{m}-{s}" for m in settings["segmenters"] for s, _ in training_sets(settings)]
    seg = done_results(run_dir, seg_names, read_results)
    if seg:
        sections.append(Section("Segmentation (Table 4)", [f"Segmenters trained on each training set, tested on the real held-out patients of {record['data']}."],
                                [("DSC (%)", dsc_table(seg), published.COSINGAN_TABLE4)],
                                links=[(run_dir / n / "results.md", n) for n in seg_names], departures=lines["4"]))
    tag = classify_tag(settings)
    where = f"the real held-out patients of {settings['classify_data']}" if tag else "the real held-out patients"
    sizes = settings.get("classify_sizes", [settings["classify"].get("size")])
    for key, index, prefix, paper in CLASSIFY_TABLES[: len(sizes)]:
        cls_names = [f"{prefix}-{m}-{s}" for m in settings["classifiers"] for s, _ in training_sets(settings)]
        cls = done_results(run_dir, cls_names, read_classify_results)
        skipped = [read_json(run_dir / n / SKIPPED)["reason"] for n in cls_names if (run_dir / n / SKIPPED).exists()]
        title = f"Classification: infection present / absent (Table {key}, {sizes[index]} px)"
        if cls:
            sections.append(Section(title, [f"Classifiers trained on each training set, tested on {where}."],
                                    [("Sensitivity, specificity, accuracy", cosingan_table(cls), paper)],
                                    links=[(run_dir / n / "results.md", n) for n in cls_names], departures=lines[key]))
        elif skipped:
            sections.append(Section(title, [f"Not run: {skipped[0]}; give a set with both (--classify-data, e.g. ct-rp9-dev)."]))
    quality = run_dir / "quality" / "quality"
    if (quality / "results.json").exists():
        from radsynth.quality.run import read_results as read_quality
        from radsynth.quality.tables import segmentation_table

        sections.append(Section("Image quality of the synthesizers (Table 1)",
                                ["DSC (%) of the segmenters trained on the real training set (OC-TS), applied to each synthetic set against its conditions."],
                                [("Segmentation-based quality score", segmentation_table(read_quality(quality)), published.COSINGAN_TABLE1)],
                                links=[(quality / "results.md", "quality/results.md (every score)")], departures=lines["1"]))
    images = [(run_dir / f"synth-{s}" / "set" / "preview.png", f"{s}: condition, real, synthetic") for s in ("o-sts", "rc-sts", "if-sts", "pix2pix", "enhanced-pix2pix")]
    images += [(run_dir / f"train-cosingan-{k}" / "scales.png", f"CoSinGAN {k.upper()}: one output per scale") for k in ("a", "b")]
    if tag:
        images += [(run_dir / f"{tag}synth-{s}" / "set" / "preview.png", f"{s} on {settings['classify_data']} (Tables 2-3)") for s in ("o-sts", "rc-sts", "if-sts")]
    slices = run_dir / "choose-slices" / "slices.json"
    text = [f"Training slices: A = {chosen(run_dir)['a']}, B = {chosen(run_dir)['b']}."] if slices.exists() else []
    if tag and (run_dir / f"{tag}choose-slices" / "slices.json").exists():
        ids = chosen(run_dir, tag)
        text.append(f"Training slices of the classification set (Tables 2-3): A = {ids['a']}, B = {ids['b']}.")
    sections.append(Section("Synthetic sets and synthesizers", text, images=images))
    return write_report(run_dir, TITLE, sections, [f"Data: {record['data']}; preset {record['preset']}; seed {record['seed']}."])
