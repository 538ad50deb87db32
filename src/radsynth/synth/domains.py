"""Image domains for the X-ray translators: class images of a prepared set's train split.

Only rows whose ``split`` is ``train`` are ever read; a patient that also has rows in another
split is refused (a patient-level split never does that, so it means a broken manifest). Images
are resized to the model size when the set was prepared at another size; prepared images are
already square (``radsynth data prepare --fit pad`` by default pads non-square X-rays to a square
on the image minimum, keeping the aspect ratio; ``--fit crop`` takes the centred square).

Batches walk a seeded permutation of the source domain epoch by epoch (the reference CycleGAN
dataset order); the other domain is drawn uniformly at random with replacement (CycleGAN's
unaligned dataset; for pix2pix-cxr this is how a Normal input is paired with a COVID-19 target).
Both depend only on (seed, step), so a resumed run draws the same batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from radsynth.data.augment import AugmentSpec, sample_grid
from radsynth.data.cxr import looks_like_class_folders
from radsynth.data.geometry import fit_to_size
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.training.trainer import step_seed

BALANCES = ("undersample", "none")
TRAIN = "train"


@dataclass
class Domain:
    """One class's training images. images: (N, 1, S, S) float32 in [-1, 1]."""

    klass: str
    images: torch.Tensor
    ids: list[str]
    patients: list[str]  # one per image
    available: int  # train images of this class before balancing


@dataclass
class DomainData:
    """The source (A) and target (B) domains of one prepared set, train split only.

    ``ids``, ``patients`` and ``source`` are what ``start_run`` records in run.json.
    """

    source: str
    a: Domain
    b: Domain
    held_out_patients: int  # patients of the val / test splits, never read
    notes: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return sorted(self.a.ids + self.b.ids)

    @property
    def patients(self) -> list[str]:
        return sorted(set(self.a.patients) | set(self.b.patients))

    def describe(self) -> dict:
        """A JSON-ready summary for run.json."""
        return {
            "A": {"class": self.a.klass, "train_images": self.a.available, "used": len(self.a.ids), "ids": self.a.ids},
            "B": {"class": self.b.klass, "train_images": self.b.available, "used": len(self.b.ids), "ids": self.b.ids},
            "held_out_patients_never_read": self.held_out_patients,
            "notes": self.notes,
        }


def open_prepared(path: Path) -> SliceSet:
    """The prepared set at ``path`` (manifest only; no image is read here)."""
    path = Path(path)
    if path.is_dir() and not (path / "dataset.json").exists() and looks_like_class_folders(path):
        raise InputError(
            path,
            "is a folder of X-ray class folders, not a prepared set; run `radsynth data prepare "
            f"{path} --out PREPARED --size N` first (it splits by patient, so that test patients are never trained on)",
        )
    return SliceSet(path, split=None)


def train_rows(dataset: SliceSet) -> tuple[list[int], int]:
    """Indices of the train-split rows, and the number of held-out (val / test) patients.

    Raises InputError when the set has no train split or a patient sits in train and another split.
    """
    train = [i for i, row in enumerate(dataset.rows) if row["split"] == TRAIN]
    if not train:
        splits = sorted({row["split"] for row in dataset.rows})
        raise InputError(dataset.root, f"has no '{TRAIN}' split (splits: {', '.join(splits)}); translators train on the train split only")
    held_out = {row["patient"] for row in dataset.rows if row["split"] != TRAIN}
    both = sorted({dataset.rows[i]["patient"] for i in train} & held_out)
    if both:
        raise InputError(
            dataset.root / "manifest.csv",
            f"patient(s) {', '.join(both[:5])} have images in the train split and in val/test; "
            "re-run `radsynth data prepare` (it splits by patient)",
        )
    return train, len(held_out)


