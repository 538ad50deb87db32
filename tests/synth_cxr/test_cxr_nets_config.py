"""The translators' networks and paper defaults: Liang's block order, a ReLU discriminator, shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from radsynth.config import build_config
from radsynth.errors import InputError
from radsynth.nets import PatchDiscriminator, UNetGenerator
from radsynth.synth.cyclegan import PRESETS as CYCLEGAN_PRESETS
from radsynth.synth.cyclegan import CycleGANConfig, build_discriminators, build_generators
from radsynth.synth.pix2pix_cxr import PRESETS as PIX2PIX_PRESETS
from radsynth.synth.pix2pix_cxr import Pix2PixCXRConfig, auto_num_downs, build_discriminator, build_generator


def test_paper_defaults():
    c = CycleGANConfig()
    assert (c.source, c.target, c.balance, c.size) == ("Normal", "COVID-19", "undersample", 256)
    assert (c.lambda_cycle, c.pool_size, c.n_blocks, c.epochs, c.decay_fraction, c.lr) == (10.0, 50, 9, 200, 0.5, 2e-4)
    p = Pix2PixCXRConfig()
    assert (p.size, p.lambda_l1, p.epochs, p.gan_mode, p.dropout_blocks, p.d_negative_slope) == (224, 100.0, 100, "vanilla", 3, 0.0)
    assert [auto_num_downs(s) for s in (224, 256, 128, 64, 32, 96)] == [5, 8, 7, 6, 5, 5]
    assert p.depth == 5  # 224 = 7 * 2**5: a 7 x 7 bottleneck


def test_liang_unet_blocks(ends_in_tanh):
    g = UNetGenerator(1, 1, 5, ngf=4, order="post")
    assert [type(m) for m in g.encoder[0]] == [nn.Conv2d, nn.LeakyReLU]
    for block in g.encoder[1:-1]:
        assert [type(m) for m in block] == [nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU]
    decoder = [[type(m) for m in g.decoder[i]] for i in range(4, 0, -1)]  # innermost first
    assert decoder[:3] == [[nn.ConvTranspose2d, nn.BatchNorm2d, nn.Dropout, nn.ReLU]] * 3
    assert decoder[3] == [nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU]
    assert [type(m) for m in g.decoder[0]] == [nn.ConvTranspose2d, nn.Tanh]
    pre = UNetGenerator(1, 1, 5, ngf=4)
    assert sum(p.numel() for p in g.parameters()) == sum(p.numel() for p in pre.parameters())
    # decoder outputs fed to the next block are activated (post-ReLU, so >= 0); in 'pre' order they are not
    outputs = {}
    for name, net in (("post", g), ("pre", pre)):
        net.decoder[1].register_forward_hook(lambda module, args, out, name=name: outputs.__setitem__(name, out))
        y = ends_in_tanh(net.eval(), lambda net=net: net(torch.randn(2, 1, 64, 64)))
        assert y.shape == (2, 1, 64, 64)
    assert outputs["post"].min() >= 0 and outputs["pre"].min() < 0
    with pytest.raises(ValueError, match="order"):
        UNetGenerator(1, 1, 5, order="sideways")


def test_relu_discriminator_option():
    d = PatchDiscriminator(2, ndf=4, negative_slope=0.0)
    activations = [type(m) for m in d.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    assert activations and set(activations) == {nn.ReLU}
    assert all(m.negative_slope == 0.2 for m in PatchDiscriminator(2, ndf=4).modules() if isinstance(m, nn.LeakyReLU))
    with pytest.raises(ValueError):
        PatchDiscriminator(2, negative_slope=-0.1)


def test_pix2pix_cxr_shapes_at_224():
    config = build_config(Pix2PixCXRConfig, PIX2PIX_PRESETS, None, {"ngf": 4, "ndf": 4})
    g, d = build_generator(config), build_discriminator(config)
    with torch.no_grad():
        x = torch.rand(1, 1, 224, 224) * 2 - 1
        y = g.eval()(x)
        logits = d.eval()(torch.cat([x, y], 1))[-1]
    assert y.shape == (1, 1, 224, 224)
    assert logits.shape == (1, 1, 26, 26)  # 224 / 8 - 2 with the 70 x 70 PatchGAN
    assert build_discriminator(build_config(Pix2PixCXRConfig, {}, None, {"conditional_d": False})).in_channels == 1


def test_cyclegan_shapes_grey_in_grey_out():
    config = build_config(CycleGANConfig, CYCLEGAN_PRESETS, "quick", {"ngf": 4, "ndf": 4, "n_blocks": 1})
    g_a, g_b = build_generators(config)
    d_a, d_b = build_discriminators(config)
    x = torch.rand(2, 1, 128, 128) * 2 - 1
    with torch.no_grad():
        y = g_b(g_a(x))
        logits = d_b(y)[-1]
    assert y.shape == x.shape and logits.shape == (2, 1, 14, 14)
    assert d_a.in_channels == 1


@pytest.mark.parametrize(
    "cls, changes",
    [(CycleGANConfig, {"source": "COVID-19"}), (CycleGANConfig, {"balance": "oversample"}), (CycleGANConfig, {"size": 30}),
     (Pix2PixCXRConfig, {"size": 225}), (Pix2PixCXRConfig, {"lambda_l1": -1.0})],
)
def test_bad_configs_are_input_errors(cls, changes):
    with pytest.raises(InputError):
        build_config(cls, {}, None, changes)
