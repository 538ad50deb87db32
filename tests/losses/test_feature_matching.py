"""pix2pixHD feature matching against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from radsynth.losses import FeatureMatchingLoss


def _scale(f0, f1, logits):
    return [torch.tensor(f0).view(1, 1, 1, -1), torch.tensor(f1).view(1, 1, 1, -1), torch.tensor([logits])]


def test_single_discriminator():
    fake = _scale([1.0, 2.0], [0.0, 0.0, 0.0, 0.0], 50.0)
    real = _scale([0.0, 0.0], [1.0, 1.0, 1.0, 1.0], -50.0)
    # 2 intermediate layers -> weight 4/2 = 2 each; L1 means 1.5 and 1.0; logits ignored
    assert FeatureMatchingLoss()(fake, real).item() == pytest.approx(2 * (1.5 + 1.0))


def test_multiscale_and_custom_weights():
    fake = [_scale([1.0, 2.0], [0.0] * 4, 9.0), _scale([2.0, 2.0], [3.0] * 4, 9.0)]
    real = [_scale([0.0, 0.0], [1.0] * 4, 0.0), _scale([0.0, 0.0], [0.0] * 4, 0.0)]
    # scale 0: 2 * (1.5 + 1) = 5; scale 1: 2 * (2 + 3) = 10; scale weight 1/2
    assert FeatureMatchingLoss()(fake, real).item() == pytest.approx(7.5)
    custom = FeatureMatchingLoss(layer_weights=(1.0, 0.0), scale_weights=(1.0, 1.0))
    assert custom(fake, real).item() == pytest.approx(1.5 + 2.0)


def test_real_features_are_detached():
    fake = [torch.tensor([1.0, -1.0], requires_grad=True), torch.zeros(1)]
    real = [torch.zeros(2, requires_grad=True), torch.zeros(1)]
    FeatureMatchingLoss()(fake, real).backward()
    # one intermediate layer, weight 4: d/dx 4 * mean|x| = 4 * sign(x) / 2
    assert fake[0].grad.tolist() == pytest.approx([2.0, -2.0])
    assert real[0].grad is None


def test_errors():
    loss = FeatureMatchingLoss()
    with pytest.raises(ValueError, match="fake has 2 scales but real has 1"):
        loss([[torch.zeros(1), torch.zeros(1)]] * 2, [[torch.zeros(1), torch.zeros(1)]])
    with pytest.raises(ValueError, match="same length >= 2"):
        loss([torch.zeros(1)], [torch.zeros(1)])
    with pytest.raises(ValueError, match="layer_weights has 3 entries for 1 intermediate layers"):
        FeatureMatchingLoss(layer_weights=(1, 1, 1))([torch.zeros(1)] * 2, [torch.zeros(1)] * 2)
