"""CoSinGAN weighted pixel-level L1 (eq. 7) against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from radsynth.losses import WeightedPixelL1

FAKE = torch.tensor([[[[0.5, -1.0], [1.0, 0.0]]]])
REAL = torch.zeros(1, 1, 2, 2)
LABEL = torch.tensor([[[0, 1], [2, 3]]], dtype=torch.uint8)  # background, lung, GGO, consolidation


def test_default_weights_single_channel():
    # weights 0.1, 0.5, 1, 1 times |diff| 0.5, 1, 1, 0 -> 0.05 + 0.5 + 1 + 0 = 1.55, over P = 4
    assert WeightedPixelL1()(FAKE, REAL, LABEL).item() == pytest.approx(0.3875)


def test_two_channels_share_the_pixel_weight():
    fake = torch.cat([FAKE, torch.ones(1, 1, 2, 2)], dim=1)
    real = torch.zeros(1, 2, 2, 2)
    # channel 2 adds 0.1 + 0.5 + 1 + 1 = 2.6; 8 values in all
    assert WeightedPixelL1()(fake, real, LABEL).item() == pytest.approx((1.55 + 2.6) / 8)


def test_not_normalised_by_weight_sum_and_custom_weights():
    assert WeightedPixelL1((1.0, 1.0, 1.0))(FAKE, REAL, LABEL).item() == pytest.approx(2.5 / 4)
    assert WeightedPixelL1((0.0, 0.0, 2.0))(FAKE, REAL, LABEL.long()).item() == pytest.approx(2.0 / 4)


def test_gradient():
    fake = FAKE.clone().requires_grad_(True)
    WeightedPixelL1()(fake, REAL, LABEL).backward()
    assert fake.grad.flatten().tolist() == pytest.approx([0.025, -0.125, 0.25, 0.0])  # w * sign / 4


def test_errors():
    loss = WeightedPixelL1()
    with pytest.raises(ValueError, match=r"label must be \(N, H, W\) = \(1, 2, 2\)"):
        loss(FAKE, REAL, LABEL.unsqueeze(1))
    with pytest.raises(ValueError, match="integer schema labels"):
        loss(FAKE, REAL, LABEL.float())
    with pytest.raises(ValueError, match=r"schema labels 0\.\.3"):
        loss(FAKE, REAL, LABEL + 1)
    with pytest.raises(ValueError, match="weights must be 3 non-negative numbers"):
        WeightedPixelL1((0.1, 0.5))
