"""The prepared slice set on disk: what ``radsynth data prepare`` writes and every later stage reads.

Layout of a prepared folder::

    dataset.json          format, size, scheme flags, intensity mode, split fractions, seed, counts, provenance
    manifest.csv          one row per slice (columns ``MANIFEST_COLUMNS``, then ``OPTIONAL_COLUMNS``)
    images/<id>.png       16-bit greyscale: value v in 0..65535 is the image x = v / 65535 * 2 - 1 in [-1, 1]
    labels/<id>.png       8-bit label map in radsynth's schema (0..3); absent for image-only sources

``value_lo`` / ``value_hi`` in the manifest map [-1, 1] back to the source's units
(``intensity.from_unit``), e.g. HU for a CT in HU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from radsynth.data.images import read_grey, read_index_png
from radsynth.errors import InputError

FORMAT = "radsynth-slices/1"
MANIFEST_COLUMNS = (
    "id", "image", "label", "patient", "split", "slice_index", "klass",
    "has_infection", "intensity", "value_lo", "value_hi", "source_file",
)
# written by `data prepare`; a set prepared before the column existed lacks it, and readers take "" for it
OPTIONAL_COLUMNS = ("modality",)  # the source manifest's acquisition group (ct-ma20-png: coronacases | radiopaedia)
UINT16_MAX = 65535


def unit_to_uint16(image: np.ndarray) -> np.ndarray:
    """[-1, 1] float -> uint16 0..65535 (clipped)."""
    return np.round((np.clip(image, -1.0, 1.0) + 1.0) / 2.0 * UINT16_MAX).astype(np.uint16)


def uint16_to_unit(stored: np.ndarray) -> np.ndarray:
    """uint16 0..65535 -> float32 in [-1, 1]."""
    return (stored.astype(np.float32) / UINT16_MAX * 2.0 - 1.0).astype(np.float32)


def write_image(path: Path, image: np.ndarray) -> None:
    """(H, W) float in [-1, 1] -> 16-bit PNG."""
    Image.fromarray(unit_to_uint16(image)).save(path)


def read_image(path: Path) -> np.ndarray:
    """16-bit PNG written by ``write_image`` -> (H, W) float32 in [-1, 1]."""
    raw, dtype_max = read_grey(path)
    if dtype_max != UINT16_MAX:
        raise InputError(path, "prepared images must be 16-bit PNG")
    return uint16_to_unit(raw)


def write_label(path: Path, label: np.ndarray) -> None:
    """(H, W) uint8 schema labels -> 8-bit PNG."""
    Image.fromarray(label.astype(np.uint8)).save(path)


def read_label(path: Path) -> np.ndarray:
    """8-bit label PNG -> (H, W) uint8, values checked against the schema."""
    label = read_index_png(path)
    if label.max(initial=0) > 3:
        raise InputError(path, f"label values {sorted(set(np.unique(label).tolist()) - {0, 1, 2, 3})} are outside the schema 0..3")
    return label.astype(np.uint8)
