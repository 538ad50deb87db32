"""Write a synthetic set: the prepared-slice-set format plus provenance columns.

A synthetic set is readable by ``SliceSet`` like any prepared set. Each row also records the
model, the SHA-256 of the checkpoint that made it, the seed, the condition it was made from
(``condition_id`` in the condition set, whose ``patient`` it keeps, so that evaluation can refuse
synthetic images derived from test patients) and the diversifier used.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radsynth.atomic import atomic_output_dir
from radsynth.data.prepared import FORMAT, MANIFEST_COLUMNS, write_image, write_label
from radsynth.provenance import provenance

SYNTH_COLUMNS = ("model", "checkpoint_sha256", "seed", "condition_set", "condition_id", "diversifier")


@dataclass
class SyntheticSlice:
    """One generated image with its label map (the condition) and where it came from."""

    image: np.ndarray  # (H, W) float32 in [-1, 1]
    label: np.ndarray  # (H, W) uint8 schema labels
    patient: str
    split: str
    slice_index: int
    condition_id: str
    seed: int
    diversifier: str


def write_synthetic_set(
    out: Path,
    items: list[SyntheticSlice],
    model: str,
    checkpoint_sha256: str,
    condition_set: str,
    info: dict[str, Any],
    force: bool = False,
) -> Path:
    """Write ``items`` to ``out`` atomically; ``info`` goes into dataset.json beside the counts."""
    with atomic_output_dir(out, force) as tmp:
        (tmp / "images").mkdir()
        (tmp / "labels").mkdir()
        rows = []
        for index, item in enumerate(items):
            slice_id = f"{index:06d}"
            write_image(tmp / "images" / f"{slice_id}.png", item.image)
            write_label(tmp / "labels" / f"{slice_id}.png", item.label)
            rows.append(
                {
                    "id": slice_id,
                    "image": f"images/{slice_id}.png",
                    "label": f"labels/{slice_id}.png",
                    "patient": item.patient,
                    "split": item.split,
                    "slice_index": item.slice_index,
                    "klass": "",
                    "has_infection": int(bool((item.label >= 2).any())),
                    "intensity": "synthetic",
                    "value_lo": "-1",
                    "value_hi": "1",
                    "source_file": "",
                    "model": model,
                    "checkpoint_sha256": checkpoint_sha256,
                    "seed": item.seed,
                    "condition_set": condition_set,
                    "condition_id": item.condition_id,
                    "diversifier": item.diversifier,
                }
            )
        with open(tmp / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS + SYNTH_COLUMNS)
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
            **info,
            "provenance": provenance(info.get("seed"), info.get("config")),
        }
        (tmp / "dataset.json").write_text(json.dumps(dataset, indent=2), encoding="utf-8")
    return out
