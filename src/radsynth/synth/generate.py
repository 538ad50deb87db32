"""Synthesize a set from condition masks: ``radsynth synth RUN --conditions DIR --out DIR``."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from radsynth import distributed
from radsynth.data.augment import AUGMENTS, augment_pair, resize_batch
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.evaluate.protocols import set_flags
from radsynth.progress import reporting
from radsynth.report.grids import save_grid
from radsynth.synth.base import Synthesizer
from radsynth.synth.export import SyntheticSlice, write_synthetic_set
from radsynth.training.trainer import step_seed

PREVIEW_ROWS = 6  # conditions shown in a synthetic set's preview.png: those with the largest lung + lesion area


def evenly_spaced(rows: list[int], limit: int) -> list[int]:
    """At most ``limit`` of ``rows``, evenly spaced and in order: first and last included, so a cut set
    still covers every patient and modality of a set sorted by them (a head cut keeps only the first ones)."""
    if limit < 1:
        raise InputError("--limit", f"must be >= 1, got {limit}")
    if limit >= len(rows):
        return list(rows)
    picks = np.unique(np.linspace(0, len(rows) - 1, limit).round().astype(int))
    return [rows[i] for i in picks]


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

    ``progress(n_done)`` after each batch; without it, a progress bar or paced lines of its own (``radsynth.progress``).

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
    synthesizer.check_conditions(Path(conditions), set_flags(dataset)[1])
    if limit is not None:
        rows = evenly_spaced(rows, limit)
    if n_per_condition < 1:
        raise InputError("--n-per-condition", "must be >= 1")
    batches = [(copy, start) for copy in range(n_per_condition) for start in range(0, len(rows), batch_size)]
    mine: dict[int, list[SyntheticSlice]] = {}
    done, world = 0, distributed.world_size()
    with reporting(progress, "synthesizing", len(rows) * n_per_condition) as update:
        for b in distributed.rank_slice(len(batches)):  # under torchrun each rank makes every N-th batch
            copy, start = batches[b]
            mine[b] = _synthesize_batch(synthesizer, dataset, rows[start : start + batch_size], size, augment, seed, copy, start, diversify)
            done += len(mine[b])
            update(min(done * world, len(rows) * n_per_condition))  # rank 0's bar: its own count x ranks
    shards = distributed.gather_to_main(mine)  # rank 0 writes the merged set, in the one-process order
    info = {
        "seed": seed, "diversify": diversify, "n_per_condition": n_per_condition, "size": size,
        "config": {"split": split, "limit": limit, "augment": augment},
    }

    def write() -> Path:
        merged = {b: part for shard in shards for b, part in shard.items()}
        items = [item for b in range(len(batches)) for item in merged[b]]
        origins = [(*batches[b], k) for b in range(len(batches)) for k in range(len(merged[b]))]  # (copy, start, row in batch)
        previews = _preview_rows(dataset, rows, items, origins, batch_size, size, augment, seed)
        return write_synthetic_set(
            out, items, model_name, synthesizer.checkpoint_sha256, str(Path(conditions).resolve()), info, force,
            add_files=lambda folder: _save_preview(folder / "preview.png", previews),
        )

    return distributed.on_main(write)


def _synthesize_batch(
    synthesizer: Synthesizer, dataset: SliceSet, chunk: list[int], size: int, augment: str, seed: int, copy: int, start: int, diversify: str
) -> list[SyntheticSlice]:
    """Copy ``copy`` of the conditions ``chunk`` (rows ``start``... of the condition list); seeded by (seed, copy, start) only."""
    real, labels = _conditions(dataset, chunk, size, augment, step_seed(seed, f"augment-{copy}", start))
    images = synthesizer.generate(labels, step_seed(seed, f"synth-{copy}", start), diversify)
    complemented = synthesizer.complement(real, labels, images)
    out = []
    for k, i in enumerate(chunk):
        row = dataset.rows[i]
        out.append(
            SyntheticSlice(
                image=(images if complemented is None else complemented)[k, 0].numpy(),
                label=labels[k].numpy().astype(np.uint8), patient=row["patient"], split=row["split"],
                slice_index=int(row["slice_index"]), condition_id=row["id"], seed=seed, diversifier=diversify,
                lung_only=None if complemented is None else images[k, 0].numpy(),
            )
        )
    return out


def _preview_rows(
    dataset: SliceSet, rows: list[int], items: list[SyntheticSlice], origins: list[tuple[int, int, int]], batch_size: int, size: int, augment: str, seed: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]]:
    """The PREVIEW_ROWS items with the largest lung + lesion area (a min-heap over the items in order;
    ties keep the rule of the heap), as (real, synthetic, complemented or None, label), in item order.
    The real images are rebuilt from the conditions (the same seeded warp), so ranks need not send them."""
    heap: list[tuple[int, int]] = []
    for index, item in enumerate(items):
        area = int((item.label > 0).sum())
        if len(heap) < PREVIEW_ROWS or area > heap[0][0]:
            (heapq.heappush if len(heap) < PREVIEW_ROWS else heapq.heapreplace)(heap, (area, index))
    out = []
    for index in sorted(i for _, i in heap):
        copy, start, k = origins[index]  # item ``index`` is row k of batch (copy, start)
        real, _ = _conditions(dataset, rows[start : start + batch_size], size, augment, step_seed(seed, f"augment-{copy}", start))
        item = items[index]
        synthetic = item.image if item.lung_only is None else item.lung_only
        complemented = None if item.lung_only is None else item.image
        out.append((real[k, 0].numpy(), synthetic, complemented, item.label))
    return out


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
