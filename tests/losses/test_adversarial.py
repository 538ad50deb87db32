"""Adversarial losses against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from radsynth.losses import AdversarialLoss

LN2 = 0.6931471805599453  # softplus(0) = ln 2
LN4_3 = 0.28768207245178085  # softplus(-ln 3) = ln(1 + 1/3)
LN4 = 1.3862943611198906  # softplus(ln 3) = ln(1 + 3)


def test_vanilla_is_bce_with_logits():
    logits = torch.tensor([[0.0, 1.0986122886681098]])  # 0 and ln 3
    loss = AdversarialLoss("vanilla")
    assert loss(logits, True).item() == pytest.approx((LN2 + LN4_3) / 2, abs=1e-6)
    assert loss(logits, False).item() == pytest.approx((LN2 + LN4) / 2, abs=1e-6)
    assert loss(logits, True, for_discriminator=False).item() == pytest.approx(0.4904146265, abs=1e-6)


def test_vanilla_generator_gradient():
    logits = torch.zeros(2, requires_grad=True)
    AdversarialLoss()(logits, True, for_discriminator=False).backward()
    # d/dx mean(softplus(-x)) = -sigmoid(-x) / 2 = -0.25 at x = 0
    assert logits.grad.tolist() == pytest.approx([-0.25, -0.25])


def test_lsgan():
    logits = torch.tensor([0.5, 2.0])
    loss = AdversarialLoss("lsgan")
    assert loss(logits, True).item() == pytest.approx(0.625)  # ((0.5-1)^2 + (2-1)^2) / 2
    assert loss(logits, False).item() == pytest.approx(2.125)  # (0.25 + 4) / 2


def test_hinge():
    logits = torch.tensor([0.5, 2.0, -1.0])
    loss = AdversarialLoss("hinge")
    assert loss(logits, True).item() == pytest.approx(2.5 / 3)  # relu(1 - x) = 0.5, 0, 2
    assert loss(logits, False).item() == pytest.approx(1.5)  # relu(1 + x) = 1.5, 3, 0
    assert loss(logits, True, for_discriminator=False).item() == pytest.approx(-0.5)  # -mean(x)


def test_feature_list_uses_last_and_multiscale_averages():
    loss = AdversarialLoss("lsgan")
    big = torch.full((1, 4, 2, 2), 100.0)
    assert loss([big, torch.tensor([0.5, 2.0])], True).item() == pytest.approx(0.625)
    multi = [[big, torch.tensor([0.5, 2.0])], [big, torch.tensor([0.0])]]
    assert loss(multi, True).item() == pytest.approx((0.625 + 1.0) / 2)


def test_errors():
    with pytest.raises(ValueError, match="mode must be one of"):
        AdversarialLoss("wgan")
    with pytest.raises(ValueError, match="always targets 'real'"):
        AdversarialLoss()(torch.zeros(1), False, for_discriminator=False)
    with pytest.raises(ValueError, match="non-empty"):
        AdversarialLoss()([], True)
