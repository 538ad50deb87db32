"""Synthesize a set from condition masks: ``radsynth synth RUN --conditions DIR --out DIR``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from radsynth.data.geometry import resize_label
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.synth.base import Synthesizer
from radsynth.synth.export import SyntheticSlice, write_synthetic_set
from radsynth.synth.trainer import step_seed


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
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Generate ``n_per_condition`` images for each labelled slice of ``conditions`` (one split or all).

    Label maps of another size are resized to the model size (nearest neighbour). Batch b of copy
    j is seeded with ``step_seed(seed, 'synth', ...)``, so the output depends only on the arguments.
    """
    dataset = SliceSet(conditions, split=split)
    rows = [i for i, row in enumerate(dataset.rows) if row["label"]]
    if not rows:
        raise InputError(conditions, "has no label maps to use as conditions")
    if limit is not None:
        rows = rows[:limit]
    if n_per_condition < 1:
        raise InputError("--n-per-condition", "must be >= 1")
    items: list[SyntheticSlice] = []
    done = 0
    for copy in range(n_per_condition):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            labels = []
            for i in chunk:
                label = dataset[i][1].numpy().astype(np.uint8)
                labels.append(resize_label(label, size) if label.shape != (size, size) else label)
            batch_seed = step_seed(seed, f"synth-{copy}", start)
            images = synthesizer.generate(torch.from_numpy(np.stack(labels)).long(), batch_seed, diversify)
            for i, label, image in zip(chunk, labels, images):
                row = dataset.rows[i]
                items.append(
                    SyntheticSlice(
                        image=image[0].numpy(), label=label, patient=row["patient"], split=row["split"],
                        slice_index=int(row["slice_index"]), condition_id=row["id"], seed=seed, diversifier=diversify,
                    )
                )
            done += len(chunk)
            if progress:
                progress(done)
    info = {"seed": seed, "diversify": diversify, "n_per_condition": n_per_condition, "size": size, "config": {"split": split, "limit": limit}}
    return write_synthetic_set(out, items, model_name, synthesizer.checkpoint_sha256, str(Path(conditions).resolve()), info, force)
