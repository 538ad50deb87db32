"""ENet (Paszke et al. 2016): shapes, size of the network, and its building blocks."""

from __future__ import annotations

import pytest
import torch

from radsynth.nets.enet import Bottleneck, DownsamplingBottleneck, ENet, InitialBlock, UpsamplingBottleneck


@pytest.mark.parametrize("classes, channels, size", [(3, 1, (32, 32)), (4, 1, (40, 56)), (2, 3, (64, 48))])
def test_logits_have_the_input_size(classes, channels, size):
    torch.manual_seed(0)
    net = ENet(classes, channels).eval()
    with torch.no_grad():
        out = net(torch.rand(2, channels, *size) * 2 - 1)
    assert out.shape == (2, classes, *size) and torch.isfinite(out).all()


def test_parameter_count_matches_the_paper():
    # Paszke et al. Table 3: 0.37 M parameters (3 input channels, 20 Cityscapes classes)
    assert sum(p.numel() for p in ENet(20, 3).parameters()) == pytest.approx(0.37e6, rel=0.01)
    assert sum(p.numel() for p in ENet(3, 1).parameters()) == 369178


def test_sides_not_divisible_by_8_are_refused():
    with pytest.raises(ValueError, match="divisible by 8"):
        ENet()(torch.zeros(1, 1, 36, 32))


def test_blocks():
    x = torch.randn(2, 16, 16, 16)
    assert InitialBlock(1)(torch.randn(2, 1, 32, 32)).shape == (2, 16, 16, 16)
    for kind in ("regular", "dilated", "asymmetric"):
        assert Bottleneck(16, kind, dilation=4).eval()(x).shape == x.shape
    down, indices = DownsamplingBottleneck(16, 64).eval()(x)
    assert down.shape == (2, 64, 8, 8) and indices.shape == (2, 16, 8, 8)
    up = UpsamplingBottleneck(64, 16).eval()(down, indices, x.shape[-2:])
    assert up.shape == x.shape
    with pytest.raises(ValueError):
        Bottleneck(16, "deformable")


def test_gradients_reach_the_first_layer():
    net = ENet(3, 1)
    loss = torch.nn.functional.cross_entropy(net(torch.randn(2, 1, 32, 32)), torch.randint(0, 3, (2, 32, 32)))
    loss.backward()
    assert net.initial.conv.weight.grad.abs().sum() > 0
