"""CycleGAN Normal -> COVID-19 on phantom X-rays: the losses by hand, a short run that moves images
toward COVID-19 with close cycle reconstructions, and an exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from torch import nn

from radsynth.config import build_config
from radsynth.data.slices import SliceSet
from radsynth.training.checkpoint import Retention, latest_checkpoint, read_checkpoint
from radsynth.synth.cyclegan import PRESETS, CycleGAN, CycleGANConfig, CycleGANMethod
from radsynth.synth.domains import load_domains

TINY = {"size": 32, "ngf": 4, "ndf": 4, "n_blocks": 1, "batch_size": 2, "pool_size": 8, "log_every": 4, "sample_every": 12, "checkpoint_every": 6}


class Scale(nn.Module):
    """x -> s * x with a learnable s (so the generator loss has something to differentiate)."""

    def __init__(self, s: float) -> None:
        super().__init__()
        self.s = nn.Parameter(torch.tensor(s))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.s * x


def test_cycle_and_identity_losses_by_hand(cxr_prepared):
    """With G_A(x) = x / 2 and G_B(x) = x: cycle_A = |a/2 - a| = mean|a| / 2, cycle_B = mean|b| / 2,
    identity_A = |G_A(b) - b| = mean|b| / 2, identity_B = |G_B(a) - a| = 0."""
    config = build_config(CycleGANConfig, PRESETS, None, {**TINY, "augment": False, "batch_size": 14})
    data = load_domains(cxr_prepared, "Normal", "COVID-19", 32, config.balance, config.seed)
    method = CycleGANMethod(config, data, torch.device("cpu"), steps=10)
    method.g_a, method.g_b = Scale(0.5), Scale(1.0)
    # the batch: all 14 Normal images (one epoch at batch 14); COVID-19 drawn with the step generator's first draw
    index_b = torch.randint(14, (14,), generator=torch.Generator().manual_seed(7))
    a, b = data.a.images, data.b.images[index_b]
    losses = method.train_step(0, torch.Generator().manual_seed(7))
    assert losses["cycle_l1_a"] == pytest.approx(0.5 * a.abs().mean().item(), rel=1e-5)
    assert losses["cycle_l1_b"] == pytest.approx(0.5 * b.abs().mean().item(), rel=1e-5)
    assert losses["idt_l1_a"] == pytest.approx(0.5 * b.abs().mean().item(), rel=1e-5)
    assert losses["idt_l1_b"] == pytest.approx(0.0, abs=1e-7)
    assert 0.2 < a.abs().mean().item() < 0.9  # the numbers above are not trivially zero


@pytest.mark.outcome
def test_short_run_moves_normal_toward_covid_and_cycles_back(cyclegan_run, cxr_prepared, referee, outcome):
    """Measured (300 steps, 32 px): referee P(COVID-19) 0.045 -> 0.949 on average, 0 / 14 -> 14 / 14 classified
    COVID-19 (a Gaussian blur of sigma 1.5 px: 1 / 14); cycle L1 0.070, against 0.105 between each Normal
    image and the mean Normal image (L1 in [-1, 1] units). Across AVX-512 / AVX2 / plain kernels: cycle L1
    0.0712 / 0.0692 / 0.0712 (spread 0.002, margin to 0.08 at least 0.009), P(COVID-19) gain 0.918 / 0.895 /
    0.912, 14 / 14 translated images read as COVID-19 on all three."""
    assert referee.held_out_accuracy >= 0.9  # the referee tells the phantom classes apart (measured 1.0)
    model = CycleGAN.load(cyclegan_run, "cpu")
    normal = load_domains(cxr_prepared, "Normal", "COVID-19", 32).a.images
    translated = model.translate(normal, seed=0)
    p_in, p_out = referee.p_covid(normal), referee.p_covid(translated)
    blurred = torch.from_numpy(ndi.gaussian_filter(normal.numpy(), (0, 0, 1.5, 1.5)))
    cycle = (model.reconstruct(normal) - normal).abs().mean().item()
    to_mean = (normal - normal.mean(0)).abs().mean().item()
    outcome("referee_accuracy", referee.held_out_accuracy)
    outcome("share_in_covid", (p_in > 0.5).float().mean())
    outcome("share_out_covid", (p_out > 0.5).float().mean())
    outcome("p_out_minus_p_in", p_out.mean() - p_in.mean())
    outcome("share_blurred_covid", (referee.p_covid(blurred) > 0.5).float().mean())
    outcome("cycle_l1", cycle)
    outcome("cycle_over_to_mean", cycle / to_mean)
    assert (p_in > 0.5).float().mean() <= 0.2
    assert (p_out > 0.5).float().mean() >= 0.8
    assert p_out.mean() - p_in.mean() >= 0.5
    # control: blurring a Normal image by a similar amount does not make it COVID-19 to the referee
    assert (p_out > 0.5).float().mean() >= (referee.p_covid(blurred) > 0.5).float().mean() + 0.3
    assert cycle < 0.08 and cycle < 0.75 * to_mean
    record = json.loads((cyclegan_run / "run.json").read_text())
    test_patients = set(SliceSet(cxr_prepared, "test").patients)
    assert record["steps"] == 300 and not set(record["data"]["patients"]) & test_patients
    assert record["domains"]["A"]["class"] == "Normal" and record["domains"]["B"]["used"] == 14


def test_paper_schedule_in_steps(cxr_prepared, tmp_path):
    """steps = 0: epochs x ceil(max(|A|, |B|) / batch); the decay starts half-way (CycleGAN: 100 + 100 epochs)."""
    config = build_config(CycleGANConfig, PRESETS, None, {**TINY, "steps": 0, "epochs": 2, "batch_size": 4})
    model = CycleGAN.fit(cxr_prepared, config, tmp_path / "run", device="cpu")
    assert json.loads((tmp_path / "run" / "run.json").read_text())["steps"] == 2 * 4  # 14 images per domain, batches of 4
    assert read_checkpoint(model.checkpoint).step == 8
    method = CycleGANMethod(config, load_domains(cxr_prepared, "Normal", "COVID-19", 32), torch.device("cpu"), steps=8)
    assert [method.schedules()["generators"].lr(s) for s in (0, 3, 4, 6, 8)] == pytest.approx([2e-4, 2e-4, 2e-4, 1e-4, 0.0])


def test_interrupted_then_resumed_equals_uninterrupted(cxr_prepared, tmp_path):
    config = build_config(CycleGANConfig, PRESETS, None, {**TINY, "steps": 24})
    everything = Retention(keep_all=True)  # compare the full final checkpoints (pools, discriminators, optimizer state)
    CycleGAN.fit(cxr_prepared, config, tmp_path / "straight", device="cpu", retention=everything)

    def interrupt(step: int) -> None:
        if step == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        CycleGAN.fit(cxr_prepared, config, tmp_path / "broken", device="cpu", on_step=interrupt, retention=everything)
    assert read_checkpoint(latest_checkpoint(tmp_path / "broken" / "train")).step == 12
    CycleGAN.fit(cxr_prepared, config, tmp_path / "broken", resume=True, device="cpu", retention=everything)
    straight = read_checkpoint(latest_checkpoint(tmp_path / "straight" / "train")).tensors
    resumed = read_checkpoint(latest_checkpoint(tmp_path / "broken" / "train")).tensors
    assert straight.keys() == resumed.keys()
    assert any(k.startswith("module.pool_A.") for k in straight)  # the image pools are part of the checkpoint
    assert int(straight["module.pool_B.filled"]) == 8  # 24 steps x 2 images filled the pool of 8: swaps happened
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    assert np.isfinite([float(v) for v in open(tmp_path / "broken" / "log_train.csv").read().split()[-1].split(",")]).all()