def load_image(dataset: SliceSet, index: int, size: int) -> torch.Tensor:
    """Row ``index`` as a (1, size, size) tensor in [-1, 1] (padded square, then resized, if needed)."""
    image = dataset[index][0]
    if tuple(image.shape[-2:]) == (size, size):
        return image
    resized, _ = fit_to_size(image[0].numpy(), None, size, "pad")
    return torch.from_numpy(np.clip(resized, -1.0, 1.0))[None]


def _domain(dataset: SliceSet, rows: list[int], klass: str, size: int, available: int) -> Domain:
    return Domain(
        klass=klass,
        images=torch.stack([load_image(dataset, i, size) for i in rows]),
        ids=[dataset.rows[i]["id"] for i in rows],
        patients=[dataset.rows[i]["patient"] for i in rows],
        available=available,
    )


def undersample(n_keep: int, rows: list[int], seed: int) -> list[int]:
    """A seeded random subset of ``rows`` of size ``n_keep``, in manifest order."""
    rng = np.random.default_rng([seed, 0xBA1A])
    chosen = rng.choice(len(rows), size=n_keep, replace=False)
    return [rows[i] for i in sorted(chosen.tolist())]


def load_domains(path: Path, source: str, target: str, size: int, balance: str = "none", seed: int = 0) -> DomainData:
    """Train-split images of class ``source`` (A) and ``target`` (B) at ``size`` x ``size``.

    ``balance='undersample'`` (Zunair & Hamza 3.3) keeps a seeded random subset of the larger
    domain as large as the smaller one; ``'none'`` keeps every image.
    """
    if balance not in BALANCES:
        raise InputError("balance", f"must be one of {', '.join(BALANCES)}, got '{balance}'")
    if source == target:
        raise InputError("--source/--target", f"source and target are both '{source}'; they must be two different classes")
    dataset = open_prepared(path)
    train, held_out = train_rows(dataset)
    by_class: dict[str, list[int]] = {}
    for i in train:
        by_class.setdefault(dataset.rows[i]["klass"], []).append(i)
    for name, klass in (("--source", source), ("--target", target)):
        if klass not in by_class:
            known = ", ".join(sorted(k for k in by_class if k)) or "none (the manifest's klass column is empty)"
            raise InputError(name, f"no train images of class '{klass}' in {path} (classes in its train split: {known})")
    rows_a, rows_b = by_class[source], by_class[target]
    notes = []
    if balance == "undersample" and len(rows_a) != len(rows_b):
        n = min(len(rows_a), len(rows_b))
        bigger = source if len(rows_a) > len(rows_b) else target
        notes.append(f"under-sampled '{bigger}' from {max(len(rows_a), len(rows_b))} to {n} train images (seed {seed})")
        kept_a = undersample(n, rows_a, seed) if len(rows_a) > n else rows_a
        kept_b = undersample(n, rows_b, seed) if len(rows_b) > n else rows_b
    else:
        kept_a, kept_b = rows_a, rows_b
    a = _domain(dataset, kept_a, source, size, len(rows_a))
    b = _domain(dataset, kept_b, target, size, len(rows_b))
    return DomainData(str(Path(path).resolve()), a, b, held_out, notes)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Mini-batches in one pass over ``n`` images (the last one may be smaller)."""
    return math.ceil(n / batch_size)


def epoch_batch(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Indices of step ``step``'s batch when walking a fresh seeded permutation of ``n`` items per epoch."""
    epoch, position = divmod(step, steps_per_epoch(n, batch_size))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(step_seed(seed, "epoch", epoch)))
    return order[position * batch_size : (position + 1) * batch_size]


def random_batch(n: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` indices drawn uniformly from range(n) with replacement."""
    return torch.randint(n, (count,), generator=generator)


def augment_images(images: torch.Tensor, spec: AugmentSpec, generator: torch.Generator) -> torch.Tensor:
    """One random transform per image of (N, C, H, W) in [-1, 1]; outside pixels become -1."""
    grid = sample_grid(images.shape[0], tuple(images.shape[-2:]), spec, generator, images.device)
    return F.grid_sample(images + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0
