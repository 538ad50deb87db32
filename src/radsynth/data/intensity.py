"""Intensity normalisation: source values -> float32 in [-1, 1] and back.

Three modes, chosen per source and recorded in every prepared set:

* ``hu``: Hounsfield-unit data (CT with a rescale to HU). Clip to a window and scale linearly.
  The default is the standard lung window, level -600 / width 1500, i.e. [-1350, 150] HU, which
  keeps healthy lung (about -850 HU) and ground-glass (about -600 HU) apart. Jiang et al. write
  "a HU scale [-600, 1500]" (ct-cgan-jiang2020, section IV-A); read literally, that clips all
  healthy lung to black, and it is most likely the same level/width pair. ``JIANG_HU_WINDOW``
  keeps the literal numbers for reproducing that paper (``--window -600,1500``).
* ``percentile``: data that is not in HU (e.g. the RP9 NIfTI, a 0..4095 lung-window rendering).
  Clip to the [0.5, 99.5] percentiles of the whole volume and scale linearly; robust to a few
  extreme voxels and identical for every slice of a volume.
* ``range``: integer images whose full dtype range is meaningful (8-bit PNG/JPG: 0..255). Exact
  and invertible.

Each mode gives a ``(lo, hi)`` pair; ``to_unit`` maps lo -> -1 and hi -> +1, ``from_unit`` inverts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radsynth.errors import InputError

JIANG_HU_WINDOW = (-600.0, 1500.0)  # ct-cgan-jiang2020, section IV-A, as printed
LUNG_HU_WINDOW = (-1350.0, 150.0)  # window level -600, width 1500
PERCENTILES = (0.5, 99.5)
MODES = ("hu", "percentile", "range")


@dataclass(frozen=True)
class IntensitySpec:
    """How to normalise: a mode and its parameters."""

    mode: str = "percentile"
    window: tuple[float, float] = LUNG_HU_WINDOW
    percentiles: tuple[float, float] = PERCENTILES

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError("--intensity", f"unknown mode '{self.mode}' (choose from {', '.join(MODES)})")
        if not self.window[0] < self.window[1]:
            raise InputError("--window", f"window low {self.window[0]} must be below high {self.window[1]}")
        if not 0 <= self.percentiles[0] < self.percentiles[1] <= 100:
            raise InputError("--percentiles", f"need 0 <= low < high <= 100, got {self.percentiles}")


def value_range(values: np.ndarray, spec: IntensitySpec, dtype_max: float | None = None) -> tuple[float, float]:
    """The (lo, hi) source values that map to (-1, 1) for this volume / image."""
    if spec.mode == "hu":
        return float(spec.window[0]), float(spec.window[1])
    if spec.mode == "range":
        if dtype_max is None:
            raise ValueError("range mode needs the dtype maximum of the source")
        return 0.0, float(dtype_max)
    lo, hi = np.percentile(values, spec.percentiles)
    if hi <= lo:  # flat image: keep it flat at -1 instead of dividing by zero
        hi = lo + 1.0
    return float(lo), float(hi)


def to_unit(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Clip to [lo, hi] and scale to [-1, 1]; float32, same shape."""
    scaled = (np.clip(values.astype(np.float32), lo, hi) - lo) / (hi - lo)
    return (scaled * 2.0 - 1.0).astype(np.float32)


def from_unit(unit: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Inverse of ``to_unit`` (up to the clipping): [-1, 1] -> source values, float32."""
    return ((np.asarray(unit, dtype=np.float32) + 1.0) / 2.0 * (hi - lo) + lo).astype(np.float32)


def check_finite(values: np.ndarray, where: str) -> None:
    """Refuse images with NaN or infinite values."""
    if not np.isfinite(values).all():
        raise InputError(where, "image contains NaN or infinite values")
