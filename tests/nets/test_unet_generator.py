"""pix2pix U-Net generator: shapes at CoSinGAN's scales, structure, errors, test-time dropout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from radsynth.nets import UNetGenerator, set_dropout_active

# CoSinGAN section 2.1: image sizes and number of 2x downsamplings per scale.
COSINGAN_SCALES = [(32, 4), (48, 4), (64, 5), (96, 5), (128, 6), (192, 6), (256, 7), (384, 7), (512, 8)]


@pytest.mark.parametrize("size, num_downs", COSINGAN_SCALES)
def test_cosingan_scales_shape_and_range(size, num_downs, ends_in_tanh):
    torch.manual_seed(0)
    g = UNetGenerator(2, 1, num_downs, ngf=4)
    y = ends_in_tanh(g, lambda: g(torch.randn(1, 2, size, size)))
    assert y.shape == (1, 1, size, size)


@pytest.mark.parametrize(
    "in_ch, out_ch, shape, num_downs",
    [(1, 1, (2, 32, 32), 5), (3, 2, (3, 64, 32), 4), (2, 1, (2, 48, 96), 4)],
)
def test_shapes_batches_and_rectangles(in_ch, out_ch, shape, num_downs):
    g = UNetGenerator(in_ch, out_ch, num_downs, ngf=4, final="none")
    n, h, w = shape
    assert g(torch.randn(n, in_ch, h, w)).shape == (n, out_ch, h, w)


def test_widths_follow_pix2pix_and_cap():
    g = UNetGenerator(1, 1, 8, ngf=8, max_channels=32)
    widths = [block.out_channels if isinstance(block, nn.Conv2d) else block[1].out_channels for block in g.encoder]
    assert widths == [8, 16, 32, 32, 32, 32, 32, 32]


def test_outermost_and_innermost_have_no_norm():
    g = UNetGenerator(1, 1, 5, ngf=4)
    assert isinstance(g.encoder[0], nn.Conv2d)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.encoder[-1].modules())
    assert all(any(isinstance(m, nn.BatchNorm2d) for m in g.encoder[i].modules()) for i in range(1, 4))
    assert isinstance(g.decoder[0][-1], nn.Tanh)


def test_batch_one_with_1x1_bottleneck_trains():
    g = UNetGenerator(1, 1, 5, ngf=4).train()
    x = torch.randn(1, 1, 32, 32)  # 32 / 2**5 = 1: a 1x1 bottleneck
    y = g(x)
    y.mean().backward()
    assert y.shape == (1, 1, 32, 32)
    assert g.encoder[0].weight.grad is not None


@pytest.mark.parametrize(
    "num_downs, dropout_blocks, expected", [(4, 3, [3, 2, 1]), (8, 3, [7, 6, 5]), (6, 1, [5]), (5, 0, [])]
)
def test_dropout_in_decoder_blocks_nearest_bottleneck(num_downs, dropout_blocks, expected):
    g = UNetGenerator(1, 1, num_downs, ngf=4, dropout_blocks=dropout_blocks)
    with_dropout = [i for i, block in enumerate(g.decoder) if any(isinstance(m, nn.Dropout) for m in block.modules())]
    assert sorted(with_dropout, reverse=True) == expected
    assert all(m.p == 0.5 for m in g.modules() if isinstance(m, nn.Dropout))


def test_set_dropout_active_keeps_rest_in_eval():
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, 4, ngf=4).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(g(x), g(x))
        assert set_dropout_active(g, True) == 3
        assert not any(m.training for m in g.modules() if isinstance(m, nn.BatchNorm2d))
        a, b = g(x), g(x)
        assert not torch.equal(a, b)
        assert set_dropout_active(g, False) == 3
        assert torch.equal(g(x), g(x))


def test_forward_rejects_indivisible_size():
    g = UNetGenerator(1, 1, 4, ngf=4)
    with pytest.raises(ValueError, match=r"divisible by 2\*\*4 = 16, got 40x40"):
        g(torch.randn(1, 1, 40, 40))
    with pytest.raises(ValueError, match=r"expects \(N, 1, H, W\)"):
        g(torch.randn(1, 2, 32, 32))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_downs": 1}, "num_downs must be >= 2"),
        ({"num_downs": 3, "dropout_blocks": 3}, "dropout_blocks must be between 0 and num_downs - 1 = 2"),
        ({"num_downs": 4, "norm": "group"}, "norm must be one of"),
        ({"num_downs": 4, "final": "sigmoid"}, "final must be one of"),
        ({"num_downs": 4, "dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"num_downs": 4, "upsample": "bicubic"}, "upsample must be one of"),
    ],
)
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UNetGenerator(1, 1, **kwargs)


def _phase_spread(x: torch.Tensor) -> float:
    """Largest difference between the means of the four 2x2 phases of x's interior (a checkerboard's amplitude)."""
    inner = x[..., 4:-4, 4:-4]
    means = torch.stack([inner[..., i::2, j::2].mean() for i in (0, 1) for j in (0, 1)])
    return float(means.max() - means.min())


def test_resize_upsampling_prints_no_checkerboard_on_flat_input():
    """A transposed conv turns a flat map into a 2-periodic dot grid (its four kernel phases differ);
    nearest x2 + 3x3 conv keeps it flat (Odena et al. 2016)."""
    from radsynth.nets.unet_generator import upsampling_conv

    torch.manual_seed(0)
    flat = torch.ones(1, 8, 16, 16)
    transpose, resize, bilinear = (upsampling_conv(8, 4, kind) for kind in ("transpose", "resize", "bilinear"))
    for layer in (transpose, resize, bilinear):
        nn.init.normal_(layer.weight if isinstance(layer, nn.ConvTranspose2d) else layer[1].weight, 0.0, 0.1)
    with torch.no_grad():
        dots, smooth, smoother = transpose(flat), resize(flat), bilinear(flat)
    assert dots.shape == smooth.shape == smoother.shape == (1, 4, 32, 32)
    assert _phase_spread(dots) > 0.05
    assert _phase_spread(smooth) < 1e-6 and _phase_spread(smoother) < 1e-6


@pytest.mark.parametrize("order, upsample", [("pre", "resize"), ("post", "resize"), ("pre", "bilinear")])
def test_resize_generator_keeps_shapes_widths_and_dropout(order, upsample):
    resize = UNetGenerator(1, 1, num_downs=5, ngf=8, upsample=upsample, order=order)
    transpose = UNetGenerator(1, 1, num_downs=5, ngf=8, order=order)
    assert resize(torch.randn(2, 1, 64, 64)).shape == (2, 1, 64, 64)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in resize.modules()) == 0
    convs = lambda g: [m.out_channels for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]  # noqa: E731
    assert convs(resize) == convs(transpose)  # same widths, layer for layer
    assert set_dropout_active(resize, True) == set_dropout_active(transpose, True)
