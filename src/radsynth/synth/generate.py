"""Synthesize a set from condition masks: ``radsynth synth RUN --conditions DIR --out DIR``."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from radsynth.data.augment import AUGMENTS, augment_pair, resize_batch
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.report.grids import save_grid
from radsynth.synth.base import Synthesizer
from radsynth.synth.export import SyntheticSlice, write_synthetic_set
from radsynth.synth.trainer import step_seed

PREVIEW_ROWS = 6  # conditions shown in a synthetic set's preview.png: those with the largest lung + lesion area


def synthesize_set(
    synthesizer: Synthesizer,
    model_name: str,
    size: int,
    conditions: Path,
    out: Path,
    split: str | None = None,
    n_per_condition: int = 1,
    seed: int = 0,
    diversify: str = "none",
    limit: int | None = None,
    batch_size: int = 8,
    augment: str = "none",
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Generate ``n_per_condition`` images for each labelled slice of ``conditions`` (one split or all).

    Label maps of another size are resized to the model size (nearest neighbour). ``augment``
    (none, weak, strong, jiang) warps each condition together with its real image first (Jiang
    III-D synthesizes from augmented masks); the stored label is the warped one. For region-only
    synthesizers the stored image is the complemented one and the region-only image is kept too.
    Batch b of copy j is seeded with ``step_seed(seed, 'synth', ...)``, so the output depends only
    on the arguments.
    """
    if augment not in AUGMENTS:
        raise InputError("--augment", f"unknown augmentation '{augment}' (choose from {', '.join(AUGMENTS)})")
    dataset = SliceSet(conditions, split=split)
    rows = [i for i, row in enumerate(dataset.rows) if row["label"]]
    if not rows:
        raise InputError(conditions, "has no label maps to use as conditions")
    if limit is not None:
        rows = rows[:limit]
    if n_per_condition < 1:
        raise InputError("--n-per-condition", "must be >= 1")
    items: list[SyntheticSlice] = []
    preview: list[tuple[int, int, tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]]] = []  # min-heap on area
    done = 0
    for copy in range(n_per_condition):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            real, labels = _conditions(dataset, chunk, size, augment, step_seed(seed, f"augment-{copy}", start))
            batch_seed = step_seed(seed, f"synth-{copy}", start)
            images = synthesizer.generate(labels, batch_seed, diversify)
            complemented = synthesizer.complement(real, labels, images)
            for k, i in enumerate(chunk):
                row = dataset.rows[i]
                area = int((labels[k] > 0).sum())  # preview: the conditions with the most lung and lesion
                if len(preview) < PREVIEW_ROWS or area > preview[0][0]:
                    entry = (real[k, 0].numpy(), images[k, 0].numpy(), None if complemented is None else complemented[k, 0].numpy(), labels[k].numpy().astype(np.uint8))
                    (heapq.heappush if len(preview) < PREVIEW_ROWS else heapq.heapreplace)(preview, (area, len(items), entry))
                items.append(
                    SyntheticSlice(
                        image=(images if complemented is None else complemented)[k, 0].numpy(),
                        label=labels[k].numpy().astype(np.uint8), patient=row["patient"], split=row["split"],
                        slice_index=int(row["slice_index"]), condition_id=row["id"], seed=seed, diversifier=diversify,
                        lung_only=None if complemented is None else images[k, 0].numpy(),
                    )
                )
            done += len(chunk)
            if progress:
                progress(done)
    info = {
        "seed": seed, "diversify": diversify, "n_per_condition": n_per_condition, "size": size,
        "config": {"split": split, "limit": limit, "augment": augment},
    }
    rows = [entry for _, _, entry in sorted(preview, key=lambda e: e[1])]
    return write_synthetic_set(
        out, items, model_name, synthesizer.checkpoint_sha256, str(Path(conditions).resolve()), info, force,
        add_files=lambda folder: _save_preview(folder / "preview.png", rows),
    )


def _save_preview(path: Path, rows: list[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]]) -> None:
    """preview.png, one row per condition: real image, its label overlay, the synthetic image
    (and, for region-only synthesizers, the complemented image)."""
    images: list[np.ndarray] = []
    labels: list[np.ndarray | None] = []
    for real, synthetic, complemented, label in rows:
        images += [real, synthetic] + ([complemented] if complemented is not None else [])
        labels += [label, None] + ([None] if complemented is not None else [])
    save_grid(path, images, labels, columns=3 + (rows[0][2] is not None))


def _conditions(dataset: SliceSet, indices: list[int], size: int, augment: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real images (N, 1, S, S) in [-1, 1] and label maps (N, S, S) int64 of ``indices`` at the model size, warped together."""
    pairs = [resize_batch(dataset[i][0][None], dataset[i][1][None], size) for i in indices]
    real, labels = torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
    if augment != "none":
        real, labels = augment_pair(real, labels, AUGMENTS[augment], torch.Generator().manual_seed(seed))
    return real, labels
