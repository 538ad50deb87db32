"""radsynth.losses: adversarial, feature-matching, pixel, structural and feature-level losses."""

from radsynth.losses.adversarial import AdversarialLoss
from radsynth.losses.extractors import FeatureExtractor, ModuleFeatures
from radsynth.losses.feature_matching import FeatureMatchingLoss
from radsynth.losses.ms_ssim import MSSSIMLoss, ms_ssim, msssim_scales, msssim_weights
from radsynth.losses.perceptual import FeatureLoss
from radsynth.losses.vgg import VGG19Features
from radsynth.losses.wppl import WeightedPixelL1

__all__ = [
    "AdversarialLoss",
    "FeatureExtractor",
    "FeatureLoss",
    "FeatureMatchingLoss",
    "MSSSIMLoss",
    "ModuleFeatures",
    "VGG19Features",
    "WeightedPixelL1",
    "ms_ssim",
    "msssim_scales",
    "msssim_weights",
]
