"""Segmentation UNet (MONAI ``BasicUNet``) for background / lung / infection.

Used as the downstream segmenter and as the feature network of CoSinGAN's MS-FUL (section 2.2,
eq. 9), whose encoder blocks are ``ENCODER_LAYERS``.
"""

from __future__ import annotations

from monai.networks.nets import BasicUNet

ENCODER_LAYERS = ("conv_0", "down_1", "down_2", "down_3", "down_4")
DEFAULT_FEATURES = (32, 32, 64, 128, 256, 32)  # MONAI BasicUNet defaults


def unet_segmenter(num_classes: int = 3, in_channels: int = 1, features: tuple[int, ...] = DEFAULT_FEATURES) -> BasicUNet:
    """(N, in_channels, H, W) in [-1, 1] -> (N, num_classes, H, W) logits; H, W divisible by 16."""
    return BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, features=features)
