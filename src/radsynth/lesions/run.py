"""The lesion run and the sets made with it.

* ``train_lesions``: ``radsynth train lesions --data SET --slice ID [--slice ID2] --out RUN`` measures a
  ``LesionModel`` on the slice(s) and keeps their lesions as crops: ``RUN/run.json`` (method
  ``lesions``, the model, provenance), ``RUN/lesions.npz`` (crops for ``--edit paste``),
  ``RUN/preview.png`` (the slices with their labels, then layouts drawn for them).
* ``edit_set``: ``radsynth synth RUN --edit add|remove|paste|replace --images SET --out DIR``: each slice of
  SET (a split, or chosen ids) edited ``n_per_image`` times, written as a synthetic set (the
  prepared-set format, each row keeping its source slice's patient and split, so evaluation's
  leakage rules apply unchanged).
* ``write_layouts``: ``radsynth data layouts --lungs SET --model RUN --out DIR``: label maps with the
  lung of SET's slices and generated infection (their own infection label becomes lung), with the
  slice's image edited to match (its infection removed, the new lesions added). Any mask-conditional
  run renders them with ``radsynth synth RUN --conditions DIR``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radsynth.atomic import atomic_output_dir, check_output_free
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.evaluate.protocols import set_flags
from radsynth.lesions import BURDENS, EDITS
from radsynth.lesions.edit import DEFAULT_MARGIN, LesionCrop, add_lesions, lesion_crops, paste_lesions, remove_lesions
from radsynth.lesions.layout import lesion_centres, sample_layout
from radsynth.lesions.model import LesionModel, learn
from radsynth.provenance import provenance
from radsynth.report.grids import overlay, tile
from radsynth.synth.base import load_training_data, read_run
from radsynth.synth.export import SyntheticSlice, write_synthetic_set

METHOD = "lesions"
MODEL_FILE = "run.json"
CROPS_FILE = "lesions.npz"


def _seed(seed: int, what: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, *what.encode()])


def _save_png(path: Path, panels: list[np.ndarray], columns: int) -> None:
    from PIL import Image

    Image.fromarray(tile(panels, columns)).save(path)


def train_lesions(data: Path, slice_ids: list[str], out: Path, seed: int = 0, prior_weight: float = 0.5, force: bool = False) -> Path:
    """Measure the lesion model of the annotated slice(s) ``slice_ids`` (``["auto"]``: the best-ranked train slice)."""
    if not slice_ids:
        raise InputError("--slice", "train lesions learns from one or two annotated slices: give --slice ID (or auto)")
    if not 0 <= prior_weight <= 1:
        raise InputError("--set", f"prior_weight must lie in [0, 1], got {prior_weight}")
    training = load_training_data(Path(data), None, tuple(slice_ids))
    dataset = SliceSet(data)
    _, typed = set_flags(dataset)
    images = [image[0].numpy() for image in training.images]
    labels = [label.numpy() for label in training.labels]
    without = [i for i, label in zip(training.ids, labels) if not (label >= 2).any()]
    if without:
        raise InputError(data, f"slice(s) {', '.join(without)} hold no infection label; the lesion model learns from annotated lesions")
    model = learn(images, labels, typed, training.ids, prior_weight)
    crops = [c for image, label in zip(images, labels) for c in lesion_crops(image, label, typed)]
    config = {"slice_ids": training.ids, "seed": seed, "prior_weight": prior_weight}
    record = {
        "method": METHOD, "config": config,
        "data": {"source": training.source, "slice_ids": training.ids, "patients": training.patients},
        "model": model.to_json(), "crops": len(crops), "provenance": provenance(seed, config),
    }
    with atomic_output_dir(Path(out), force) as tmp:
        (tmp / MODEL_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
        np.savez_compressed(tmp / CROPS_FILE, **{f"image_{i}": c.image for i, c in enumerate(crops)},
                            **{f"label_{i}": c.label for i, c in enumerate(crops)})
        panels = [overlay(image, label) for image, label in zip(images, labels)]
        rng = _seed(seed, "preview", 0)
        for image, label in zip(images, labels):
            lung = np.where(label >= 1, 1, 0).astype(np.uint8)
            for _ in range(3):
                panels.append(overlay(image, np.maximum(lung, sample_layout(label, model, rng).labels)))
        _save_png(tmp / "preview.png", panels, 4)
    return Path(out)


def load_lesion_run(run: Path) -> tuple[dict[str, Any], LesionModel, list[LesionCrop]]:
    """(run.json, model, crops) of a lesion run."""
    record = read_run(run)
    if record.get("method") != METHOD:
        raise InputError(run, f"is a '{record.get('method')}' run, not a lesion run (radsynth train lesions)")
    archive = np.load(Path(run) / CROPS_FILE)
    crops = [LesionCrop(archive[f"image_{i}"], archive[f"label_{i}"]) for i in range(int(record["crops"]))]
    return record, LesionModel.from_json(record["model"]), crops


def run_hash(run: Path) -> str:
    """SHA-256 of a lesion run's model and crops (what a set made with it, or a segmenter trained with it, records)."""
    return hashlib.sha256((Path(run) / MODEL_FILE).read_bytes() + (Path(run) / CROPS_FILE).read_bytes()).hexdigest()


