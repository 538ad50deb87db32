"""The image sets ``radsynth quality`` compares, loaded into memory.

* the real reference: one split (default ``train``) of the ``--real`` prepared set, the data a
  synthesizer may learn from; every distribution score and the memorisation audit compare with it;
* the real held-out images: the other splits of ``--real`` (other patients), scored like a
  synthetic set as a baseline row ('Real (held-out)');
* each ``--synth`` set (any prepared-format set; synthetic sets carry ``condition_set`` /
  ``condition_id`` and, for region-only synthesizers, ``lung_only_image``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from radsynth.data.augment import resize_batch
from radsynth.data.images import resolve_inside
from radsynth.data.prepared import read_image
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError

LUNG_ONLY_COLUMN = "lung_only_image"


@dataclass
class ImageSet:
    """One set in memory: images (N, 1, S, S) float32 in [-1, 1], labels (N, S, S) int64 or None
    (image-only sets), lung-only syntheses (N, 1, S, S) or None, and the manifest rows."""

    name: str
    root: Path
    images: Tensor
    labels: Tensor | None
    rows: list[dict[str, str]]
    info: dict[str, Any] = field(default_factory=dict)
    lung_only: Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    @property
    def synthetic(self) -> bool:
        """True for a set written by ``radsynth synth`` (rows name the condition they came from)."""
        return bool(self.info.get("synthetic")) or "condition_id" in self.rows[0]

    @property
    def patients(self) -> list[str]:
        return [row["patient"] for row in self.rows]

    def at_size(self, size: int) -> tuple[Tensor, Tensor | None]:
        """Images and labels resized to ``size`` (area down / bilinear up, labels nearest)."""
        if size == self.size or self.labels is None:
            return resize_images(self.images, size), self.labels if size == self.size else None
        return resize_batch(self.images, self.labels, size)


def resize_images(images: Tensor, size: int) -> Tensor:
    """(N, 1, H, W) -> (N, 1, size, size) as ``resize_batch`` resizes images (area down, bilinear up)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return resize_batch(images, torch.zeros(images.shape[0], *images.shape[-2:], dtype=torch.long), size)[0]


def load_set(
    root: Path, name: str | None = None, keep: Callable[[dict[str, str]], bool] | None = None, progress: Callable[[int], None] | None = None
) -> ImageSet:
    """Read the rows of the prepared (or synthetic) set at ``root`` for which ``keep(row)`` holds (all by default)."""
    root = Path(root)
    dataset = SliceSet(root, split=None, cache=False)
    indices = [i for i, row in enumerate(dataset.rows) if keep is None or keep(row)]
    if not indices:
        raise InputError(root, "has no images to score here (check --set reference_split=...)")
    images, labels, rows, lung_only = [], [], [], []
    has_labels = all(dataset.rows[i]["label"] for i in indices)
    region_only = all(dataset.rows[i].get(LUNG_ONLY_COLUMN) for i in indices)
    manifest = root / "manifest.csv"
    for count, i in enumerate(indices, 1):
        image, label, _ = dataset[i]
        row = dataset.rows[i]
        images.append(image)
        labels.append(label)
        rows.append(row)
        if region_only:
            lung_only.append(torch.from_numpy(read_image(resolve_inside(root, row[LUNG_ONLY_COLUMN], manifest)))[None])
        if progress:
            progress(count)
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:
        raise InputError(root, f"holds images of several sizes {sorted(shapes)}; quality scores need one size per set")
    return ImageSet(
        name=name or root.name,
        root=root,
        images=torch.stack(images),
        labels=torch.stack(labels) if has_labels else None,
        rows=rows,
        info=dataset.info,
        lung_only=torch.stack(lung_only) if region_only else None,
    )


def condition_key(row: dict[str, str]) -> str:
    """The condition a row was made from: 'condition_set:condition_id' for synthetic rows, else the row's own id."""
    if row.get("condition_id"):
        return f"{row.get('condition_set', '')}:{row['condition_id']}"
    return f"self:{row['id']}"


def augmentation_of(info: dict[str, Any]) -> str:
    """The augmentation a synthetic set's conditions were warped with ('none' when not recorded)."""
    config = info.get("config") or {}
    return str(config.get("augment") or "none") if isinstance(config, dict) else "none"


def paired_reals(synth: ImageSet) -> tuple[Tensor | None, str]:
    """The real image of each synthetic image's condition, resized to the synthetic size: ((N, 1, S, S), '') or (None, why not).

    Refused (None) for sets that are not synthetic, for conditions warped by augmentation (the
    real image of the unwarped condition is not the target any more), and when the condition
    set or a condition id cannot be found.
    """
    if not synth.synthetic:
        return None, "not a synthetic set (no condition_id column): nothing to pair with"
    augment = augmentation_of(synth.info)
    if augment != "none":
        return None, (
            f"made from augmented conditions (augment={augment}): each condition was warped, so the unwarped real "
            "image is not its target; paired scores are refused (distribution scores still apply). "
            "Synthesize with --augment none for paired scores"
        )
    reals = []
    cache: dict[str, tuple[SliceSet, dict[str, int]]] = {}
    for row in synth.rows:
        source = row.get("condition_set", "")
        if source not in cache:
            if not source or not (Path(source) / "dataset.json").exists():
                return None, f"condition set '{source}' of the synthetic rows is not a prepared set on this machine"
            dataset = SliceSet(source, split=None, cache=False)
            cache[source] = (dataset, {r["id"]: i for i, r in enumerate(dataset.rows)})
        dataset, index = cache[source]
        if row["condition_id"] not in index:
            return None, f"condition id '{row['condition_id']}' is not in {source}"
        reals.append(dataset[index[row["condition_id"]]][0])
    shapes = {tuple(x.shape) for x in reals}
    if len(shapes) > 1:
        return None, f"the condition images have several sizes {sorted(shapes)}"
    return resize_images(torch.stack(reals), synth.size), ""


def lung_masked(images: Tensor, labels: Tensor) -> Tensor:
    """Lung-only images (Jiang III-D): ``images`` (N, 1, S, S) with -1 (black) wherever the label is 0."""
    return torch.where(labels[:, None] > 0, images, torch.full_like(images, -1.0))


def as_numpy(image: Tensor) -> np.ndarray:
    """(1, H, W) or (H, W) tensor -> (H, W) float32 array."""
    return image.reshape(image.shape[-2:]).numpy().astype(np.float32)
