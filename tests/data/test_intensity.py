import numpy as np
import pytest

from radsynth.data.intensity import JIANG_HU_WINDOW, IntensitySpec, from_unit, to_unit, value_range
from radsynth.errors import InputError


def test_default_hu_window_is_the_lung_window():
    lo, hi = value_range(np.array([0.0]), IntensitySpec(mode="hu"))
    assert (lo, hi) == (-1350.0, 150.0)  # level -600, width 1500
    # healthy lung -850 HU and ground glass -600 HU stay apart: (-850 + 1350) / 1500 * 2 - 1
    np.testing.assert_allclose(to_unit(np.array([-850.0, -600.0]), lo, hi), [-1 / 3, 0.0], atol=1e-6)


def test_hu_window_maps_jiang_window_to_unit_range():
    spec = IntensitySpec(mode="hu", window=JIANG_HU_WINDOW)
    lo, hi = value_range(np.array([0.0]), spec)
    assert (lo, hi) == (-600.0, 1500.0)
    # -600 -> -1, 1500 -> 1, 450 (the middle) -> 0, below/above clip
    np.testing.assert_allclose(to_unit(np.array([-1000.0, -600.0, 450.0, 1500.0, 3000.0]), lo, hi), [-1, -1, 0, 1, 1])


def test_percentile_mode_is_robust_to_outliers():
    values = np.concatenate([np.linspace(0, 100, 1001), [1e6]])
    lo, hi = value_range(values, IntensitySpec(mode="percentile", percentiles=(0.0, 99.0)))
    assert lo == 0.0 and hi < 101


def test_range_mode_and_round_trip():
    lo, hi = value_range(np.array([3.0]), IntensitySpec(mode="range"), dtype_max=255)
    values = np.arange(256, dtype=np.float32)
    np.testing.assert_allclose(from_unit(to_unit(values, lo, hi), lo, hi), values, atol=1e-4)
    assert to_unit(values, lo, hi)[[0, -1]].tolist() == [-1.0, 1.0]


def test_bad_specs_raise():
    with pytest.raises(InputError, match="unknown mode"):
        IntensitySpec(mode="log")
    with pytest.raises(InputError, match="below"):
        IntensitySpec(mode="hu", window=(100.0, -100.0))
