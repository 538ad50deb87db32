"""Differentiable multi-scale SSIM loss that adapts its number of scales to small images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Wang, Simoncelli & Bovik 2003 (MS-SSIM), as used by CoSinGAN section 2.2 via Zhao et al. [23]:
# 5 scales, 11x11 Gaussian window with sigma 1.5, K1 0.01, K2 0.03, and these scale exponents.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03


def msssim_scales(size: int, win_size: int = WIN_SIZE, max_scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """Largest number of scales <= ``max_scales`` whose coarsest level (``size // 2**(scales-1)``) fits the window."""
    if size < win_size:
        raise ValueError(f"MS-SSIM needs images of at least win_size = {win_size} px per side, got {size}")
    scales = 1
    while scales < max_scales and size // 2**scales >= win_size:
        scales += 1
    return scales


def msssim_weights(scales: int, weights: Sequence[float] = MS_SSIM_WEIGHTS) -> tuple[float, ...]:
    """The scale exponents for ``scales`` scales: all of ``weights`` unchanged, or the first ``scales``
    of them divided by their sum (so they sum to 1)."""
    if not 1 <= scales <= len(weights):
        raise ValueError(f"scales must be between 1 and {len(weights)}, got {scales}")
    if scales == len(weights):
        return tuple(weights)
    head = weights[:scales]
    return tuple(w / sum(head) for w in head)


def _gaussian_window(win_size: int, sigma: float, channels: int, like: Tensor) -> Tensor:
    coords = torch.arange(win_size, dtype=like.dtype, device=like.device) - (win_size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).expand(channels, 1, win_size, win_size).contiguous()


def _safe_pow(base: Tensor, exponent: float) -> Tensor:
    """relu(base) ** exponent with a finite gradient also where base <= 0 (0 there)."""
    positive = base > 0
    return torch.where(positive, base.clamp_min(1e-12) ** exponent, torch.zeros_like(base))


def ms_ssim(
    x: Tensor,
    y: Tensor,
    data_range: float = 2.0,
    win_size: int = WIN_SIZE,
    sigma: float = SIGMA,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    scales: int | None = None,
) -> Tensor:
    """Per-image MS-SSIM (N,) of ``x`` and ``y`` (N, C, H, W) whose values span ``data_range``.

    At each scale, SSIM statistics come from a ``win_size`` Gaussian window (sigma ``sigma``)
    applied without padding ('valid'); between scales both images are 2x2 average-pooled. The
    result is prod_{s < S} relu(cs_s) ** w_s * relu(ssim_S) ** w_S, where cs / ssim are the mean
    contrast-structure / full SSIM maps. ``scales=None`` picks ``msssim_scales(min(H, W))``; the
    exponents are ``msssim_weights(scales, weights)``.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"x and y must both be (N, C, H, W) of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    size = min(x.shape[-2:])
    if scales is None:
        scales = msssim_scales(size, win_size, len(weights))
    elif size // 2 ** (scales - 1) < win_size:
        raise ValueError(
            f"{scales} scales with a {win_size} px window need images of at least "
            f"{win_size * 2 ** (scales - 1)} px, got {size}"
        )
    exponents = msssim_weights(scales, weights)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    window = _gaussian_window(win_size, sigma, x.shape[1], x)
    result = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    for s, exponent in enumerate(exponents):
        if s > 0:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        mu_x, mu_y, xx, yy, xy = (F.conv2d(t, window, groups=x.shape[1]) for t in (x, y, x * x, y * y, x * y))
        var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
        cs_map = (2 * cov + c2) / (var_x + var_y + c2)
        if s < scales - 1:
            value = cs_map.flatten(1).mean(1)
        else:
            value = ((2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map).flatten(1).mean(1)
        result = result * _safe_pow(value, exponent)
    return result


class MSSSIMLoss(nn.Module):
    """1 - MS-SSIM for images whose values lie in ``value_range`` (default [-1, 1]), averaged over the
    batch; a scalar in [0, 1]. Computed on the images mapped to [0, 1] (``data_range=1``) and in fp32 or
    wider, outside any autocast:

    * [0, 1], not [-1, 1]: the luminance term (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) assumes
      non-negative intensities. On [-1, 1] mid-grey regions have means near 0, where the term swings
      (and turns negative when the means differ in sign): two smooth 64 px images 0.1 apart on [0, 1]
      scored 1 - MS-SSIM = 0.70 on [-1, 1] and 0.012 on [0, 1]. The contrast-structure terms are the
      same either way (variances and C2 scale alike).
    * fp32: under bf16 autocast the window sums lose the small differences the loss is for
      (1 - MS-SSIM of 0.0030 in fp32 read 0.0000).

    Inputs (N, C, H, W), both sides at least ``win_size`` px. Scale rule: the standard
    configuration (5 scales, 11x11 Gaussian window, sigma 1.5, exponents 0.0448, 0.2856, 0.3001,
    0.2363, 0.1333) needs the coarsest level, ``min(H, W) // 16``, to hold the 11 px window, i.e.
    176 px. Smaller images keep the window and use the largest number of scales S whose coarsest
    level ``min(H, W) // 2**(S-1)`` is still >= 11, with the first S exponents renormalised to sum
    to 1: 32 px -> 2 scales (0.1356, 0.8644), 48-87 px -> 3, 88-175 px -> 4, >= 176 px -> all 5
    (standard exponents unchanged). Every computed scale is therefore exactly the standard one;
    only the coarsest scales are dropped. Negative contrast terms count as 0 (as in MONAI and
    pytorch-msssim), with a zero, finite gradient there.

    Written here rather than on torchmetrics or MONAI: torchmetrics reflect-pads the SSIM map and
    derives its Gaussian window from sigma (its ``kernel_size`` only enters a size check), and both
    reject images below 176 px at 5 scales with an ``(S-1)**2`` rule that also refuses valid 4-scale
    sizes (e.g. 96 px); at 192 px / 5 scales this matches MONAI's ``compute_ms_ssim``.
    """

    def __init__(
        self,
        value_range: tuple[float, float] = (-1.0, 1.0),  # the library's image range
        win_size: int = WIN_SIZE,
        sigma: float = SIGMA,
        weights: Sequence[float] = MS_SSIM_WEIGHTS,
        scales: int | None = None,
    ) -> None:
        super().__init__()
        if value_range[1] <= value_range[0] or sigma <= 0 or win_size < 1 or win_size % 2 == 0:
            raise ValueError(
                f"need value_range (lo, hi) with lo < hi, sigma > 0 and an odd win_size, got {value_range}, {sigma}, {win_size}"
            )
        if len(weights) == 0 or any(w < 0 for w in weights):
            raise ValueError(f"weights must be a non-empty list of non-negative exponents, got {tuple(weights)}")
        if scales is not None and not 1 <= scales <= len(weights):
            raise ValueError(f"scales must be None or between 1 and {len(weights)}, got {scales}")
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.win_size = win_size
        self.sigma = sigma
        self.weights = tuple(float(w) for w in weights)
        self.scales = scales

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        """Scalar 1 - mean MS-SSIM of ``fake`` and ``real`` (N, C, H, W), both in ``value_range``."""
        lo, hi = self.value_range
        dtype = torch.promote_types(fake.dtype, torch.float32)
        with torch.autocast(device_type=fake.device.type, enabled=False):
            x, y = ((t.to(dtype) - lo) / (hi - lo) for t in (fake, real))
            value = ms_ssim(x, y, 1.0, self.win_size, self.sigma, self.weights, self.scales)
        return 1.0 - value.mean()
