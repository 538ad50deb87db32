"""Translate real X-rays into a synthetic class: ``radsynth synth RUN --images SET --out DIR``.

Takes the images of the translator's source class from one split of a prepared set (default
``train``: the paper's G_NC / G_PC sets translate the majority class of the training data) and
writes their translations as a synthetic set (``export.write_synthetic_set``): ``klass`` is the
target class, each row links to its source image (``condition_set``, ``condition_id``) and keeps
its ``patient``, ``split`` and ``source_file``. Images of another size are padded square and
resized to the model size. A ``preview.png`` shows up to 8 source images above their translations.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.progress import reporting
from radsynth.report.grids import save_grid
from radsynth.synth.domains import load_image, open_prepared
from radsynth.synth.export import SyntheticSlice, write_synthetic_set
from radsynth.training.trainer import step_seed
from radsynth.synth.translator import Translator

PREVIEW = "preview.png"
PREVIEW_COUNT = 8


def source_rows(dataset: SliceSet, klass: str, split: str | None) -> list[int]:
    """Row indices of class ``klass`` in ``split`` (None: every split) of a prepared set."""
    rows = dataset.rows
    chosen = [i for i, row in enumerate(rows) if row["klass"] == klass and (split is None or row["split"] == split)]
    if not chosen:
        classes = sorted({row["klass"] for row in rows if split is None or row["split"] == split})
        where = f"split '{split}'" if split else "any split"
        raise InputError(dataset.root, f"has no images of class '{klass}' in {where} (classes there: {', '.join(c for c in classes if c) or 'none'})")
    return chosen


def translation_order(count: int, n: int | None, seed: int) -> list[tuple[int, int]]:
    """(position in the source list, copy number) for each output image.

    ``n=None``: every source image once, in manifest order. Otherwise exactly ``n`` images: the
    sources in a seeded random order, cycling (copy 1, 2, ...) when ``n`` exceeds their number.
    """
    if n is None:
        return [(i, 0) for i in range(count)]
    if n < 1:
        raise InputError("--n", f"must be >= 1, got {n}")
    order = np.random.default_rng([seed, 0x7A]).permutation(count)
    return [(int(order[k % count]), k // count) for k in range(n)]


def translate_set(
    translator: Translator,
    model_name: str,
    images: Path,
    out: Path,
    split: str | None = "train",
    n: int | None = None,
    seed: int = 0,
    diversify: str = "none",
    batch_size: int = 8,
    rgb: bool = False,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Translate the source-class images of ``images`` (one split, or all with ``split=None``) into ``out``.

    Batch b is translated with seed ``step_seed(seed, 'translate', b)``, so the output depends only
    on the arguments.
    """
    dataset = open_prepared(images)
    rows = dataset.rows
    chosen = source_rows(dataset, translator.source_class, split)
    plan = translation_order(len(chosen), n, seed)
    size = translator.output_size
    items: list[SyntheticSlice] = []
    sources: list[np.ndarray] = []
    with reporting(progress, "translating", len(plan)) as update:
        for start in range(0, len(plan), batch_size):
            chunk = plan[start : start + batch_size]
            batch = torch.stack([load_image(dataset, chosen[position], size) for position, _ in chunk])
            translated = translator.translate(batch, step_seed(seed, "translate", start // batch_size), diversify)
            for (position, copy), source, image in zip(chunk, batch, translated):
                row = rows[chosen[position]]
                if len(sources) < PREVIEW_COUNT:
                    sources.append(source[0].numpy())
                items.append(
                    SyntheticSlice(
                        image=image[0].numpy(), label=None, patient=row["patient"], split=row["split"], slice_index=copy,
                        condition_id=row["id"], seed=seed, diversifier=diversify, klass=translator.target_class,
                        source_file=row["source_file"],
                    )
                )
            update(len(items))
    info = {
        "scheme": "none", "has_lung": False, "infection_typed": False, "size": size, "seed": seed, "diversify": diversify,
        "source_class": translator.source_class, "target_class": translator.target_class,
        "config": {"split": split, "n": n, "rgb": rgb},
    }
    previews = sources + [item.image for item in items[: len(sources)]]
    write_synthetic_set(
        out, items, model_name, translator.checkpoint_sha256, str(Path(images).resolve()), info, force, rgb=rgb,
        add_files=lambda folder: save_grid(folder / PREVIEW, previews, columns=len(sources)),
    )
    return Path(out)
