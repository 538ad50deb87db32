"""CoSinGAN's mixed reconstruction loss (eq. 6), shared by CoSinGAN and enhanced pix2pix."""

from __future__ import annotations

import torch

from radsynth.losses import FeatureLoss, MSSSIMLoss, WeightedPixelL1


def mixed_reconstruction(
    lambdas: tuple[float, float, float, float],
    wppl: WeightedPixelL1,
    msssim: MSSSIMLoss,
    feature_losses: dict[str, FeatureLoss],
    fake: torch.Tensor,
    real: torch.Tensor,
    label: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Eq. 6, each term already weighted. Without a 'vgg' feature loss (no local VGG weights) the
    UNet term carries the VGG weight too (see ``feature_extractors``)."""
    l_wppl, l_ssim, l_vgg, l_unet = lambdas
    terms = {"wppl": l_wppl * wppl(fake, real, label), "msssim": l_ssim * msssim(fake, real)}
    if "vgg" in feature_losses:
        terms["vgg"] = l_vgg * feature_losses["vgg"](fake, real)
        terms["unet"] = l_unet * feature_losses["unet"](fake, real)
    else:
        terms["unet"] = (l_vgg + l_unet) * feature_losses["unet"](fake, real)
    return terms
