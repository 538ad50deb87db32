"""``radsynth experiment cxr-pix2pix``: Liang et al. 2021 (pix2pix Normal -> COVID-19 to balance a 3-class X-ray set).

pix2pix translates Normal X-rays into COVID-19 ones (II-B); as many are made as bring COVID-19 up to
the largest class of the training split (III-A: 1,100 images -> 1,254 per class); ResNet-50 is
trained from scratch (III-C) on the original imbalanced set, whose COVID-19 images the paper
duplicates 8 times (III-C, discussion of Table I; setting ``covid_copies``), and on the balanced one,
and, when ImageNet weights are given (setting ``weights``), by transfer learning too; a plain
baseline without the duplication is run beside them. Table I on the real held-out test split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from radsynth.atomic import atomic_write_text
from radsynth.config import build_config
from radsynth.data.slices import SliceSet
from radsynth.evaluate.classify import evaluate_classification, read_classify_results
from radsynth.evaluate.classify_config import PRESETS as CLASSIFY_PRESETS
from radsynth.evaluate.classify_config import ClassifyConfig
from radsynth.evaluate.classify_tables import liang_table
from radsynth.experiments.common import departure_line, fit_stage, prepare_stage, prepared_set, read_json
from radsynth.experiments.stages import Stage, StageContext
from radsynth.report import published
from radsynth.report.html import Section, write_report
from radsynth.synth.registry import load_synthesizer
from radsynth.synth.translate import translate_set

TITLE = "pix2pix-balanced chest X-ray classification (Liang et al. 2021)"
CLASSES = "Normal,Pneumonia,COVID-19"

# patient-level split, stratified by class: 80 % train, 20 % test and no val split (the paper has none
# and nothing here would use one; III-A holds out 60 images per class instead of a share)
SPLIT = {"train": 0.8, "val": 0.0, "test": 0.2}

PRESETS: dict[str, dict[str, Any]] = {
    # III-A, III-C: 224 px, pix2pix 100 epochs (its paper preset), ResNet-50 60 epochs from scratch;
    # the original imbalanced set's COVID-19 images duplicated 8 times (III-C)
    "paper": {"size": 224, "pix2pix_preset": "paper", "pix2pix": {}, "classifier": "resnet50", "classify": {}, "weights": None,
              "covid_copies": 8},
    # CPU: 128 px pix2pix with a short schedule, ResNet18 at 64 px for a few epochs
    "quick": {"size": 128, "pix2pix_preset": "quick", "pix2pix": {"size": 128, "steps": 400}, "classifier": "resnet18",
              "classify": {"size": 64, "epochs": 4}, "weights": None, "covid_copies": 8},
}


def _balance_count(prepared: Path) -> int:
    """Synthetic COVID-19 images that bring the class up to the largest class of the train split (at least 1)."""
    counts: dict[str, int] = {}
    for row in SliceSet(prepared, "train", cache=False).rows:
        counts[row["klass"]] = counts.get(row["klass"], 0) + 1
    return max(1, max(counts.values()) - counts.get("COVID-19", 0))


def _translate(settings: dict, seed: int, device: str):
    def run(ctx: StageContext) -> None:
        prepared = prepared_set(ctx.run_dir)
        n = _balance_count(prepared)
        translator = load_synthesizer(ctx.stage("train-pix2pix-cxr"), device)
        translate_set(translator, "pix2pix-cxr", prepared, ctx.folder / "set", split="train", n=n, seed=seed, force=True)
        atomic_write_text(ctx.folder / "balance.json", json.dumps({"synthetic_covid": n}))

    return run


def runs(settings: dict) -> list[tuple[str, str, str, str, int]]:
    """(stage, SPEC, classify preset, table row, COVID-19 copies) of the classifier runs; the x K rows are the paper's baselines."""
    k = settings.get("covid_copies", 8)
    out = []
    for mode, preset, title in (("scratch", "liang", "from scratch"), ("transfer", "liang-transfer", "transfer learning")):
        if mode == "transfer" and not settings.get("weights"):
            continue
        out += [(f"cls-{mode}-original-x{k}", "real", preset, f"Original imbalanced, COVID-19 x{k} ({title})", k),
                (f"cls-{mode}-original", "real", preset, f"Original, no duplication ({title}; not in the paper)", 1),
                (f"cls-{mode}-balanced", "add:{synth}", preset, f"cGAN enhanced ({title})", 1)]
    return out


