"""``radsynth experiment cxr-cyclegan``: Zunair & Hamza 2021 (CycleGAN over-sampling of COVID-19 X-rays).

Two CycleGANs translate Normal -> COVID-19 (G_NC) and Pneumonia -> COVID-19 (G_PC) (3.1-3.3);
each translates the source-class training images into a synthetic COVID-19 set; per classifier and
task (Normal vs COVID-19: Table 1; Pneumonia vs COVID-19: Table 2) the four training-set settings
Real, Real + G_1, Real + G_1 + G_2 and only synthetic positives are trained and tested on the real
held-out test split; confidence plots (Fig. 4), Grad-CAM (Fig. 6-7) and UMAP (Fig. 8) figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from radsynth.config import build_config
from radsynth.evaluate.classify import evaluate_classification, read_classify_results
from radsynth.evaluate.classify_config import PRESETS as CLASSIFY_PRESETS
from radsynth.evaluate.classify_config import ClassifyConfig
from radsynth.evaluate.classify_tables import zunair_table
from radsynth.experiments.common import departure_line, done_results, fit_stage, prepare_stage, prepared_set, read_json
from radsynth.experiments.stages import Stage, StageContext
from radsynth.report import published
from radsynth.report.html import Section, write_report
from radsynth.synth.registry import load_synthesizer
from radsynth.synth.translate import translate_set

TITLE = "CycleGAN over-sampling of COVID-19 chest X-rays (Zunair & Hamza 2021)"
POSITIVE = "COVID-19"
# the two translators (3.1): (key, source class)
TRANSLATORS = [("nc", "Normal"), ("pc", "Pneumonia")]
# the two tasks (Tables 1-2): (key, negative class, first synthetic set, second synthetic set, published table)
TASKS = [("nc", "Normal", "nc", "pc", published.ZUNAIR_TABLE1), ("pc", "Pneumonia", "pc", "nc", published.ZUNAIR_TABLE2)]

# 4.2: a patient-level split, 80 % training and 20 % test; no val split: "the hyper-parameters are not
# tuned and hence do not require a separate validation set" (4.5), so early stopping ("until the loss
# stagnates", 4.5) watches the training loss (evaluate.classify._train's monitor without a val split)
SPLIT = {"train": 0.8, "val": 0.0, "test": 0.2}

PRESETS: dict[str, dict[str, Any]] = {
    # 4.2, 4.5: 256 px, CycleGAN's paper schedule, Adadelta classifiers with early stopping; the
    # paper's VGG-16, ResNet-50 and DenseNet (radsynth has DenseNet-121, not -102 or the BGT head)
    "paper": {"size": 256, "cyclegan_preset": "paper", "cyclegan": {}, "translate_n": None,
              "classify_preset": "zunair", "classify": {}, "classifiers": ["vgg16", "resnet50", "densenet121"]},
    # CPU: 128 px CycleGANs with short schedules, one ResNet18 at 64 px for a few epochs
    "quick": {"size": 128, "cyclegan_preset": "quick", "cyclegan": {"ngf": 16, "ndf": 16, "steps": 400, "sample_every": 100, "checkpoint_every": 100},
              "translate_n": None, "classify_preset": "zunair", "classify": {"size": 64, "epochs": 4, "early_stop_patience": 2, "umap_points": 300},
              "classifiers": ["resnet18"]},
}


def _translate_stage(key: str, settings: dict, seed: int, device: str):
    def run(ctx: StageContext) -> None:
        translator = load_synthesizer(ctx.stage(f"train-cyclegan-{key}"), device)
        translate_set(translator, "cyclegan", prepared_set(ctx.run_dir), ctx.folder / "set", split="train", n=settings["translate_n"],
                      seed=seed, force=True)

    return run


def settings_of(task: tuple, run_dir: Path) -> list[tuple[str, str, str]]:
    """(stage suffix, SPEC, table row) of the four training-set settings of a task."""
    key, negative, first, second, _ = task
    g1, g2 = (Path(run_dir) / f"synth-g-{k}" / "set" for k in (first, second))
    t1, t2 = f"G_{first.upper()}", f"G_{second.upper()}"
    return [("real", "real", "Real"), (f"add-{first}", f"add:{g1}", f"Real + {t1}"),
            (f"add-{first}-{second}", f"add:{g1},{g2}", f"Real + {t1} + {t2}"), ("synthetic", f"synth:{g1}", "Only synthetic")]


def _classify_stage(model: str, task: tuple, spec_index: int, settings: dict, seed: int, device: str):
    def run(ctx: StageContext) -> None:
        _, spec, name = settings_of(task, ctx.run_dir)[spec_index]
        overrides = {**settings["classify"], "model": model, "seed": seed, "classes": f"{task[1]},{POSITIVE}"}
        config = build_config(ClassifyConfig, CLASSIFY_PRESETS, settings["classify_preset"], overrides)
        resume = ctx.partial and (ctx.folder / "classify.json").exists()
        evaluate_classification(spec, prepared_set(ctx.run_dir), ctx.folder, config, name=name, device=device, resume=resume,
                                force=not resume, figures=True, console=ctx.console)

    return run


def _cls_names(settings: dict, task: tuple) -> list[str]:
    return [f"cls-{m}-{task[0]}-{suffix}" for m in settings["classifiers"] for suffix, _, _ in settings_of(task, Path("."))]


def stages(data: Path, settings: dict, seed: int = 0, device: str = "auto") -> list[Stage]:
    size = settings["size"]
    out = [Stage("prepare", prepare_stage(data, size, seed, fractions=SPLIT), f"the X-ray set at {size} px, 80 / 20 patient split (4.2)")]
    for key, source in TRANSLATORS:
        overrides = {**settings["cyclegan"], "size": size, "seed": seed, "source": source, "target": POSITIVE}
        out.append(Stage(f"train-cyclegan-{key}", fit_stage("cyclegan", settings["cyclegan_preset"], overrides, device=device),
                         f"CycleGAN {source} -> {POSITIVE}", resumable=True))
    out += [Stage(f"synth-g-{key}", _translate_stage(key, settings, seed, device), f"G_{key.upper()}: translate the {source} training images")
            for key, source in TRANSLATORS]
    for task in TASKS:
        for model in settings["classifiers"]:
            for i, (suffix, _, name) in enumerate(settings_of(task, Path("."))):
                out.append(Stage(f"cls-{model}-{task[0]}-{suffix}", _classify_stage(model, task, i, settings, seed, device),
                                 f"{model}, {task[1]} vs {POSITIVE}, {name}", resumable=True))
    return out


def departures(record: dict) -> str:
    """The remaining departures from the paper (4.2-4.5) of Tables 1-2 (the same for both)."""
    settings = record["settings"]
    items = ["classifiers start from scratch, not from ImageNet weights"]
    if "densenet121" in settings["classifiers"]:
        items.append("DenseNet-121 in place of the paper's DenseNet-102")
    config = build_config(ClassifyConfig, CLASSIFY_PRESETS, settings["classify_preset"], settings["classify"])
    items.append(f"early stopping after {config.early_stop_patience} epochs without a lower training loss, at most "
                 f"{config.epochs} epochs (the paper names neither)")
    cyc = settings["cyclegan"]
    quick = (f"{settings['size']} px CycleGANs ({cyc.get('steps')} steps, ngf {cyc.get('ngf')}), {' / '.join(settings['classifiers'])} "
             f"at {config.size} px")
    return departure_line(items, record, quick)


def build_report(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    record = read_json(run_dir / "experiment.json")
    settings = record["settings"]
    sections: list[Section] = []
    for task in TASKS:
        names = _cls_names(settings, task)
        results = done_results(run_dir, names, read_classify_results)
        if not results:
            continue
        images = []
        for name, r in zip([n for n in names if (run_dir / n / "results.json").exists()], results):
            for key, path in r.get("figures", {}).items():
                images.append((run_dir / name / path, f"{r['training_set']['name']} ({r['model']['kind']}): {key.replace('_', ' ')}"))
        sections.append(Section(
            f"{task[1]} vs {POSITIVE} (Table {1 if task[0] == 'nc' else 2})",
            ["Sensitivity and false negatives of COVID-19 on the real test split; skew = negatives / positives in training."],
            [("SEN, FN, skew", zunair_table(results), task[4])], images=images,
            links=[(run_dir / n / "results.md", n) for n in names], departures=departures(record),
        ))
    previews = [(run_dir / f"synth-g-{k}" / "set" / "preview.png", f"G_{k.upper()}: {s} -> {POSITIVE}") for k, s in TRANSLATORS]
    sections.append(Section("Synthetic COVID-19 images", images=previews))
    return write_report(run_dir, TITLE, sections, [f"Data: {record['data']}; preset {record['preset']}; seed {record['seed']}."])
