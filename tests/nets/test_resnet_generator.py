"""CycleGAN / pix2pixHD global ResNet generator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from radsynth.nets import ResnetBlock, ResnetGenerator


@pytest.mark.parametrize(
    "shape, n_downsampling, norm, padding",
    [((1, 32, 32), 2, "instance", "reflect"), ((2, 64, 48), 2, "batch", "zero"), ((1, 64, 64), 3, "none", "replicate")],
)
def test_shapes(shape, n_downsampling, norm, padding, ends_in_tanh):
    torch.manual_seed(0)
    g = ResnetGenerator(2, 1, ngf=4, n_blocks=2, n_downsampling=n_downsampling, norm=norm, padding=padding)
    n, h, w = shape
    x = torch.randn(n, 2, h, w)
    y = ends_in_tanh(g, lambda: g(x))
    assert y.shape == (n, 1, h, w)
    assert g.features(x).shape == (n, 4, h, w)


def test_parts_compose_to_forward():
    torch.manual_seed(0)
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=3).eval()
    x = torch.randn(1, 1, 32, 32)
    manual = g.head(g.up(g.blocks(g.down(g.stem(x)))))
    assert torch.equal(g(x), manual)
    assert len(g.blocks) == 3
    assert g.down(g.stem(x)).shape == (1, 16, 8, 8)  # ngf * 2**2 channels at 1/4 resolution
    assert isinstance(g.stem[0], nn.ReflectionPad2d) and g.stem[1].kernel_size == (7, 7)
    assert isinstance(g.head[-1], nn.Tanh)
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in g.modules()) == 1 + 2 + 3 * 2 + 2


def test_default_is_cyclegan_nine_blocks():
    g = ResnetGenerator(1, 1, ngf=2)
    assert len(g.blocks) == 9
    assert g(torch.randn(1, 1, 16, 16)).shape == (1, 1, 16, 16)


def test_resnet_block_is_identity_when_body_is_zero():
    block = ResnetBlock(3, norm="none")
    nn.init.zeros_(block.body[-2].weight)
    nn.init.zeros_(block.body[-2].bias)
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(block(x), x)


def test_errors():
    g = ResnetGenerator(1, 1, ngf=2, n_blocks=1)
    with pytest.raises(ValueError, match="divisible by 4, got 30x32"):
        g(torch.randn(1, 1, 30, 32))
    with pytest.raises(ValueError, match="padding must be one of"):
        ResnetGenerator(1, 1, padding="circular")
    with pytest.raises(ValueError, match="norm must be one of"):
        ResnetGenerator(1, 1, norm="layer")
