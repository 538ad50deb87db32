"""Write a synthetic set: the prepared-slice-set format plus provenance columns.

A synthetic set is readable by ``SliceSet`` like any prepared set. Each row also records the
model, the SHA-256 of the checkpoint that made it, the seed, the condition it was made from
(``condition_id`` in the condition set, whose ``patient`` it keeps, so that evaluation can refuse
synthetic images derived from test patients) and the diversifier used.

Image translators (X-ray CycleGAN / pix2pix) write items without a label map: their "condition"
is the source image (``condition_set`` = the source prepared set, ``condition_id`` = the source
image's id, ``patient`` / ``split`` / ``source_file`` copied from it), ``klass`` is the class the
image was translated to, and dataset.json says ``scheme: none``. ``rgb=True`` also writes
``rgb/<id>.png``, an 8-bit 3-channel copy of each image for tools that want RGB input; the
16-bit greyscale ``images/<id>.png`` stays the one the manifest points at.

Region-only synthesizers (the global-local cGAN, Jiang III-D) write the complemented image
(synthetic lung pasted into the real non-lung area) as ``images/<id>.png`` and the lung-only
synthesis as ``lung_only/<id>.png``, named in the extra manifest column ``lung_only_image``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from radsynth.atomic import atomic_output_dir
from radsynth.data.prepared import FORMAT, MANIFEST_COLUMNS, write_image, write_label
from radsynth.provenance import provenance
from radsynth.report.grids import to_uint8

SYNTH_COLUMNS = ("model", "checkpoint_sha256", "seed", "condition_set", "condition_id", "diversifier")
LUNG_ONLY_COLUMN = "lung_only_image"  # sets of region-only synthesizers (Jiang III-D): the lung-only image


@dataclass
class SyntheticSlice:
    """One generated image with its label map (the condition) and where it came from.

    ``label`` is None for image translators (no mask); ``klass`` and ``source_file`` are then
    the target class and the source image's original file.
    """

    image: np.ndarray  # (H, W) float32 in [-1, 1]
    label: np.ndarray | None  # (H, W) uint8 schema labels, or None (image-only)
    patient: str
    split: str
    slice_index: int
    condition_id: str
    seed: int
    diversifier: str
    klass: str = ""
    source_file: str = ""
    lung_only: np.ndarray | None = None  # (H, W) in [-1, 1]: the region-only synthesis when ``image`` is complemented


def write_synthetic_set(
    out: Path,
    items: list[SyntheticSlice],
    model: str,
    checkpoint_sha256: str,
    condition_set: str,
    info: dict[str, Any],
    force: bool = False,
    rgb: bool = False,
    add_files: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``items`` to ``out`` atomically; ``info`` goes into dataset.json beside the counts.

    ``info`` may set ``scheme`` (default ``schema``; ``none`` for image-only sets). ``rgb`` adds
    the 3-channel copies described in the module docstring. ``add_files(folder)`` may write
    more files (e.g. a preview) into the folder before it appears under ``out``.
    """
    with atomic_output_dir(out, force) as tmp:
        (tmp / "images").mkdir()
        if any(item.label is not None for item in items):
            (tmp / "labels").mkdir()
        if rgb:
            (tmp / "rgb").mkdir()
        lung_only = any(item.lung_only is not None for item in items)
        if lung_only:
            (tmp / "lung_only").mkdir()
        rows = []
        for index, item in enumerate(items):
            slice_id = f"{index:06d}"
            write_image(tmp / "images" / f"{slice_id}.png", item.image)
            if item.label is not None:
                write_label(tmp / "labels" / f"{slice_id}.png", item.label)
            if item.lung_only is not None:
                write_image(tmp / "lung_only" / f"{slice_id}.png", item.lung_only)
            if rgb:
                Image.fromarray(np.repeat(to_uint8(item.image)[..., None], 3, axis=-1)).save(tmp / "rgb" / f"{slice_id}.png")
            rows.append(
                {
                    "id": slice_id,
                    "image": f"images/{slice_id}.png",
                    "label": f"labels/{slice_id}.png" if item.label is not None else "",
                    "patient": item.patient,
                    "split": item.split,
                    "slice_index": item.slice_index,
                    "klass": item.klass,
                    "has_infection": "" if item.label is None else int(bool((item.label >= 2).any())),
                    "intensity": "synthetic",
                    "value_lo": "-1",
                    "value_hi": "1",
                    "source_file": item.source_file,
                    "model": model,
                    "checkpoint_sha256": checkpoint_sha256,
                    "seed": item.seed,
                    "condition_set": condition_set,
                    "condition_id": item.condition_id,
                    "diversifier": item.diversifier,
                    **({"lung_only_image": f"lung_only/{slice_id}.png" if item.lung_only is not None else ""} if lung_only else {}),
                }
            )
        with open(tmp / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS + SYNTH_COLUMNS + (LUNG_ONLY_COLUMN,) * lung_only)
            writer.writeheader()
            writer.writerows(rows)
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["split"]] = counts.get(row["split"], 0) + 1
        dataset = {
            "format": FORMAT,
            "synthetic": True,
            "model": model,
            "checkpoint_sha256": checkpoint_sha256,
            "condition_set": condition_set,
            "slices": counts,
            "scheme": "schema",
            **({"rgb": "rgb/<id>.png: 8-bit 3-channel copies of images/<id>.png"} if rgb else {}),
            **info,
            "provenance": provenance(info.get("seed"), info.get("config")),
        }
        (tmp / "dataset.json").write_text(json.dumps(dataset, indent=2), encoding="utf-8")
        if add_files is not None:
            add_files(tmp)
    return out
