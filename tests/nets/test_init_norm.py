"""Weight initialisation statistics and the norm-layer factory."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from radsynth.nets import UNetGenerator, conv_bias, init_weights, make_norm


def test_init_weights_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(64, 64, 3), nn.BatchNorm2d(4096), nn.ConvTranspose2d(64, 32, 4), nn.Linear(256, 256)
    )
    assert init_weights(model) is model
    for layer in (model[0], model[2], model[3]):
        w = layer.weight.detach()
        assert abs(w.mean().item()) < 0.001
        assert 0.0195 < w.std().item() < 0.0205
        assert torch.count_nonzero(layer.bias) == 0
    bn = model[1]
    assert abs(bn.weight.mean().item() - 1.0) < 0.002
    assert 0.019 < bn.weight.std().item() < 0.021
    assert torch.count_nonzero(bn.bias) == 0


def test_init_weights_custom_std_and_errors():
    torch.manual_seed(0)
    conv = init_weights(nn.Conv2d(64, 64, 3), std=0.1)
    assert 0.097 < conv.weight.std().item() < 0.103
    with pytest.raises(ValueError, match="std must be > 0"):
        init_weights(conv, std=0.0)
    init_weights(nn.InstanceNorm2d(4))  # no affine parameters: nothing to do, no error


def test_networks_are_initialised_on_construction():
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, 5, ngf=16)
    weights = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert 0.0195 < weights.std().item() < 0.0205
    norms = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(norms.mean().item() - 1.0) < 0.01


def test_make_norm():
    assert isinstance(make_norm("batch", 4), nn.BatchNorm2d)
    inorm = make_norm("instance", 4)
    assert isinstance(inorm, nn.InstanceNorm2d) and not inorm.affine and not inorm.track_running_stats
    assert isinstance(make_norm("none", 4), nn.Identity)
    assert (conv_bias("batch"), conv_bias("instance"), conv_bias("none")) == (False, True, True)
    with pytest.raises(ValueError, match="norm must be one of"):
        make_norm("group", 4)
