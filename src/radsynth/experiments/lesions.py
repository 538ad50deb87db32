"""``radsynth experiment lesions``: does putting generated lesions into REAL slices teach a segmenter the disease?

One annotated slice A (``radsynth.data.representative``, as the cosingan experiment's slice A) gives
the lesion model (``radsynth.lesions``). Segmenters with one recipe, each seeing the same number of
samples (CoSinGAN 3.3.1), are tested on the real held-out patients, for every seed of ``seeds``:

* Sin-TS: slice A with strong augmentation (CoSinGAN's one-slice baseline);
* copy-paste: slice A's annotated lesions pasted into slice A at new places, ``edits`` copies (CarveMix-style);
* one slice + edits: slice A with new lesions added, ``edits`` copies;
* one slice, lesions replaced: slice A with its own lesions removed and new ones added (``--edit replace``),
  ``edits`` copies, so the copies do not all repeat A's lesions;
* CoSinGAN on real masks / on layouts (``cosingan``: True): CoSinGAN trained on slice A rendering every
  training mask, or layouts drawn for every training lung (``radsynth data layouts``);
* real + edited: every real training slice, plus a copy of each with new lesions (``add:P``, P = 1.0 when
  every training slice shows lung: a slice without lung has no copy), drawn in
  OC-TS's order (``epoch_order=grouped``: each real slice when OC-TS draws it, as itself or its copy);
* OC-TS: every real training slice.

``pleura_gap`` (px at 128 px, default 0): new lesions of the add / replace edits and the layouts keep more than
this from the lung's border (``radsynth.lesions.layout``).

The report gives each row's DSC per seed and its mean, and the paired per-patient difference of
"real + edited" and "one slice + edits" against their references with a 95 % t-interval over test
patients (each patient's DSC averaged over seeds first).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from radsynth.atomic import atomic_write_text
from radsynth.config import build_config
from radsynth.data.representative import auto_slice
from radsynth.data.slices import SliceSet
from radsynth.evaluate.config import PRESETS as SEGMENT_PRESETS
from radsynth.evaluate.config import SegmentConfig
from radsynth.evaluate.segment import evaluate_segmentation, read_results
from radsynth.evaluate.stats import t_interval
from radsynth.experiments.common import fit_stage, prepare_stage, prepared_set, read_json
from radsynth.experiments.stages import Stage, StageContext
from radsynth.lesions.run import NEW_LESIONS, edit_set, train_lesions, write_layouts
from radsynth.report.html import Section, write_report
from radsynth.synth.generate import synthesize_set
from radsynth.synth.registry import load_synthesizer

TITLE = "Lesion layouts and lesion editing from one annotated slice (radsynth)"

PRESETS = {
    # CPU: 128 px, the segmenters' quick recipe, three seeds per row (rows are close), no CoSinGAN rows
    "quick": {"size": 128, "split": {"train": 0.7, "val": 0.0, "test": 0.3}, "edits": 64, "pleura_gap": 0.0, "seeds": [0, 1, 2], "cosingan": False,
              "cosingan_preset": "quick", "cosingan_settings": {}, "synth_limit": 400,
              "segment_preset": "quick", "segment": {}},
    # with the CoSinGAN rows: CoSinGAN's cpu preset (about 35 min a pyramid alone on a core). Its quick preset renders no
    # infection a segmenter learns (ct-rp9-dev, slice 000032: 0.0 / 0.2 infection DSC on real masks / layouts); the cpu
    # preset's did on ct-ma20 (cosingan experiment: O-STS 41.0; body_only run: masks 28.5, layouts 27.9)
    "full": {"size": 128, "split": {"train": 0.7, "val": 0.0, "test": 0.3}, "edits": 64, "pleura_gap": 0.0, "seeds": [0, 1, 2], "cosingan": True,
             "cosingan_preset": "cpu", "cosingan_settings": {}, "synth_limit": 400,
             "segment_preset": "quick", "segment": {}},
}

# (stage suffix, table row, reference row for the paired difference or None)
ROWS = [
    ("sin", "Sin-TS (one slice)", None),
    ("paste", "one slice + copy-paste", "sin"),
    ("edits", "one slice + lesion edits", "sin"),
    ("replace", "one slice, lesions replaced", "sin"),
    ("cosingan-masks", "CoSinGAN on real masks", None),
    ("cosingan-layouts", "CoSinGAN on layouts", "cosingan-masks"),
    ("real-edited", "real + edited", "oc"),
    ("oc", "OC-TS (every real slice)", None),
]
COSINGAN_ROWS = ("cosingan-masks", "cosingan-layouts")
REAL_PLUS = ("real-edited",)  # rows trained on add:1.0 (every real slice and an edited copy of each)


def _slice_a(run_dir: Path) -> str:
    return read_json(Path(run_dir) / "choose-slice" / "slice.json")["a"]


def _choose(ctx: StageContext) -> None:
    atomic_write_text(ctx.folder / "slice.json", json.dumps({"a": auto_slice(prepared_set(ctx.run_dir))}, indent=2))


def _edit_stage(mode: str, settings: dict, seed: int, one_slice: bool):
    """Slice A edited ``edits`` times (``one_slice``), or every real training slice once."""

    def run(ctx: StageContext) -> None:
        edit_set(ctx.stage("train-lesions") / "run", prepared_set(ctx.run_dir), ctx.folder / "set", mode, split="train",
                 n_per_image=settings["edits"] if one_slice else 1, seed=seed,
                 slice_ids=[_slice_a(ctx.run_dir)] if one_slice else None, force=True,
                 pleura_gap=settings["pleura_gap"] if mode in NEW_LESIONS else 0.0)

    return run


def _layouts(settings: dict, seed: int):
    def run(ctx: StageContext) -> None:
        write_layouts(prepared_set(ctx.run_dir), ctx.stage("train-lesions") / "run", ctx.folder / "set", split="train", seed=seed, force=True,
                      pleura_gap=settings["pleura_gap"])

    return run


def _render(conditions_of, settings: dict, seed: int, device: str):
    def run(ctx: StageContext) -> None:
        model = load_synthesizer(ctx.stage("train-cosingan"), device)
        synthesize_set(model, model.name, model.output_size, conditions_of(ctx), ctx.folder / "set", split="train", seed=seed,
                       limit=settings["synth_limit"], force=True)

    return run


def _spec(run_dir: Path, suffix: str) -> str:
    sets = {"paste": "edit-one-paste", "edits": "edit-one-add", "replace": "edit-one-replace", "real-edited": "edit-real-add",
            "cosingan-masks": "synth-cosingan-masks", "cosingan-layouts": "synth-cosingan-layouts"}
    if suffix == "sin":
        return f"sin:{_slice_a(run_dir)}"
    if suffix == "oc":
        return "oc"
    path = Path(run_dir) / sets[suffix] / "set"
    if suffix not in REAL_PLUS:
        return f"synth:{path}"
    # every edited copy: one per real training slice with lung (a slice without lung gets no lesion and no copy)
    share = len(SliceSet(path, cache=False)) / len(SliceSet(prepared_set(run_dir), split="train", cache=False))
    return f"add:{share:.6f}:{path}"


def _segment_stage(suffix: str, name: str, settings: dict, seed: int, device: str):
    def run(ctx: StageContext) -> None:
        values = {**settings["segment"], "seed": seed}
        if suffix in REAL_PLUS:  # add:1.0 trains (1 + 1) x the samples (Jiang IV-B-2); here every row sees OC-TS's samples in OC-TS's
            values["epoch_order"] = "grouped"  # order (CoSinGAN 3.3.1), each real slice as itself or as its edited copy
        config = build_config(SegmentConfig, SEGMENT_PRESETS, settings["segment_preset"], values)
        resume = ctx.partial and (ctx.folder / "segment.json").exists()
        evaluate_segmentation(_spec(ctx.run_dir, suffix), [prepared_set(ctx.run_dir)], ctx.folder, config, name=name, device=device,
                              resume=resume, force=not resume, console=ctx.console)

    return run


def _rows(settings: dict) -> list[tuple[str, str, str | None]]:
    return [row for row in ROWS if settings["cosingan"] or row[0] not in COSINGAN_ROWS]


def stages(data: Path, settings: dict, seed: int = 0, device: str = "auto") -> list[Stage]:
    """The protocol's stages, in order (``seed``: data split, lesion model and edits; segmenters use ``settings['seeds']``)."""
    out = [
        Stage("prepare", prepare_stage(data, settings["size"], seed, fractions=settings["split"]), f"the real set at {settings['size']} px, patient-level split"),
        Stage("choose-slice", _choose, "slice A: the best-ranked training slice (typical layout, then most infection)"),
        Stage("train-lesions", lambda ctx: train_lesions(prepared_set(ctx.run_dir), [_slice_a(ctx.run_dir)], ctx.folder / "run", seed=seed, force=True),
              "the lesion model of slice A"),
        Stage("edit-one-add", _edit_stage("add", settings, seed, True), f"slice A with new lesions, {settings['edits']} copies"),
        Stage("edit-one-paste", _edit_stage("paste", settings, seed, True), f"slice A with its lesions pasted elsewhere, {settings['edits']} copies"),
        Stage("edit-one-replace", _edit_stage("replace", settings, seed, True), f"slice A with its lesions replaced by new ones, {settings['edits']} copies"),
        Stage("edit-real-add", _edit_stage("add", settings, seed, False), "every real training slice with new lesions"),
    ]
    if settings["cosingan"]:
        cosingan = {**settings["cosingan_settings"], "seed": seed, "slice_ids": lambda r: [_slice_a(r)]}
        out += [
            Stage("train-cosingan", fit_stage("cosingan", settings["cosingan_preset"], cosingan, device=device), "CoSinGAN on slice A", resumable=True),
            Stage("layouts", _layouts(settings, seed), "layouts for every training lung"),
            Stage("synth-cosingan-masks", _render(lambda ctx: prepared_set(ctx.run_dir), settings, seed, device), "CoSinGAN renders the real training masks"),
            Stage("synth-cosingan-layouts", _render(lambda ctx: ctx.stage("layouts") / "set", settings, seed, device), "CoSinGAN renders the layouts"),
        ]
    for segment_seed in settings["seeds"]:
        out += [Stage(f"seg-{suffix}-s{segment_seed}", _segment_stage(suffix, name, settings, segment_seed, device), f"UNet on {name}, seed {segment_seed}",
                      resumable=True) for suffix, name, _ in _rows(settings)]
    return out


