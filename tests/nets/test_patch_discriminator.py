"""PatchGAN discriminator: receptive field, feature list, CoSinGAN depths; pix2pixHD multi-scale."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import PatchDiscriminator as MonaiPatchDiscriminator
from torch import nn

from radsynth.nets import MultiScalePatchDiscriminator, PatchDiscriminator, patch_output_size, patch_receptive_field

# Hand-computed: walking back from one logit, rf <- (rf - 1) * stride + 4 over strides
# (1, 1, then n_layers x 2): 1 -> 4 -> 7 -> 16 -> 34 -> 70 -> 142 -> 286.
RECEPTIVE_FIELDS = {1: 16, 2: 34, 3: 70, 4: 142, 5: 286}


@pytest.mark.parametrize("n_layers, rf", sorted(RECEPTIVE_FIELDS.items()))
def test_receptive_field_analytic(n_layers, rf):
    assert patch_receptive_field(n_layers) == rf
    assert PatchDiscriminator(1, ndf=2, n_layers=n_layers).receptive_field == rf


@pytest.mark.parametrize("n_layers, norm", [(1, "none"), (2, "none"), (3, "batch"), (4, "none")])
def test_receptive_field_empirical(n_layers, norm):
    """Gradient of one central logit w.r.t. the input is non-zero on exactly an rf x rf square.

    Batch norm is in eval mode (fixed statistics); instance norm is left out because it mixes the
    whole feature map into every pixel.
    """
    torch.manual_seed(0)
    rf = RECEPTIVE_FIELDS[n_layers]
    step = 2**n_layers
    size = (2 * rf // step + 2) * step
    d = PatchDiscriminator(1, ndf=2, n_layers=n_layers, norm=norm).double().eval()
    x = torch.randn(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    logits = d(x)[-1]
    oh, ow = logits.shape[-2:]
    logits[0, 0, oh // 2, ow // 2].backward()
    nonzero = x.grad[0, 0] != 0
    rows = torch.nonzero(nonzero.any(dim=1)).flatten()
    cols = torch.nonzero(nonzero.any(dim=0)).flatten()
    assert rows.min() > 0 and rows.max() < size - 1  # not clipped by the border
    assert rows.max() - rows.min() + 1 == rf
    assert cols.max() - cols.min() + 1 == rf


def test_feature_list_pix2pix_70x70():
    d = PatchDiscriminator(2, ndf=8)
    features = d(torch.randn(2, 2, 256, 256))
    shapes = [tuple(f.shape) for f in features]
    # pix2pix: 256 px -> 30x30 patch logits
    assert shapes == [(2, 8, 128, 128), (2, 16, 64, 64), (2, 32, 32, 32), (2, 64, 31, 31), (2, 1, 30, 30)]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.blocks[0].modules())
    assert all(isinstance(d.blocks[k][1], nn.BatchNorm2d) for k in (1, 2, 3))
    assert isinstance(d.blocks[-1], nn.Conv2d)


def test_same_geometry_as_monai_at_three_layers():
    ours = PatchDiscriminator(2, ndf=8, n_layers=3)
    monai = MonaiPatchDiscriminator(spatial_dims=2, channels=8, in_channels=2, num_layers_d=3)
    x = torch.randn(1, 2, 96, 96)
    assert [f.shape for f in ours(x)] == [f.shape for f in monai(x)]


def test_width_cap():
    d = PatchDiscriminator(1, ndf=8, n_layers=5, max_channels=32)
    assert [f.shape[1] for f in d(torch.randn(1, 1, 256, 256))] == [8, 16, 32, 32, 32, 32, 1]


@pytest.mark.parametrize("size, n_layers, padding", [(70, 3, 1), (64, 2, 1), (33, 1, 2), (100, 4, 2)])
def test_output_size_matches_forward(size, n_layers, padding):
    d = PatchDiscriminator(1, ndf=2, n_layers=n_layers, padding=padding)
    expected = patch_output_size(size, n_layers, padding)
    assert d(torch.randn(1, 1, size, size))[-1].shape[-2:] == (expected, expected)


# CoSinGAN section 2.1: sizes and total conv counts; hand-computed logit sides.
# padding 1: side = floor(S / 2**n_layers) - 2 -> 0 at every power-of-two size;
# padding 2: each stride-2 conv gives floor(S / 2) + 1, each stride-1 conv S + 1.
COSINGAN_D = [
    (32, 6, 0, 5),
    (48, 6, 1, 6),
    (64, 7, 0, 5),
    (96, 7, 1, 6),
    (128, 8, 0, 5),
    (192, 8, 1, 6),
    (256, 9, 0, 5),
    (384, 9, 1, 6),
    (512, 10, 0, 5),
]


@pytest.mark.parametrize("size, total_convs, side_pad1, side_pad2", COSINGAN_D)
def test_cosingan_depths(size, total_convs, side_pad1, side_pad2):
    d1 = PatchDiscriminator.from_total_convs(2, total_convs, ndf=2)
    d2 = PatchDiscriminator.from_total_convs(2, total_convs, ndf=2, padding=2)
    assert d1.n_layers == total_convs - 2
    assert sum(isinstance(m, nn.Conv2d) for m in d1.modules()) == total_convs
    assert d1.output_size(size, size) == (side_pad1, side_pad1)
    assert d2.output_size(size, size) == (side_pad2, side_pad2)


def test_cosingan_smallest_scales_forward():
    x32, x48 = torch.randn(1, 2, 32, 32), torch.randn(1, 2, 48, 48)
    d = PatchDiscriminator.from_total_convs(2, 6, ndf=2)
    with pytest.raises(ValueError, match=r"n_layers=4 \(6 convs, padding=1\) leaves no output for a 32x32 input"):
        d(x32)
    assert d(x48)[-1].shape == (1, 1, 1, 1)
    assert PatchDiscriminator.from_total_convs(2, 6, ndf=2, padding=2)(x32)[-1].shape == (1, 1, 5, 5)


def test_constructor_errors():
    with pytest.raises(ValueError, match="total_convs must be >= 3"):
        PatchDiscriminator.from_total_convs(1, 2)
    with pytest.raises(ValueError, match="n_layers must be >= 1"):
        PatchDiscriminator(1, n_layers=0)
    with pytest.raises(ValueError, match="norm must be one of"):
        PatchDiscriminator(1, norm="spectral")
    with pytest.raises(ValueError, match=r"expects \(N, 3, H, W\)"):
        PatchDiscriminator(3, ndf=2)(torch.randn(1, 1, 64, 64))


def test_multiscale_outputs_and_pooling():
    torch.manual_seed(0)
    ms = MultiScalePatchDiscriminator(2, num_d=3, ndf=4)
    x = torch.randn(2, 2, 96, 96)
    outputs = ms(x)
    assert len(outputs) == 3 and all(len(o) == 5 for o in outputs)
    # 96 -> 48 -> 24; logit side floor(S / 8) - 2
    assert [tuple(o[-1].shape) for o in outputs] == [(2, 1, 10, 10), (2, 1, 4, 4), (2, 1, 1, 1)]
    half = nn.functional.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    assert half.shape[-1] == 48
    assert ms.downsample(torch.ones(1, 1, 35, 35)).shape[-1] == 18  # odd sides round up
    expected = ms.discriminators[1](half)
    assert all(torch.allclose(a, b) for a, b in zip(outputs[1], expected, strict=True))
    # count_include_pad=False: a constant image stays constant at the borders too
    assert torch.equal(ms.downsample(torch.ones(1, 1, 9, 9)), torch.ones(1, 1, 5, 5))
    assert isinstance(ms.discriminators[0].blocks[1][1], nn.InstanceNorm2d)


def test_multiscale_too_small_names_the_scale():
    ms = MultiScalePatchDiscriminator(1, num_d=2, ndf=2)
    with pytest.raises(ValueError, match="scale 1 sees the input pooled to 16x16"):
        ms(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="num_d must be >= 1"):
        MultiScalePatchDiscriminator(1, num_d=0)
