"""Feature-level (perceptual) loss with a pluggable, frozen feature extractor."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from radsynth.losses.extractors import FeatureExtractor, ModuleFeatures
from radsynth.losses.vgg import VGG19Features


class FeatureLoss(nn.Module):
    """CoSinGAN eqs. 8-9 (MS-FVL / MS-FUL): sum_j eta_j * mean|F_j(fake) - F_j(real)|; a scalar.

    ``extractor`` is any module mapping an image batch to a list of feature maps (e.g.
    ``VGG19Features`` for MS-FVL, ``ModuleFeatures`` over a trained segmentation U-Net for
    MS-FUL). It is frozen here: its parameters stop requiring gradients and it stays in eval mode
    even when this loss is put in train mode. Gradients still flow to ``fake``; ``real`` features
    are computed without a graph. The mean over each map's elements is the 1/P_j of the equations.

    ``layer_weights`` (eta_j): one per feature map; ``None`` takes the extractor's
    ``default_layer_weights`` for a ``FeatureExtractor`` (pix2pixHD's 1/32 ... 1 for VGG19) and
    1 per map for other modules.
    """

    def __init__(self, extractor: nn.Module, layer_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.extractor = extractor
        self.extractor.requires_grad_(False)
        self.extractor.eval()
        if layer_weights is None and isinstance(extractor, FeatureExtractor):
            layer_weights = extractor.default_layer_weights
        self.layer_weights = None if layer_weights is None else tuple(float(w) for w in layer_weights)

    def train(self, mode: bool = True) -> FeatureLoss:
        """Switch mode but keep the frozen extractor in eval mode."""
        super().train(mode)
        self.extractor.eval()
        return self

    @property
    def description(self) -> str:
        """What a run should record: the extractor and the layer weights."""
        name = (
            self.extractor.description
            if isinstance(self.extractor, FeatureExtractor)
            else type(self.extractor).__name__
        )
        weights = "1 per layer" if self.layer_weights is None else ", ".join(f"{w:g}" for w in self.layer_weights)
        return f"FeatureLoss over {name}; layer weights {weights}"

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        """Scalar weighted mean-L1 distance between the features of ``fake`` and ``real``."""
        if fake.shape != real.shape:
            raise ValueError(f"fake and real must have one shape, got {tuple(fake.shape)} and {tuple(real.shape)}")
        fake_features = self.extractor(fake)
        with torch.no_grad():
            real_features = self.extractor(real)
        weights = self.layer_weights if self.layer_weights is not None else (1.0,) * len(fake_features)
        if len(weights) != len(fake_features):
            raise ValueError(f"{len(weights)} layer weights for {len(fake_features)} feature maps")
        total = torch.zeros((), dtype=fake.dtype, device=fake.device)
        for weight, f, r in zip(weights, fake_features, real_features, strict=True):
            total = total + weight * F.l1_loss(f, r)
        return total


__all__ = ["FeatureExtractor", "FeatureLoss", "ModuleFeatures", "VGG19Features"]