NEW_LESIONS = ("add", "replace", "layout")  # the edits that draw new lesions (``sample_layout``)


@dataclass(frozen=True)
class EditOptions:
    """How each slice is edited, checked once when made.

    ``mode``: one of EDITS, or ``layout`` (``write_layouts``; the same edit as ``replace``). ``margin``: px of the
    feathering band around each edited region (beyond it nothing changes). ``burden`` (add / replace / layout):
    ``model`` draws the new lesions' areas from the lesion model; ``same`` makes them total the slice's annotated
    infection area (replace: the slice keeps its amount of infection; add: at most doubles it, as new lesions may
    overlap the old; a slice without infection is returned unchanged). ``pleura_gap`` (add / replace / layout): new
    lesions keep more than this many px (at 128 px) from the lung's border."""

    mode: str
    margin: int = DEFAULT_MARGIN
    burden: str = "model"
    pleura_gap: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in (*EDITS, "layout"):
            raise InputError("--edit", f"unknown edit '{self.mode}'; expected one of {', '.join(EDITS)}")
        if self.burden not in BURDENS:
            raise InputError("--burden", f"unknown burden '{self.burden}'; expected one of {', '.join(BURDENS)}")
        if not (self.pleura_gap >= 0 and np.isfinite(self.pleura_gap)):
            raise InputError("--pleura-gap", f"must be a distance >= 0 px, got {self.pleura_gap}")
        for flag, given in (("--burden", self.burden != "model"), ("--pleura-gap", self.pleura_gap > 0)):
            if given and self.mode not in NEW_LESIONS:
                raise InputError(flag, f"applies to --edit add and replace (new lesions), not '{self.mode}'")


def edit_one(image: np.ndarray, label: np.ndarray, model: LesionModel, crops: list[LesionCrop], rng: np.random.Generator,
             options: EditOptions) -> tuple[np.ndarray, np.ndarray]:
    """One edit of one slice: image (H, W) in [-1, 1], label (H, W) -> (image, label), as ``options`` say."""
    mode, margin = options.mode, options.margin
    area = float((label >= 2).sum()) if options.burden == "same" else None
    if mode == "add":
        layout = sample_layout(label, model, rng, area, options.pleura_gap)
        return add_lesions(image, label, layout.labels, model, margin, layout.density)
    if mode == "remove":
        return remove_lesions(image, label, rng, margin)
    if mode in ("replace", "layout"):  # the slice's own infection becomes lung, then new lesions are drawn for that lung
        clean_image, lung_label = remove_lesions(image, label, rng, margin)
        layout = sample_layout(lung_label, model, rng, area, options.pleura_gap)
        return add_lesions(clean_image, lung_label, layout.labels, model, margin, layout.density)
    if not crops:  # paste
        raise InputError("--edit paste", "the lesion run kept no lesion crops")
    return paste_lesions(image, label, crops, lesion_centres(label, model, rng), rng, margin)


def _lung_slices(dataset: SliceSet, slice_ids: list[str] | None, limit: int | None):
    """(index, image, label, meta) of the chosen slices that have a lung label, each decoded once; at most ``limit``."""
    if slice_ids:
        index = {row["id"]: i for i, row in enumerate(dataset.rows)}
        missing = [s for s in slice_ids if s not in index]
        if missing:
            raise InputError(dataset.root, f"no slice with id {', '.join(missing)} in the chosen split")
        chosen = [index[s] for s in slice_ids]
    else:
        chosen = list(range(len(dataset)))
    found = 0
    for i in chosen:
        image, label, meta = dataset[i]
        if not (meta["label"] and bool((label >= 1).any())):
            continue
        yield i, image[0].numpy(), label.numpy(), meta
        found += 1
        if limit and found == limit:
            return
    if not found:
        raise InputError(dataset.root, "no slice with a lung label to edit")


