"""Does a synthetic set carry the disease? Intensity offsets of the labelled regions and lung texture.

Whole-image scores (FD, PSNR) barely move when the infection is missing; these are what a reader
checks first (issue 21). On [0, 1] intensities ((x + 1) / 2 of the [-1, 1] images), pooled over
every pixel of the set:

* ``lung``, ``ggo``, ``consolidation``, ``infection``: mean intensity of labels 1, 2, 3 and >= 2;
* ``ggo_minus_lung``, ``consolidation_minus_lung``, ``infection_minus_lung``: the offsets;
* ``lung_hf_energy``: mean absolute 4-neighbour Laplacian over healthy-lung pixels (label 1) whose
  four neighbours are healthy lung too (vessels and fine texture, not the lung's edge).

``ratios(set, reference)`` divides each offset and the texture energy by the real reference's: 1 is
real, 0 a set without the disease (or without texture), negative an infection darker than lung.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

OFFSETS = ("ggo_minus_lung", "consolidation_minus_lung", "infection_minus_lung")
RATIO_KEYS = (*OFFSETS, "lung_hf_energy")


def _mean(values: Tensor) -> float:
    return float(values.double().mean()) if values.numel() else math.nan


def fidelity(images: Tensor, labels: Tensor) -> dict[str, Any]:
    """images (N, 1, S, S) in [-1, 1], labels (N, S, S) schema labels -> the measures of the module docstring."""
    unit = (images[:, 0].float() + 1) / 2
    means = {
        "lung": _mean(unit[labels == 1]),
        "ggo": _mean(unit[labels == 2]),
        "consolidation": _mean(unit[labels == 3]),
        "infection": _mean(unit[labels >= 2]),
    }
    healthy = labels == 1
    inner = healthy[:, 1:-1, 1:-1] & healthy[:, :-2, 1:-1] & healthy[:, 2:, 1:-1] & healthy[:, 1:-1, :-2] & healthy[:, 1:-1, 2:]
    centre = unit[:, 1:-1, 1:-1]
    laplacian = unit[:, :-2, 1:-1] + unit[:, 2:, 1:-1] + unit[:, 1:-1, :-2] + unit[:, 1:-1, 2:] - 4 * centre
    out: dict[str, Any] = {**means, "lung_hf_energy": _mean(laplacian.abs()[inner])}
    for key, cls in zip(OFFSETS, ("ggo", "consolidation", "infection")):
        out[key] = means[cls] - means["lung"]
    out["pixels"] = {"lung": int(healthy.sum()), "ggo": int((labels == 2).sum()), "consolidation": int((labels == 3).sum()),
                     "lung_texture": int(inner.sum())}
    return out


def ratios(measured: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """Each offset and the texture energy over the real reference's (NaN where either side lacks the region)."""
    out = {}
    for key in RATIO_KEYS:
        ours, theirs = measured.get(key, math.nan), reference.get(key, math.nan)
        out[key] = ours / theirs if math.isfinite(ours) and math.isfinite(theirs) and abs(theirs) > 1e-6 else math.nan
    return out