def _done(run_dir: Path, name: str) -> dict | None:
    path = Path(run_dir) / name
    return read_results(path) if (path / "results.json").exists() else None


def _stale(results: dict | None, suffix: str) -> bool:
    """A real + edited result trained in the pool's order (run folders started before epoch_order=grouped): not comparable."""
    return results is not None and suffix in REAL_PLUS and results["training_set"].get("epoch_order", "pool") != "grouped"


def _seed_results(run_dir: Path, suffix: str, seed: int) -> dict | None:
    """The row's results for ``seed`` when done and comparable (stale real + edited results: None)."""
    results = _done(run_dir, f"seg-{suffix}-s{seed}")
    return None if _stale(results, suffix) else results


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}"


def seeds_table(run_dir: Path, settings: dict, region: str) -> str:
    """One row per training set: ``region`` DSC (%) per seed and the mean over the seeds done."""
    seeds = settings["seeds"]
    lines = ["| Training set | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |", "|---|" + "---|" * (len(seeds) + 1)]
    for suffix, name, _ in _rows(settings):
        values, cells = [], []
        for s in seeds:
            results = _done(run_dir, f"seg-{suffix}-s{s}")
            if _stale(results, suffix):  # kept on disk, shown, left out of the mean: `--redo seg-{suffix}-s{s}` retrains it
                values.append(float("nan"))
                cells.append(f"{_pct(results['metrics']['overall'][region]['dsc']['mean'])} (pool order, not in the mean)")
                continue
            values.append(results["metrics"]["overall"][region]["dsc"]["mean"] if results else float("nan"))
            cells.append(_pct(values[-1]))
        done = [v for v in values if not math.isnan(v)]
        mean = sum(done) / len(done) if done else float("nan")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_pct(mean)} |")
    return "\n".join(lines)


