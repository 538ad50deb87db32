"""pix2pixHD discriminator feature-matching loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Features = Sequence[Tensor] | Sequence[Sequence[Tensor]]


def _per_scale(features: Features) -> list[Sequence[Tensor]]:
    if isinstance(features, Tensor) or not isinstance(features, Sequence) or len(features) == 0:
        raise ValueError("features must be a discriminator feature list or a list of them (one per scale)")
    if all(isinstance(f, Tensor) for f in features):
        return [features]  # type: ignore[list-item]
    if not all(isinstance(s, Sequence) and not isinstance(s, Tensor) for s in features):
        raise ValueError("multi-scale features must be a list of lists of tensors")
    return list(features)  # type: ignore[arg-type]


class FeatureMatchingLoss(nn.Module):
    """pix2pixHD feature matching (Wang et al. 2018, eq. 4; Jiang et al. 2020, eq. 3); returns a scalar.

    ``loss(fake_features, real_features)``: each argument is one discriminator's feature list or a
    list of them, one per scale (the output of ``PatchDiscriminator`` / ``MultiScalePatchDiscriminator``
    on the fake and on the real input). The last element of each list (the logits) is skipped; for
    every other layer the mean absolute difference between fake and *detached* real features is
    taken (so only the generator gets gradients from it), weighted per layer and per scale:

        sum_scale scale_weight * sum_layer layer_weight * mean|D_l(fake) - D_l(real)|

    Defaults follow pix2pixHD's code: layer weight ``4 / L`` with L intermediate layers
    (= ``4 / (n_layers + 1)``), scale weight ``1 / num_d``. The pix2pixHD / Jiang et al. factor
    lambda = 10 is left to the caller.
    """

    def __init__(
        self, layer_weights: Sequence[float] | None = None, scale_weights: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        self.layer_weights = None if layer_weights is None else tuple(float(w) for w in layer_weights)
        self.scale_weights = None if scale_weights is None else tuple(float(w) for w in scale_weights)

    def forward(self, fake_features: Features, real_features: Features) -> Tensor:
        """Scalar weighted L1 over the intermediate discriminator features."""
        fake_scales, real_scales = _per_scale(fake_features), _per_scale(real_features)
        if len(fake_scales) != len(real_scales):
            raise ValueError(f"fake has {len(fake_scales)} scales but real has {len(real_scales)}")
        num_d = len(fake_scales)
        scale_weights = self.scale_weights if self.scale_weights is not None else (1.0 / num_d,) * num_d
        if len(scale_weights) != num_d:
            raise ValueError(f"scale_weights has {len(scale_weights)} entries for {num_d} scales")
        total = torch.zeros((), dtype=fake_scales[0][0].dtype, device=fake_scales[0][0].device)
        for scale_weight, fake, real in zip(scale_weights, fake_scales, real_scales, strict=True):
            if len(fake) != len(real) or len(fake) < 2:
                raise ValueError(
                    f"fake and real feature lists must have the same length >= 2, got {len(fake)} and {len(real)}"
                )
            n_inter = len(fake) - 1
            layer_weights = self.layer_weights if self.layer_weights is not None else (4.0 / n_inter,) * n_inter
            if len(layer_weights) != n_inter:
                raise ValueError(f"layer_weights has {len(layer_weights)} entries for {n_inter} intermediate layers")
            for layer_weight, f, r in zip(layer_weights, fake[:-1], real[:-1], strict=True):
                total = total + scale_weight * layer_weight * F.l1_loss(f, r.detach())
        return total
