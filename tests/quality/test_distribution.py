"""FD and KID on given features: hand cases, a scipy reference, identical sets, KID's unbiasedness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from radsynth.quality.distribution import frechet_distance, kernel_distance


def _gauss(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


def test_fd_one_dimensional_hand_case():
    # real {0, 2}: mean 1, variance 2; fake {3, 5}: mean 4, variance 2 -> (4 - 1)^2 + 2 + 2 - 2 sqrt(2 * 2) = 9
    assert frechet_distance(torch.tensor([[0.0], [2.0]]), torch.tensor([[3.0], [5.0]])) == pytest.approx(9.0, abs=1e-9)


def test_fd_of_identical_sets_is_zero():
    x = _gauss(50, 16, 0)
    assert abs(frechet_distance(x, x.clone())) < 1e-8
    # rank-deficient covariances (fewer images than dimensions), as with small synthetic sets
    # (the square roots of ~1e-15 round-off eigenvalues add ~1e-6 against a covariance trace of ~2 x 60)
    y = _gauss(10, 64, 1)
    trace = 2 * float(torch.cov(y.T).trace())
    assert abs(frechet_distance(y, y.clone())) < 1e-7 * trace


def test_fd_matches_scipy_sqrtm_reference():
    real, fake = _gauss(80, 6, 2), _gauss(70, 6, 3, shift=0.5) * 1.3
    mu1, mu2 = real.mean(0).numpy(), fake.mean(0).numpy()
    s1, s2 = np.cov(real.numpy(), rowvar=False), np.cov(fake.numpy(), rowvar=False)
    expected = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-8)


def test_kid_hand_case():
    # k(x, y) = (x y / 1 + 1)^3; real {0, 1, 2}, fake {1, 2, 3}, subsets of all 3 images:
    # off-diagonal k_rr sum 58 / 6 + off-diagonal k_ff sum 868 / 6 - 2 * (k_rf sum 597) / 9 = 65 / 3
    result = kernel_distance(torch.tensor([[0.0], [1.0], [2.0]]), torch.tensor([[1.0], [2.0], [3.0]]), subsets=5, subset_size=3)
    assert result["mean"] == pytest.approx(65 / 3, abs=1e-9)
    assert result["sd"] == pytest.approx(0.0, abs=1e-9)
    assert result["subset_size"] == 3


def test_kid_is_unbiased_where_the_biased_estimate_is_not():
    """Two samples of the same distribution: the mean KID over many draws is 0 within 3 standard errors,
    while the V-statistic (diagonal kept) is clearly positive."""
    kids, biased = [], []
    for trial in range(150):
        x, y = _gauss(8, 4, 1000 + trial), _gauss(8, 4, 5000 + trial)
        kids.append(kernel_distance(x, y, subsets=1, subset_size=8)["mean"])
        k = lambda a, b: (a @ b.T / 4 + 1) ** 3  # noqa: E731
        biased.append(float(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()))
    kids_arr = np.array(kids)
    standard_error = kids_arr.std(ddof=1) / np.sqrt(len(kids_arr))
    assert abs(kids_arr.mean()) < 3 * standard_error
    assert np.mean(biased) > 10 * standard_error


def test_kid_separates_shifted_sets_and_is_seeded():
    x, y = _gauss(40, 8, 7), _gauss(40, 8, 8, shift=1.0)
    a = kernel_distance(x, y, subsets=10, subset_size=20, seed=3)
    assert a == kernel_distance(x, y, subsets=10, subset_size=20, seed=3)
    assert a["mean"] > 10 * abs(kernel_distance(x, _gauss(40, 8, 9), subsets=10, subset_size=20)["mean"])
    assert kernel_distance(x, y, subset_size=1000)["subset_size"] == 40  # capped at the set sizes


def test_too_few_vectors_is_an_error():
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))
