"""Paired image + label augmentation as one batched warp (CoSinGAN section 2.3).

Crop, rotation, flips and the elastic displacement are composed into a single sampling grid and
applied with ``grid_sample``: bilinear for images, nearest for label maps (so no label value is
ever invented), on whatever device the batch lives on. Image and condition always receive the same
transform. All randomness comes from the ``torch.Generator`` passed in, so a training step's
augmentation is a pure function of that generator's seed.

Strong augmentation (SA) trains CoSinGAN's first stage and the baselines; weak augmentation (WA)
its second stage. The paper gives the crop ranges (SA 0.5-1.0, WA 0.75-1.0 of the size) and says
WA has no elastic transform and SA's elastic parameters follow the image size; the rotation range
and the elastic magnitudes are not given and are radsynth's choices, named below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentSpec:
    """Parameters of one augmentation strength.

    crop: range of the crop side as a fraction of the image side (the crop is resized back).
    rotate_deg: maximum absolute rotation in degrees.
    hflip, vflip: flip probabilities.
    elastic_alpha: displacement magnitude as a fraction of the image side (0 disables elastic).
    elastic_sigma: smoothing of the displacement field as a fraction of the image side.
    """

    crop: tuple[float, float] = (0.5, 1.0)
    rotate_deg: float = 10.0
    hflip: float = 0.5
    vflip: float = 0.5
    elastic_alpha: float = 0.03
    elastic_sigma: float = 0.08

    def __post_init__(self) -> None:
        if not 0 < self.crop[0] <= self.crop[1] <= 1:
            raise ValueError(f"crop range must satisfy 0 < low <= high <= 1, got {self.crop}")
        if not (0 <= self.hflip <= 1 and 0 <= self.vflip <= 1):
            raise ValueError("flip probabilities must lie in [0, 1]")


# Paper values: SA crop 0.5-1.0 with elastic, WA crop 0.75-1.0 without (section 2.3).
# radsynth's choices: rotation +-10 degrees, elastic displacement 3 % of the side smoothed over 8 %.
STRONG = AugmentSpec(crop=(0.5, 1.0), rotate_deg=10.0, elastic_alpha=0.03, elastic_sigma=0.08)
WEAK = AugmentSpec(crop=(0.75, 1.0), rotate_deg=10.0, elastic_alpha=0.0)
NONE = AugmentSpec(crop=(1.0, 1.0), rotate_deg=0.0, hflip=0.0, vflip=0.0, elastic_alpha=0.0)
# Jiang et al. 2020 IV-A name random resize and crop, rotation, Gaussian noise and elastic transform
# but not their magnitudes: radsynth's choice, no flips (the paper lists none). The noise is added by
# the caller (it touches the image only).
JIANG = AugmentSpec(crop=(0.8, 1.0), rotate_deg=10.0, hflip=0.0, vflip=0.0, elastic_alpha=0.02, elastic_sigma=0.08)
AUGMENTS = {"none": NONE, "weak": WEAK, "strong": STRONG, "jiang": JIANG}


def weakened(spec: AugmentSpec, factor: float) -> AugmentSpec:
    """SA with its intensity scaled by ``factor`` in [0, 1] (CoSinGAN: SA decreases as the scale grows).

    factor 1 keeps ``spec``; factor 0 leaves only flips. The crop range shrinks towards 1.0 and the
    rotation and elastic magnitudes scale linearly.
    """
    factor = min(max(factor, 0.0), 1.0)
    low = 1.0 - (1.0 - spec.crop[0]) * factor
    return AugmentSpec(
        crop=(low, max(low, spec.crop[1])),
        rotate_deg=spec.rotate_deg * factor,
        hflip=spec.hflip,
        vflip=spec.vflip,
        elastic_alpha=spec.elastic_alpha * factor,
        elastic_sigma=spec.elastic_sigma,
    )


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _gaussian_smooth(field: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflect padding."""
    radius = max(1, int(math.ceil(2.5 * sigma_px)))
    x = torch.arange(-radius, radius + 1, dtype=field.dtype, device=field.device)
    kernel = torch.exp(-(x**2) / (2 * sigma_px**2))
    kernel = kernel / kernel.sum()
    channels = field.shape[1]
    pad = min(radius, field.shape[-1] - 1, field.shape[-2] - 1)
    kernel = kernel[radius - pad : radius + pad + 1]
    field = F.conv2d(F.pad(field, (pad, pad, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(F.pad(field, (0, 0, pad, pad), mode="reflect"), kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def sample_grid(n: int, size: tuple[int, int], spec: AugmentSpec, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Random sampling grids (N, H, W, 2) in normalised coordinates for ``grid_sample``."""
    height, width = size
    scale = _uniform(n, spec.crop[0], spec.crop[1], generator)
    # the crop centre may move as far as the crop stays inside the image
    shift_x = _uniform(n, -1, 1, generator) * (1 - scale)
    shift_y = _uniform(n, -1, 1, generator) * (1 - scale)
    angle = _uniform(n, -1, 1, generator) * math.radians(spec.rotate_deg)
    flip_x = torch.where(torch.rand(n, generator=generator) < spec.hflip, -1.0, 1.0)
    flip_y = torch.where(torch.rand(n, generator=generator) < spec.vflip, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([scale * cos * flip_x, -scale * sin * flip_y, shift_x], dim=1),
            torch.stack([scale * sin * flip_x, scale * cos * flip_y, shift_y], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta.to(device), [n, 1, height, width], align_corners=False)
    if spec.elastic_alpha > 0:
        noise = torch.rand((n, 2, height, width), generator=generator) * 2 - 1
        smooth = _gaussian_smooth(noise.to(device), spec.elastic_sigma * max(height, width))
        smooth = smooth / smooth.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8)
        grid = grid + (2 * spec.elastic_alpha) * smooth.permute(0, 2, 3, 1)
    return grid


def augment_pair(
    image: torch.Tensor, label: torch.Tensor, spec: AugmentSpec, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply one random transform per sample to images and their label maps.

    image: (N, C, H, W) float in [-1, 1]; label: (N, H, W) integer. Returns the same shapes and
    dtypes. Pixels pulled in from outside the image take the background value (-1, label 0).
    """
    n, _, height, width = image.shape
    grid = sample_grid(n, (height, width), spec, generator, image.device)
    warped = F.grid_sample(image + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0
    warped_label = F.grid_sample(label[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return warped, warped_label[:, 0].round().to(label.dtype)


def resize_batch(image: torch.Tensor, label: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, H, W) images and (N, H, W) labels -> ``size`` x ``size``: area when shrinking, bilinear
    when growing; labels nearest, so no label value is invented."""
    if image.shape[-1] == size and image.shape[-2] == size:
        return image, label
    mode = "area" if size <= min(image.shape[-2:]) else "bilinear"
    resized = F.interpolate(image, size=(size, size), mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    resized_label = F.interpolate(label[:, None].float(), size=(size, size), mode="nearest-exact")[:, 0].round().to(label.dtype)
    return resized, resized_label
