"""The Synthesizer contract and the run directory every method writes.

A run directory::

    run.json                 method, resolved config, training data (set, slice ids, patients), provenance
    <phase>/checkpoints/     step_XXXXXXX.safetensors + .json while the phase runs (the newest), then one slim
                             final_XXXXXXX.safetensors + .json (the weights synthesis and later phases read);
                             latest.json names the newest; --keep-checkpoints keeps them all (see training/checkpoint.py)
    log_<phase>.csv          losses and it/s per logged step
    samples/                 sample grids (PNG) during training

``fit`` trains (resumable), ``generate`` maps condition label maps to images, ``load`` rebuilds a
trained synthesizer from its run directory (weights from safetensors only).
"""

from __future__ import annotations

import json
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from radsynth import distributed
from radsynth.atomic import atomic_write_text, check_output_free
from radsynth.data.representative import auto_slice
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.provenance import provenance
from radsynth.training.checkpoint import Retention

RUN_FILE = "run.json"
DIVERSIFIERS = ("none", "dropout")


@dataclass
class TrainingData:
    """The labelled slices a synthesizer learns from, as tensors.

    images: (N, 1, H, W) float32 in [-1, 1]; labels: (N, H, W) int64 schema labels.
    """

    images: torch.Tensor
    labels: torch.Tensor
    ids: list[str]
    patients: list[str]
    source: str


def load_training_data(path: Path, size: int | None, slice_ids: tuple[str, ...] = (), split: str = "train") -> TrainingData:
    """Labelled slices from a prepared set: the given ids (``("auto",)``: the best-ranked train slice,
    ``radsynth.data.representative``), else every slice of ``split``.

    ``size`` is the side the slices must have (``None``: any, the caller resizes).
    """
    if slice_ids == ("auto",):
        slice_ids = (auto_slice(Path(path)),)
    dataset = SliceSet(path, split=None if slice_ids else split)
    if dataset.info.get("scheme") == "none":
        raise InputError(path, "has no label maps; mask-conditional synthesis needs images with masks")
    index = {row["id"]: i for i, row in enumerate(dataset.rows)}
    missing = [s for s in slice_ids if s not in index]
    if missing:
        raise InputError(path, f"no slice with id {', '.join(missing)} (ids are the 'id' column of manifest.csv)")
    chosen = [index[s] for s in slice_ids] if slice_ids else list(range(len(dataset)))
    items = [dataset[i] for i in chosen]
    empty = [meta["id"] for _, label, meta in items if not bool((label > 0).any())]
    if slice_ids and empty:
        raise InputError(path, f"slice(s) {', '.join(empty)} have an empty label map (all background); a mask-conditional synthesizer needs a condition")
    if len(empty) == len(items):
        raise InputError(path, f"every label map of the {len(items)} training slice(s) is empty (all background); a mask-conditional synthesizer needs conditions")
    images = torch.stack([image for image, _, _ in items])
    if size is not None and (images.shape[-1] != size or images.shape[-2] != size):
        raise InputError(path, f"slices are {images.shape[-2]}x{images.shape[-1]} px but the model size is {size}; prepare the set with --size {size}")
    return TrainingData(
        images=images,
        labels=torch.stack([label for _, label, _ in items]),
        ids=[meta["id"] for _, _, meta in items],
        patients=sorted({meta["patient"] for _, _, meta in items}),
        source=str(Path(path).resolve()),
    )


def start_run(run_dir: Path, method: str, config: dict[str, Any], data: TrainingData, resume: bool, force: bool, extra: dict | None = None) -> None:
    """Create (or, with ``resume``, check) the run directory and its run.json (rank 0 of a torchrun run)."""
    distributed.on_main(lambda: _start_run(run_dir, method, config, data, resume, force, extra))


def _start_run(run_dir: Path, method: str, config: dict[str, Any], data: TrainingData, resume: bool, force: bool, extra: dict | None) -> None:
    record = {
        "method": method,
        "config": config,
        "data": {"source": data.source, "slice_ids": data.ids, "patients": data.patients},
        **(extra or {}),
    }
    path = Path(run_dir) / RUN_FILE
    if resume and path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        for key in ("method", "config", "data"):
            if previous.get(key) != record[key]:
                raise InputError(path, f"--resume with a different {key} than the run was started with; start a new run instead")
        return
    if not resume:
        check_output_free(Path(run_dir), force)
        if force and Path(run_dir).exists():
            shutil.rmtree(run_dir)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({**record, "provenance": provenance(config.get("seed"), config)}, indent=2))


def update_run(run_dir: Path, **fields: Any) -> None:
    """Add or replace top-level fields of run.json (e.g. which feature extractors were used); rank 0 writes."""

    def write() -> None:
        record = read_run(run_dir)
        record.update(fields)
        atomic_write_text(Path(run_dir) / RUN_FILE, json.dumps(record, indent=2))

    distributed.on_main(write)


def read_run(run_dir: Path) -> dict[str, Any]:
    """run.json of a run directory."""
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        raise InputError(run_dir, "is not a radsynth run (no run.json)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read ({exc})") from None


class Synthesizer(ABC):
    """A trained (or trainable) image synthesizer."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def fit(cls, data: Path, config: Any, out_dir: Path, resume: bool = False, force: bool = False, device: str = "auto",
            retention: Retention = Retention()) -> Synthesizer:
        """Train on the prepared set ``data`` into ``out_dir``; resumable. ``retention``: which checkpoints stay on disk."""

    @classmethod
    @abstractmethod
    def load(cls, run_dir: Path, device: str = "auto") -> Synthesizer:
        """Rebuild from a run directory's newest checkpoint."""

    @abstractmethod
    def generate(self, labels: torch.Tensor, seed: int, diversify: str = "none") -> torch.Tensor:
        """(N, H, W) condition label maps -> (N, 1, H, W) images in [-1, 1]."""

    @property
    @abstractmethod
    def checkpoint_sha256(self) -> str:
        """Hash of the weights file(s) that ``generate`` uses."""

    @property
    @abstractmethod
    def output_size(self) -> int:
        """Side in pixels of the images ``generate`` returns (label maps are resized to it)."""

    def check_conditions(self, conditions: Path, typed: bool) -> None:
        """Raise ``InputError`` when the condition set at ``conditions`` (``typed``: it labels GGO and
        consolidation apart) cannot be rendered faithfully; by default every label map can."""

    def complement(self, real: torch.Tensor, labels: torch.Tensor, synthetic: torch.Tensor) -> torch.Tensor | None:
        """For methods that synthesize a region only: ``synthetic`` pasted into ``real`` (N, 1, S, S).

        None (the default) means ``generate`` already returns whole images.
        """
        return None
