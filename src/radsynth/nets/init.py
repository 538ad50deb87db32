"""Weight initialisation for the GAN networks (pix2pix convention)."""

from __future__ import annotations

from torch import nn

# pix2pix (Isola et al. 2017, appendix 6.2): "Weights were initialized from a Gaussian distribution with
# mean 0 and standard deviation 0.02"; its reference code also draws norm scales from N(1, 0.02), biases 0.
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


def carry_over(target: nn.Module, source: nn.Module) -> list[str]:
    """Copy into ``target`` every parameter and buffer of ``source`` with the same name and shape; returns their names.

    For radsynth's UNet generator and patch discriminator, names index layers by depth from the input
    (``encoder.i`` / ``decoder.i``, ``blocks.i``), so between a net and its one-block-deeper neighbour the
    outer blocks carry over and the new inner ones keep their fresh initialisation (SinGAN's
    coarse-to-fine initialisation, where the shapes allow)."""
    theirs = source.state_dict()
    mine = target.state_dict()
    copied = [name for name, value in mine.items() if name in theirs and theirs[name].shape == value.shape]
    target.load_state_dict({**mine, **{name: theirs[name].to(mine[name].device) for name in copied}})
    return copied