def _per_patient(run_dir: Path, suffix: str, seeds: list[int], region: str) -> dict[str, float]:
    """Each test patient's ``region`` DSC averaged over the seeds done."""
    sums: dict[str, list[float]] = {}
    for s in seeds:
        results = _seed_results(run_dir, suffix, s)
        for patient, scores in (results or {}).get("metrics", {}).get("per_patient", {}).items():
            value = scores.get(region, {}).get("dsc")
            if value is not None and not math.isnan(value):
                sums.setdefault(patient, []).append(value)
    return {p: sum(v) / len(v) for p, v in sums.items()}


def paired_table(run_dir: Path, settings: dict, region: str = "infection") -> str:
    """Paired per-patient differences (row - reference) of ``region`` DSC, mean and 95 % t-interval over patients."""
    lines = ["| Comparison | patients | mean difference (DSC %) | 95 % interval | patients better |", "|---|---|---|---|---|"]
    names = {suffix: name for suffix, name, _ in ROWS}
    for suffix, name, reference in _rows(settings):
        if reference is None:
            continue
        ours, theirs = _per_patient(run_dir, suffix, settings["seeds"], region), _per_patient(run_dir, reference, settings["seeds"], region)
        common = sorted(set(ours) & set(theirs))
        if not common:
            continue
        diffs = [ours[p] - theirs[p] for p in common]
        interval = t_interval(diffs)
        lines.append(f"| {name} - {names[reference]} | {len(common)} | {_pct(interval.mean)} | ({_pct(interval.lo)}, {_pct(interval.hi)}) | "
                     f"{sum(d > 0 for d in diffs)} of {len(common)} |")
    return "\n".join(lines)


