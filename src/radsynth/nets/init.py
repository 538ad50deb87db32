"""Weight initialisation for the GAN networks (pix2pix convention)."""

from __future__ import annotations

from torch import nn

# pix2pix (Isola et al. 2017, section 3.3 / reference code `init_weights(init_type='normal')`):
# conv and linear weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), all biases 0.
PIX2PIX_INIT_STD = 0.02


def init_weights(module: nn.Module, std: float = PIX2PIX_INIT_STD) -> nn.Module:
    """Re-initialise every conv / transposed conv / linear / affine norm layer inside ``module``, in place.

    Conv and linear weights are drawn from N(0, std), norm weights (BatchNorm, affine InstanceNorm,
    GroupNorm) from N(1, std), and every bias is set to 0. Layers of other types are left alone.
    Returns ``module`` so that calls can be chained.
    """
    if std <= 0:
        raise ValueError(f"init_weights: std must be > 0, got {std}")
    for layer in module.modules():
        if isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.modules.batchnorm._NormBase, nn.GroupNorm)):
            if layer.weight is not None:
                nn.init.normal_(layer.weight, 1.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module
