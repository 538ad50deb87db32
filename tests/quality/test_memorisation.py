"""Memorisation audit units: distances, calibration and the binomial verdict, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from radsynth.quality.memorisation import audit, calibrate, closest_pairs, nearest, other_patient_mask, pixel_vectors


def test_pixel_vector_distance_is_rmse_on_unit_intensities():
    a = torch.zeros(1, 1, 8, 8)
    b = torch.full((1, 1, 8, 8), 0.2)  # 0.1 apart on [0, 1]
    assert torch.cdist(pixel_vectors(a), pixel_vectors(b)).item() == pytest.approx(0.1)


def test_nearest_with_excluded_pairs():
    refs = torch.tensor([[0.0], [1.0], [5.0]])
    queries = torch.tensor([[0.9], [4.0]])
    d, i = nearest(queries, refs)
    assert i.tolist() == [1, 2] and d.tolist() == pytest.approx([0.1, 1.0])
    exclude = other_patient_mask(["p1", "p2"], ["p0", "p1", "p2"])
    assert exclude.tolist() == [[False, True, False], [False, False, True]]
    d, i = nearest(queries, refs, exclude)
    assert i.tolist() == [0, 1] and d.tolist() == pytest.approx([0.9, 3.0])
    d, i = nearest(queries[:1], refs[:1], torch.tensor([[True]]))
    assert math.isinf(d.item()) and i.item() == -1


def test_calibration_quantile_over_other_patients():
    refs = torch.tensor([[0.0], [10.0]])
    # four held-out images of patient 'c': distances 1, 2, 3, 4 to the nearest reference
    real = torch.tensor([[1.0], [2.0], [7.0], [6.0]])
    cal = calibrate(real, ["c"] * 4, refs, ["a", "b"], 0.5, "test")
    assert cal["tau"] == pytest.approx(2.5) and cal["pairs"] == 4 and cal["min"] == 1.0
    assert calibrate(real[:1], ["a"], refs[:1], ["a"], 0.5, "test") is None  # no other patient to compare with


def test_audit_binomial_verdict_by_hand():
    refs = torch.zeros(1, 1)
    cal = {"tau": 0.5, "quantile": 0.05}
    vectors = torch.tensor([[0.0], [0.1], [0.2], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0]])
    result = audit(vectors, refs, cal, alpha=0.01, copy_distance=0.05, own_reference=[0] * 10)
    assert result["count"] == 3 and result["share"] == pytest.approx(0.3)
    p = 1 - sum(math.comb(10, k) * 0.05**k * 0.95 ** (10 - k) for k in range(3))  # P(Binomial(10, 0.05) >= 3)
    assert result["p_value"] == pytest.approx(p) and result["flagged"] is (p < 0.01)
    assert result["exact_copies"] == 1 and result["nn_is_condition"] == 1.0
    one = audit(vectors[3:], refs, cal, alpha=0.01)
    assert one["count"] == 0 and one["p_value"] == 1.0 and one["flagged"] is False
    assert closest_pairs(result, 2) == [(0, 0, 0.0), (1, 0, pytest.approx(0.1))]
    uncalibrated = audit(vectors, refs, None, alpha=0.01)
    assert uncalibrated["flagged"] is None and "two patients" in uncalibrated["why_not"]
