"""CoSinGAN weighted pixel-level L1 loss (WPPL)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from radsynth.data.labels import NUM_CATEGORIES, NUM_LABELS, to_categories

# CoSinGAN section 3.2.1: category weights of background, lung and infection 0.1, 0.5 and 1.0.
COSINGAN_WPPL_WEIGHTS = (0.1, 0.5, 1.0)


class WeightedPixelL1(nn.Module):
    """CoSinGAN eq. 7: (1 / P) * sum_p M(category_p) * |fake_p - real_p|; returns a scalar.

    ``forward(fake, real, label)``: ``fake`` and ``real`` (N, C, H, W), any value range (the
    project's images are in [-1, 1]); ``label`` (N, H, W) integer schema labels (0 background,
    1 lung, 2 GGO, 3 consolidation), mapped to categories background / lung / infection by
    ``radsynth.data.labels.to_categories``. Each pixel's weight is broadcast over the channels and
    the weighted absolute differences are averaged over all N * C * H * W values: the divisor is
    the pixel count P, not the sum of the weights.
    """

    def __init__(self, weights: Sequence[float] = COSINGAN_WPPL_WEIGHTS) -> None:
        super().__init__()
        if len(weights) != NUM_CATEGORIES or any(w < 0 for w in weights):
            raise ValueError(
                f"weights must be {NUM_CATEGORIES} non-negative numbers (background, lung, infection), "
                f"got {tuple(weights)}"
            )
        self.register_buffer("category_weights", torch.tensor([float(w) for w in weights]), persistent=False)

    def forward(self, fake: Tensor, real: Tensor, label: Tensor) -> Tensor:
        """Scalar weighted L1 between ``fake`` and ``real`` (N, C, H, W) under ``label`` (N, H, W)."""
        if fake.shape != real.shape or fake.ndim != 4:
            raise ValueError(
                f"fake and real must both be (N, C, H, W) of one shape, got {tuple(fake.shape)} and {tuple(real.shape)}"
            )
        n, _, h, w = fake.shape
        if tuple(label.shape) != (n, h, w):
            raise ValueError(f"label must be (N, H, W) = {(n, h, w)}, got {tuple(label.shape)}")
        if label.is_floating_point() or label.dtype == torch.bool:
            raise ValueError(f"label must hold integer schema labels, got dtype {label.dtype}")
        if label.numel() and (int(label.min()) < 0 or int(label.max()) >= NUM_LABELS):
            raise ValueError(f"label values must be schema labels 0..{NUM_LABELS - 1}")
        weight = self.category_weights.to(fake.dtype)[to_categories(label.long())]
        return (weight.unsqueeze(1) * (fake - real).abs()).mean()