def _classify(spec: str, preset: str, name: str, copies: int, settings: dict, seed: int, device: str):
    def run(ctx: StageContext) -> None:
        config = build_config(ClassifyConfig, CLASSIFY_PRESETS, preset,
                              {**settings["classify"], "model": settings["classifier"], "classes": CLASSES, "seed": seed,
                               "positive_copies": copies})
        resume = ctx.partial and (ctx.folder / "classify.json").exists()
        weights = Path(settings["weights"]) if preset == "liang-transfer" else None
        evaluate_classification(spec.format(synth=ctx.stage("synth-covid") / "set"), prepared_set(ctx.run_dir), ctx.folder, config,
                                name=name, weights=weights, device=device, resume=resume, force=not resume, figures=False, console=ctx.console)

    return run


def stages(data: Path, settings: dict, seed: int = 0, device: str = "auto") -> list[Stage]:
    size = settings["size"]
    overrides = {**settings["pix2pix"], "seed": seed, "source": "Normal", "target": "COVID-19"}
    out = [
        Stage("prepare", prepare_stage(data, size, seed, fractions=SPLIT), f"the X-ray set at {size} px, 80 / 20 patient split"),
        Stage("train-pix2pix-cxr", fit_stage("pix2pix-cxr", settings["pix2pix_preset"], overrides, device=device), "pix2pix Normal -> COVID-19", resumable=True),
        Stage("synth-covid", _translate(settings, seed, device), "synthetic COVID-19 images up to the largest class"),
    ]
    out += [Stage(name, _classify(spec, preset, row, copies, settings, seed, device), row, resumable=True)
            for name, spec, preset, row, copies in runs(settings)]
    return out


def departures(record: dict) -> str:
    """Table I's remaining departures from the paper (III)."""
    settings = record["settings"]
    items = ["a real-only test split of 20 % of the patients per class (paper: 60 images per class, "
             "30 of the enhanced run's COVID-19 test images synthetic)",
             "pix2pix on single-channel images (paper: 3 identical channels)"]
    if not settings.get("weights"):
        items.append("no transfer-learning rows (they need a local ImageNet weights file, setting 'weights')")
    pix = settings["pix2pix"]
    config = build_config(ClassifyConfig, CLASSIFY_PRESETS, "liang", settings["classify"])
    quick = (f"{pix.get('size', settings['size'])} px pix2pix for {pix.get('steps')} steps, {settings['classifier']} at "
             f"{config.size} px for {config.epochs} epochs")
    return departure_line(items, record, quick)


def build_report(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    record = read_json(run_dir / "experiment.json")
    settings = record["settings"]
    sections = []
    tables = []
    for name, _, _, row, _ in runs(settings):
        if (run_dir / name / "results.json").exists():
            tables.append((row, liang_table(read_classify_results(run_dir / name)), None))
    if tables:
        tables[0] = (tables[0][0], tables[0][1], published.LIANG_TABLE1)
        text = ["Accuracy, then precision / recall / F1 per class on the real test split."]
        balance = run_dir / "synth-covid" / "balance.json"
        if balance.exists():
            text.append(f"{read_json(balance)['synthetic_covid']} synthetic COVID-19 image(s) bring COVID-19 up to the largest training class "
                        f"(at least one is made); the x{settings.get('covid_copies', 8)} baseline uses each real COVID-19 image "
                        f"{settings.get('covid_copies', 8)} times.")
        if not settings.get("weights"):
            text.append("Transfer learning is left out: it needs local ImageNet weights (setting 'weights').")
        sections.append(Section("Classification (Table I)", text, tables, links=[(run_dir / n / "results.md", n) for n, *_ in runs(settings)],
                                departures=departures(record)))
    sections.append(Section("Synthetic COVID-19 images", images=[(run_dir / "synth-covid" / "set" / "preview.png", "Normal -> COVID-19")]))
    return write_report(run_dir, TITLE, sections, [f"Data: {record['data']}; preset {record['preset']}; seed {record['seed']}."])
