"""Does a synthetic set carry the disease? Intensity offsets of the labelled regions and lung texture.

Whole-image scores (FD, PSNR) barely move when the infection is missing; these are what a reader
checks first (issue 21). On [0, 1] intensities ((x + 1) / 2 of the [-1, 1] images), pooled over
every pixel of the set:

* ``lung``, ``ggo``, ``consolidation``, ``infection``: mean intensity of labels 1, 2, 3 and >= 2;
* ``ggo_minus_lung``, ``consolidation_minus_lung``, ``infection_minus_lung``: the offsets;
* ``lung_hf_energy``: mean absolute 4-neighbour Laplacian over healthy-lung pixels (label 1) whose
  four neighbours are healthy lung too (vessels and fine texture, not the lung's edge);
* ``ggo_minus_lung_within``, ``consolidation_minus_lung_within``, ``infection_minus_lung_within``: the
  same offsets taken inside each image (the class's mean minus that image's own healthy-lung mean), averaged
  over the images showing both, weighted by the class's pixels. The pooled offsets compare GGO pixels of one
  patient with lung pixels of all: on ct-rp9-dev, DCM8's lung (0.231 on [0, 1]) is darker than DCM1's
  (0.356) and holds little infection, so the pooled real GGO - lung (0.201) exceeds every patient's own
  (0.178, 0.131, 0.119), and a one-slice model, which renders its slice's lung level everywhere, reads low.

* ``grid_amplitude``: the amplitude on [0, 1] of the strongest periodic grid of period 2 or 4 px (along rows,
  columns or both: transposed-convolution dot grids, row stripes) in the set's mean power spectrum, above the
  spectrum around it (the median of the ring two frequency steps out); a pattern a x (-1)^(x+y), or a x cos(2 pi x / 4),
  over whole images reads a. Period 8 is left out: real CT has spectral peaks there (ct-rp9-dev at 128 px 0.0037).
  Measured at 128 px: real ct-rp9-dev 0.0012, ct-ma20 0.0010; CoSinGAN's quick preset (transposed convs, a dot grid
  visible in its previews) 0.0044, its cpu preset (resize convs) 0.0007-0.0011 (ct-rp9-dev, slices 000032 / 000061).

``ratios(set, reference)`` divides each offset and the texture energy by the real reference's: 1 is
real, 0 a set without the disease (or without texture), negative an infection darker than lung.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

OFFSETS = ("ggo_minus_lung", "consolidation_minus_lung", "infection_minus_lung")
WITHIN = tuple(f"{key}_within" for key in OFFSETS)
RATIO_KEYS = (*OFFSETS, "lung_hf_energy", *WITHIN)


def _mean(values: Tensor) -> float:
    return float(values.double().mean()) if values.numel() else math.nan


def _within_offset(unit: Tensor, lung: Tensor, region: Tensor) -> float:
    """Mean over images of (region mean - healthy-lung mean of the same image), weighted by region pixels;
    ``lung`` and ``region`` (N, S, S) masks."""
    n_region, n_lung = region.sum((1, 2)).double(), lung.sum((1, 2)).double()
    weight = n_region * (n_lung > 0)
    if float(weight.sum()) == 0:
        return math.nan
    unit = unit.double()
    difference = (unit * region).sum((1, 2)) / n_region.clamp(min=1) - (unit * lung).sum((1, 2)) / n_lung.clamp(min=1)
    return float((difference * weight).sum() / weight.sum())


GRID_PERIODS = (2, 4)  # px; the periods of the outer two upsampling layers' dot grids


def grid_amplitude(unit: Tensor) -> float:
    """(N, S, S) images on [0, 1] -> the amplitude of the strongest periodic grid (see the module docstring)."""
    size = unit.shape[-1]
    centred = unit.double() - unit.double().mean((-2, -1), keepdim=True)
    power = (torch.fft.fft2(centred).abs() ** 2).mean(0)
    ring = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if max(abs(dy), abs(dx)) == 2]
    strongest = 0.0
    for period in GRID_PERIODS:
        k = size // period
        if k < 1 or size % period:
            continue
        for row, col in ((k, 0), (0, k), (k, k)):
            around = torch.stack([power[(row + dy) % size, (col + dx) % size] for dy, dx in ring]).median()
            excess = float(power[row, col] - around)
            peaks = 1 if period == 2 else 2  # a cosine of period > 2 splits its power between +k and -k
            strongest = max(strongest, peaks * math.sqrt(max(excess, 0.0)) / size**2)
    return strongest


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
    out: dict[str, Any] = {**means, "lung_hf_energy": _mean(laplacian.abs()[inner]), "grid_amplitude": grid_amplitude(unit)}
    for key, cls in zip(OFFSETS, ("ggo", "consolidation", "infection")):
        out[key] = means[cls] - means["lung"]
    for key, region in zip(WITHIN, (labels == 2, labels == 3, labels >= 2)):
        out[key] = _within_offset(unit, healthy, region)
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
