"""Paired scores (Jiang Table II): each synthetic image against the real image of its condition.

All three scores use intensities on [0, 1] (the stored [-1, 1] mapped by (x + 1) / 2):

* RMSE = sqrt(mean (s - r)^2);  PSNR = 20 log10(1 / RMSE) dB (peak 1), +inf for identical images;
* SSIM (Wang et al. 2004): 11 x 11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, computed only
  where the window fits inside the image ('valid', as skimage with ``gaussian_weights=True``),
  the mean of the SSIM map. It equals one scale of ``radsynth.losses.ms_ssim``.

'Complemented' scores compare whole frames. 'Lung only' scores (Jiang's second column group)
restrict to the condition's lung (label > 0): RMSE and PSNR over lung pixels only, SSIM as the
mean of the SSIM map of the two lung-only images (-1, black, outside the lung) over the window
centres that lie in the lung. An image whose condition has no lung gives NaN there (left out).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from radsynth.losses.ms_ssim import K1, K2, SIGMA, WIN_SIZE

DATA_RANGE = 1.0  # scores on [0, 1] intensities


def to_unit(image: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1]."""
    return (image + 1.0) / 2.0


def rmse(synthetic: Tensor, real: Tensor, mask: Tensor | None = None) -> Tensor:
    """Per-image RMSE (N,) of (N, 1, H, W) images in [-1, 1], on the [0, 1] scale; over ``mask`` (N, H, W) pixels when given
    (NaN for an empty mask)."""
    diff2 = (to_unit(synthetic) - to_unit(real)).double().square()[:, 0]
    if mask is None:
        return diff2.flatten(1).mean(1).sqrt()
    m = mask.double().flatten(1)
    count = m.sum(1)
    mse = (diff2.flatten(1) * m).sum(1) / count.clamp_min(1)
    return torch.where(count > 0, mse.sqrt(), torch.full_like(mse, math.nan))


def psnr_from_rmse(values: Tensor) -> Tensor:
    """PSNR in dB with peak 1: 20 log10(1 / RMSE); +inf where RMSE is 0 (identical images), NaN stays NaN."""
    psnr = torch.where(values > 0, -20.0 * torch.log10(values.clamp_min(1e-300)), torch.full_like(values, math.inf))
    return torch.where(torch.isnan(values), values, psnr)


def _gaussian(win_size: int, sigma: float, like: Tensor) -> Tensor:
    coords = torch.arange(win_size, dtype=like.dtype, device=like.device) - (win_size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: Tensor, g: Tensor) -> Tensor:
    """'valid' 2-D Gaussian filter as two 1-D passes (the same numbers as the outer-product window, a fraction of the memory)."""
    return F.conv2d(F.conv2d(x, g[None, None, :, None]), g[None, None, None, :])


def ssim_map(synthetic: Tensor, real: Tensor, win_size: int = WIN_SIZE, sigma: float = SIGMA) -> Tensor:
    """SSIM map (N, 1, H - win + 1, W - win + 1) of (N, 1, H, W) images in [-1, 1], on the [0, 1] scale ('valid' window)."""
    x, y = to_unit(synthetic).double(), to_unit(real).double()
    g = _gaussian(win_size, sigma, x)
    mu_x, mu_y, xx, yy, xy = (_blur(t, g) for t in (x, y, x * x, y * y, x * y))
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim(synthetic: Tensor, real: Tensor, mask: Tensor | None = None, win_size: int = WIN_SIZE) -> Tensor:
    """Per-image SSIM (N,); with ``mask`` (N, H, W) the lung-only rule of the module docstring."""
    if mask is None:
        return ssim_map(synthetic, real, win_size).flatten(1).mean(1)
    outside = ~mask.bool()[:, None]
    black = torch.full_like(synthetic, -1.0)
    values = ssim_map(torch.where(outside, black, synthetic), torch.where(outside, black, real), win_size)
    half = (win_size - 1) // 2
    centres = mask.bool()[:, half : mask.shape[1] - half, half : mask.shape[2] - half].double().flatten(1)
    count = centres.sum(1)
    mean = (values.flatten(1) * centres).sum(1) / count.clamp_min(1)
    return torch.where(count > 0, mean, torch.full_like(mean, math.nan))


def paired_scores(synthetic: Tensor, real: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
    """{'psnr', 'ssim', 'rmse'} per image (N,) float64 for (N, 1, H, W) pairs in [-1, 1], optionally lung-only."""
    if synthetic.shape != real.shape or synthetic.dim() != 4 or synthetic.shape[1] != 1:
        raise ValueError(f"synthetic and real must both be (N, 1, H, W), got {tuple(synthetic.shape)} and {tuple(real.shape)}")
    errors = rmse(synthetic, real, mask)
    return {"psnr": psnr_from_rmse(errors), "ssim": ssim(synthetic, real, mask), "rmse": errors}


def summarise_scores(values: Tensor) -> dict[str, float | int | str | None]:
    """mean / sd / n of the finite values of one score; PSNR's +inf (identical pairs) is counted apart.

    ``mean`` is over finite values; when every defined value is +inf the mean is the string 'inf'.
    """
    v = values.double()
    finite = v[torch.isfinite(v)]
    identical = int(torch.isposinf(v).sum())
    n = int(finite.numel())
    mean: float | str | None = float(finite.mean()) if n else ("inf" if identical else None)
    sd = float(finite.std(unbiased=True)) if n > 1 else None
    return {"mean": mean, "sd": sd, "n": n, "identical": identical, "undefined": int(torch.isnan(v).sum())}
