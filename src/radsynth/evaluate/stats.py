"""Means with Student-t 95 % confidence intervals, as both papers report them.

CoSinGAN (Tables 2-4): the interval over the 5 test CT scans with (5 - 1) degrees of freedom.
Jiang et al. (Tables III-IV): mean +- the 95 % half-width over 10 folds of the test images.
Both are ``mean +- t(0.975, n - 1) * sd / sqrt(n)`` with the sample standard deviation (ddof 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95  # both papers


@dataclass(frozen=True)
class Interval:
    """mean and its t-interval [lo, hi] over n finite values; lo = hi = NaN when n < 2."""

    mean: float
    lo: float
    hi: float
    n: int
    sd: float

    @property
    def half(self) -> float:
        """Half-width of the interval (Jiang's '+-' value)."""
        return (self.hi - self.lo) / 2

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "half": self.half}


def t_quantile(dof: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student-t critical value, e.g. t_quantile(4) = 2.776 (CoSinGAN's 5 scans)."""
    return float(stats.t.ppf(0.5 + confidence / 2, dof))


def t_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean and t-interval of the finite ``values`` (NaN entries, e.g. DSC of an empty class, are left out)."""
    array = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = len(array)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, math.nan)
    mean = float(array.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1, math.nan)
    sd = float(array.std(ddof=1))
    half = t_quantile(n - 1, confidence) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, sd)