def _changes(segment: dict) -> str:
    """' with class_weights=[1, 1, 1]' for the settings a run changed from the segmenter preset ('' for none)."""
    return " with " + ", ".join(f"{key}={value}" for key, value in sorted(segment.items())) if segment else ""


def build_report(run_dir: Path) -> Path:
    """``report/index.html`` (and ``results.md``) from whatever stages are done."""
    run_dir = Path(run_dir)
    record = read_json(run_dir / "experiment.json")
    settings = record["settings"]
    slice_text = f"slice A = {_slice_a(run_dir)}" if (run_dir / "choose-slice" / "slice.json").exists() else "slice A not chosen yet"
    text = [f"Data: {record['data']} ({settings['size']} px, patient split {settings['split']}); {slice_text}; "
            f"segmenter preset {settings['segment_preset']}{_changes(settings['segment'])}, seeds {settings['seeds']}. "
            "Every row sees the same number of samples, real + edited in OC-TS's order (epoch_order=grouped: each real "
            "slice when OC-TS draws it, as itself or its edited copy); "
            "DSC (%) is the mean over the real held-out test patients."]
    tables = [("Infection DSC (%) per seed", seeds_table(run_dir, settings, "infection"), None),
              ("Lung DSC (%) per seed", seeds_table(run_dir, settings, "lung"), None),
              ("Paired per-patient infection DSC difference (each patient's DSC averaged over seeds)", paired_table(run_dir, settings), None)]
    markdown = "\n\n".join(f"## {caption}\n\n{table}" for caption, table, _ in tables)
    atomic_write_text(run_dir / "results.md", f"# {TITLE}\n\n{text[0]}\n\n{markdown}\n")
    images = [(run_dir / "train-lesions" / "run" / "preview.png", "slice A with its labels, then layouts drawn for its lung"),
              (run_dir / "edit-one-add" / "set" / "preview.png", "one slice + lesion edits"),
              (run_dir / "edit-one-paste" / "set" / "preview.png", "one slice + copy-paste"),
              (run_dir / "edit-real-add" / "set" / "preview.png", "real slices with new lesions"),
              (run_dir / "layouts" / "set" / "preview.png", "layouts for other lungs")]
    sections = [Section("Segmenters tested on held-out patients", text, tables),
                Section("The edited sets", images=[(p, c) for p, c in images if p.exists()])]
    return write_report(run_dir, TITLE, sections, [f"preset {record['preset']}; seed {record['seed']}."])
