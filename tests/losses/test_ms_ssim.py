"""MS-SSIM loss: the scale rule, agreement with MONAI and with a hand-built reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.metrics.regression import compute_ms_ssim
from scipy.signal import correlate2d

from radsynth.losses import MSSSIMLoss, ms_ssim, msssim_scales, msssim_weights


@pytest.mark.parametrize(
    "size, scales",
    [
        (11, 1),
        (21, 1),
        (22, 2),
        (32, 2),
        (43, 2),
        (44, 3),
        (48, 3),
        (87, 3),
        (88, 4),
        (96, 4),
        (175, 4),
        (176, 5),
        (512, 5),
    ],
)
def test_scale_rule(size, scales):
    assert msssim_scales(size) == scales


def test_weights_rule():
    assert msssim_weights(5) == (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    assert msssim_weights(2) == pytest.approx((0.0448 / 0.3304, 0.2856 / 0.3304))
    assert msssim_weights(2) == pytest.approx((0.135593, 0.864407), abs=1e-6)
    assert sum(msssim_weights(3)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least win_size = 11 px"):
        msssim_scales(10)


def _pair(size, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 1, size, size, generator=g, dtype=torch.float64) * 2 - 1
    y = (x + 0.4 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(-1, 1)
    return x, y


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_monai_at_192px_five_scales(seed):
    x, y = _pair(192, seed)
    ours = ms_ssim(x, y, data_range=2.0)
    reference = compute_ms_ssim(x, y, spatial_dims=2, data_range=2.0).flatten().double()
    assert torch.allclose(ours, reference, atol=1e-5)
    assert 0.2 < ours.min().item() < 0.99
    # the loss takes [-1, 1] images and scores them on [0, 1]
    on_unit = compute_ms_ssim((x + 1) / 2, (y + 1) / 2, spatial_dims=2, data_range=1.0).flatten().double()
    assert MSSSIMLoss()(x, y).item() == pytest.approx(1 - on_unit.mean().item(), abs=1e-5)


def _reference_32px(x: np.ndarray, y: np.ndarray) -> float:
    """Hand-built MS-SSIM for one 32x32 image pair: 2 scales, 11x11 Gaussian (sigma 1.5), valid windows."""
    c1, c2 = (0.01 * 2.0) ** 2, (0.03 * 2.0) ** 2
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def stats(a, b):
        mu_a, mu_b = correlate2d(a, window, "valid"), correlate2d(b, window, "valid")
        var_a = correlate2d(a * a, window, "valid") - mu_a**2
        var_b = correlate2d(b * b, window, "valid") - mu_b**2
        cov = correlate2d(a * b, window, "valid") - mu_a * mu_b
        cs = (2 * cov + c2) / (var_a + var_b + c2)
        lum = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
        return cs.mean(), (lum * cs).mean()

    cs0, _ = stats(x, y)
    x1 = x.reshape(16, 2, 16, 2).mean(axis=(1, 3))
    y1 = y.reshape(16, 2, 16, 2).mean(axis=(1, 3))
    _, ssim1 = stats(x1, y1)
    w0, w1 = 0.0448 / (0.0448 + 0.2856), 0.2856 / (0.0448 + 0.2856)
    return max(cs0, 0.0) ** w0 * max(ssim1, 0.0) ** w1


def test_matches_hand_built_reference_at_32px():
    x, y = _pair(32, 3)
    ours = ms_ssim(x, y)
    for i in range(2):
        expected = _reference_32px(x[i, 0].numpy(), y[i, 0].numpy())
        assert ours[i].item() == pytest.approx(expected, abs=1e-10)


def test_identical_is_zero_negated_is_large():
    x, _ = _pair(32, 4)
    loss = MSSSIMLoss()
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-12)
    assert loss(x, -x).item() == pytest.approx(1.0, abs=1e-6)  # contrast term < 0 counts as 0
    x64, _ = _pair(64, 5)
    assert loss(x64, x64.flip(-1)).item() > 0.5


def test_gradient_flows_and_is_finite():
    x, y = _pair(48, 6)
    fake = y.clone().requires_grad_(True)
    MSSSIMLoss()(fake, x).backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum().item() > 0
    negated = x.clone().requires_grad_(True)
    MSSSIMLoss()(negated, -x).backward()
    assert torch.isfinite(negated.grad).all()


def _smooth(size: int, seed: int) -> torch.Tensor:
    """(1, 1, size, size) smooth image in [0, 1]: blurred noise scaled to 0.2-0.8."""
    g = torch.Generator().manual_seed(seed)
    noise = F.avg_pool2d(torch.rand(1, 1, size + 16, size + 16, generator=g), 17, 1)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return 0.2 + 0.6 * noise


def test_an_intensity_shift_of_mid_grey_costs_little():
    """MS-SSIM is computed on [0, 1]: shifting a smooth mid-grey image by 0.1 costs about a hundredth.
    On [-1, 1] (the old behaviour, kept here as the control) the luminance term swings where the means
    are near 0, and the same shift costs many times more."""
    image = _smooth(64, 0)
    loss = MSSSIMLoss()
    shifted = loss(image * 2 - 1, (image + 0.1) * 2 - 1).item()
    assert 0.001 < shifted < 0.05
    on_signed = 1 - ms_ssim(image * 2 - 1, (image + 0.1) * 2 - 1, data_range=2.0).mean().item()
    assert on_signed > 5 * shifted, (on_signed, shifted)


def test_loss_is_fp32_under_bf16_autocast():
    """Small differences survive autocast: the loss computes outside it."""
    image = _smooth(64, 1) * 2 - 1
    other = image + 0.004 * torch.randn(image.shape, generator=torch.Generator().manual_seed(2))
    plain = MSSSIMLoss()(other, image)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = MSSSIMLoss()(other.bfloat16(), image.bfloat16())
    assert plain.dtype == autocast.dtype == torch.float32
    assert plain.item() > 1e-4
    assert autocast.item() == pytest.approx(plain.item(), rel=0.2)  # bf16 inputs round, the sums do not


def test_errors():
    x = torch.zeros(1, 1, 32, 32)
    with pytest.raises(ValueError, match="3 scales with a 11 px window need images of at least 44 px, got 32"):
        MSSSIMLoss(scales=3)(x, x)
    with pytest.raises(ValueError, match="one shape"):
        MSSSIMLoss()(x, torch.zeros(1, 1, 32, 31))
    with pytest.raises(ValueError, match="odd win_size"):
        MSSSIMLoss(win_size=10)