def _write_edits(run: Path, source: Path, out: Path, options: EditOptions, split: str | None, copies: int, seed: int,
                 slice_ids: list[str] | None, limit: int | None, force: bool, progress: Callable[[int], None] | None,
                 info: dict[str, Any]) -> Path:
    """Each chosen slice of ``source`` edited ``copies`` times (``edit_one``), written as the synthetic set ``out``."""
    check_output_free(Path(out), force)
    record, model, crops = load_lesion_run(run)
    dataset = SliceSet(source, split=split, cache=False)
    has_lung, typed = set_flags(dataset)
    if not has_lung:
        raise InputError(source, "has no lung labels; lesions are placed inside the lung")
    model = model.for_labels(typed)
    items = []
    for done, (index, image, label, meta) in enumerate(_lung_slices(dataset, slice_ids, limit)):
        for copy in range(copies):
            rng = _seed(seed, options.mode, index * copies + copy)
            edited, new_label = edit_one(image, label, model, crops, rng, options)
            items.append(SyntheticSlice(image=edited, label=new_label.astype(np.uint8), patient=meta["patient"], split=meta["split"],
                                        slice_index=int(meta["slice_index"] or 0), condition_id=meta["id"], seed=seed, diversifier=options.mode))
        if progress:
            progress((done + 1) * copies)
    info = {"seed": seed, **info, "lesion_run": str(Path(run).resolve()), "lesion_patients": record["data"]["patients"],
            "has_lung": True, "infection_typed": typed}  # lesion_patients: evaluation refuses them as test patients
    preview = lambda folder: _save_png(folder / "preview.png", [overlay(i.image, i.label) for i in items[:16]], 4)  # noqa: E731
    return write_synthetic_set(Path(out), items, f"lesions-{options.mode}", run_hash(run), str(Path(source).resolve()), info,
                               force=force, add_files=preview)


def edit_set(run: Path, images: Path, out: Path, mode: str, split: str | None = "train", n_per_image: int = 1,
             seed: int = 0, slice_ids: list[str] | None = None, limit: int | None = None, margin: int = DEFAULT_MARGIN,
             force: bool = False, progress: Callable[[int], None] | None = None, burden: str = "model",
             pleura_gap: float = 0.0) -> Path:
    """Edit the slices of ``images`` with the lesion run ``run`` and write the synthetic set ``out`` (``mode`` one of
    EDITS; ``margin``, ``burden``, ``pleura_gap``: see ``EditOptions``)."""
    if mode not in EDITS:
        raise InputError("--edit", f"unknown edit '{mode}'; expected one of {', '.join(EDITS)}")
    options = EditOptions(mode, margin, burden, pleura_gap)
    config = {"edit": mode, "n_per_image": n_per_image, "split": split, "margin": margin, "burden": burden, "pleura_gap": pleura_gap}
    info = {"edit": mode, "margin": margin, "burden": burden, "pleura_gap": pleura_gap, "config": config}
    return _write_edits(run, images, out, options, split, n_per_image, seed, slice_ids, limit, force, progress, info)


def write_layouts(lungs: Path, run: Path, out: Path, split: str | None = "train", n_per_lung: int = 1, seed: int = 0,
                  limit: int | None = None, margin: int = DEFAULT_MARGIN, force: bool = False,
                  progress: Callable[[int], None] | None = None, pleura_gap: float = 0.0) -> Path:
    """Label maps with the lung of ``lungs``' slices and generated infection, images edited to match (see module;
    ``margin``, ``pleura_gap``: see ``EditOptions``)."""
    options = EditOptions("layout", margin, pleura_gap=pleura_gap)
    info = {"layouts": True, "pleura_gap": pleura_gap, "config": {"n_per_lung": n_per_lung, "split": split, "margin": margin, "pleura_gap": pleura_gap}}
    return _write_edits(run, lungs, out, options, split, n_per_lung, seed, None, limit, force, progress, info)
