"""Paired PSNR / SSIM / RMSE: hand computations, the identical-image edge cases, and torchmetrics cross-checks."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from radsynth.losses.ms_ssim import ms_ssim
from radsynth.quality.paired import paired_scores, psnr_from_rmse, rmse, ssim, ssim_map, summarise_scores


def _images(n: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_identical_images_give_zero_rmse_infinite_psnr_and_ssim_one():
    x = _images()
    scores = paired_scores(x, x.clone())
    assert torch.all(scores["rmse"] == 0)
    assert torch.all(torch.isposinf(scores["psnr"]))
    assert torch.allclose(scores["ssim"], torch.ones(3, dtype=torch.float64), atol=1e-12)
    summary = summarise_scores(scores["psnr"])
    assert summary == {"mean": "inf", "sd": None, "n": 0, "identical": 3, "undefined": 0}


def test_constant_offset_by_hand():
    real = torch.zeros(2, 1, 24, 24)
    synthetic = real + 0.2  # 0.1 on the [0, 1] scale
    scores = paired_scores(synthetic, real)
    assert torch.allclose(scores["rmse"], torch.full((2,), 0.1, dtype=torch.float64))
    assert torch.allclose(scores["psnr"], torch.full((2,), 20.0, dtype=torch.float64))  # 20 log10(1 / 0.1)
    # flat images: SSIM = (2 a b + C1) / (a^2 + b^2 + C1) with a = 0.6, b = 0.5 on [0, 1], C1 = (0.01)^2
    expected = (2 * 0.6 * 0.5 + 1e-4) / (0.36 + 0.25 + 1e-4)
    assert torch.allclose(scores["ssim"], torch.full((2,), expected, dtype=torch.float64), atol=1e-9)


def test_psnr_keeps_nan_and_mean_skips_identical_pairs():
    values = psnr_from_rmse(torch.tensor([0.1, 0.0, math.nan, 0.01], dtype=torch.float64))
    assert values[0].item() == pytest.approx(20.0)
    assert math.isinf(values[1].item()) and math.isnan(values[2].item())
    summary = summarise_scores(values)
    assert summary["mean"] == pytest.approx(30.0)  # (20 + 40) / 2
    assert (summary["n"], summary["identical"], summary["undefined"]) == (2, 1, 1)


def test_ssim_matches_ms_ssim_single_scale_and_torchmetrics_inside_the_border():
    x = _images(seed=1)
    y = (0.7 * x + 0.3 * _images(seed=2)).clamp(-1, 1)  # related images: positive SSIM (ms_ssim clips negatives to 0)
    ours = ssim(x, y)
    assert torch.all(ours > 0.3) and torch.all(ours < 0.99)
    single_scale = ms_ssim((x.double() + 1) / 2, (y.double() + 1) / 2, data_range=1.0, scales=1, weights=(1.0,))
    assert torch.allclose(ours, single_scale, atol=1e-9)
    # torchmetrics reflect-pads; away from the 5 px border its map is the same 'valid' map
    _, full = structural_similarity_index_measure((x.double() + 1) / 2, (y.double() + 1) / 2, data_range=1.0, return_full_image=True)
    assert torch.allclose(full[..., 5:-5, 5:-5], ssim_map(x, y), atol=1e-9)


def test_psnr_matches_torchmetrics():
    x, y = _images(seed=3), _images(seed=4)
    theirs = peak_signal_noise_ratio((x.double() + 1) / 2, (y.double() + 1) / 2, data_range=1.0, reduction="none", dim=(1, 2, 3))
    assert torch.allclose(paired_scores(x, y)["psnr"], theirs, atol=1e-9)


def test_lung_only_scores_ignore_everything_outside_the_mask():
    real = _images(n=2, seed=5)
    mask = torch.zeros(2, 32, 32, dtype=torch.bool)
    mask[:, 8:24, 8:24] = True
    synthetic = torch.where(mask[:, None], real, -real)  # differs only outside the lung
    scores = paired_scores(synthetic, real, mask)
    assert torch.all(scores["rmse"] == 0) and torch.all(torch.isposinf(scores["psnr"]))
    assert torch.allclose(scores["ssim"], torch.ones(2, dtype=torch.float64))
    assert torch.all(paired_scores(synthetic, real)["rmse"] > 0)
    # a known error inside the lung only: +0.2 on 256 lung pixels -> RMSE 0.1 there
    shifted = torch.where(mask[:, None], real + 0.2, real)
    assert torch.allclose(rmse(shifted, real, mask), torch.full((2,), 0.1, dtype=torch.float64))
    assert torch.allclose(rmse(shifted, real), torch.full((2,), 0.1 * math.sqrt(256 / 1024), dtype=torch.float64))


def test_empty_lung_mask_is_undefined_not_infinite():
    x = _images(n=2)
    mask = torch.zeros(2, 32, 32, dtype=torch.bool)
    mask[0, 10:20, 10:20] = True
    scores = paired_scores(x, x + 0.1, mask)
    assert not math.isnan(scores["psnr"][0].item()) and math.isnan(scores["psnr"][1].item())
    assert math.isnan(scores["ssim"][1].item()) and math.isnan(scores["rmse"][1].item())
    assert summarise_scores(scores["psnr"])["undefined"] == 1
