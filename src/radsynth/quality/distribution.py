"""Distribution scores between real and synthetic feature sets: Frechet distance and KID.

Both are computed by torchmetrics' ``FrechetInceptionDistance`` / ``KernelInceptionDistance``
given the features already extracted (``features.extract``): the "feature network" handed to
them is the identity on those (N, D) features, so one extraction serves FD, KID and the
feature-space memorisation audit.

* FD = ||mu_r - mu_s||^2 + Tr(S_r + S_s - 2 (S_r S_s)^(1/2)) with sample covariances (n - 1);
  it is biased upwards for small sets, so compare sets of similar size only.
* KID = unbiased MMD^2 with the polynomial kernel k(x, y) = (x.y / D + 1)^3 (Binkowski et al. 2018),
  averaged over ``subsets`` random subsets of ``subset_size`` images of each side (capped at the
  smaller set), with its standard deviation over subsets; the subsets are drawn from ``seed``.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance


class _GivenFeatures(nn.Module):
    """Identity on (N, D) features: lets torchmetrics' FID / KID take features extracted elsewhere."""

    def __init__(self, dims: int) -> None:
        super().__init__()
        self.num_features = dims

    def forward(self, features: Tensor) -> Tensor:
        return features


def _check(real: Tensor, fake: Tensor) -> None:
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be (N, D) and (M, D), got {tuple(real.shape)} and {tuple(fake.shape)}")
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"need at least 2 feature vectors on each side, got {len(real)} and {len(fake)}")


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """Frechet distance between the Gaussians fitted to (N, D) ``real`` and (M, D) ``fake`` features."""
    _check(real, fake)
    metric = FrechetInceptionDistance(feature=_GivenFeatures(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def kernel_distance(real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000, degree: int = 3, seed: int = 0) -> dict[str, float | int]:
    """KID: {'mean', 'sd', 'subset_size', 'subsets'} of the unbiased polynomial-kernel MMD^2 (module docstring)."""
    _check(real, fake)
    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(feature=_GivenFeatures(real.shape[1]), subsets=subsets, subset_size=size, degree=degree)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, sd = metric.compute()
    return {"mean": float(mean), "sd": float(sd), "subset_size": size, "subsets": subsets}
