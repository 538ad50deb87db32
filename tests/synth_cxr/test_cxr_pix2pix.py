"""pix2pix-cxr (Liang et al.): how Normal inputs are paired with COVID-19 targets, the loss sum, and a
short run whose outputs the referee calls COVID-19."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
import torch

from radsynth.config import build_config
from radsynth.synth.domains import load_domains
from radsynth.synth.pix2pix_cxr import PRESETS, Pix2PixCXR, Pix2PixCXRConfig, Pix2PixCXRMethod

TINY = {"size": 32, "ngf": 8, "ndf": 8, "batch_size": 4, "log_every": 10, "sample_every": 100, "checkpoint_every": 100}


@pytest.fixture(scope="module")
def domains(cxr_prepared):
    return load_domains(cxr_prepared, "Normal", "COVID-19", 32)


def test_pairs_walk_normals_by_epoch_and_redraw_targets(domains):
    config = build_config(Pix2PixCXRConfig, PRESETS, None, {**TINY, "batch_size": 1})
    method = Pix2PixCXRMethod(config, domains, torch.device("cpu"), steps=42)
    targets: dict[int, set[int]] = defaultdict(set)
    for epoch in range(3):
        inputs = []
        for step in range(14 * epoch, 14 * (epoch + 1)):
            x, y = method.pairs(step, torch.Generator().manual_seed(step))
            inputs += x.tolist()
            targets[x.item()].add(y.item())
            assert 0 <= y.item() < 14
        assert sorted(inputs) == list(range(14))  # every Normal image once per epoch
    # a Normal image meets a new random COVID-19 image each time (no fixed pairing): 3 epochs give >= 2 targets mostly
    assert sum(len(t) >= 2 for t in targets.values()) >= 10
    a, b = method.pairs(5, torch.Generator().manual_seed(9)), method.pairs(5, torch.Generator().manual_seed(9))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_epochs_define_the_paper_schedule(cxr_prepared, tmp_path):
    config = build_config(Pix2PixCXRConfig, PRESETS, None, {**TINY, "epochs": 2})
    Pix2PixCXR.fit(cxr_prepared, config, tmp_path / "run", device="cpu")
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["steps"] == 2 * 4  # 14 Normal train images in batches of 4 per epoch
    assert "uniformly" in record["pairing"] and record["domains"]["A"]["class"] == "Normal"


@pytest.mark.outcome
def test_short_run_outputs_read_as_covid(cxr_prepared, referee, domains, tmp_path, outcome):
    """Measured (200 steps, 32 px, batch 4): referee P(COVID-19) 0.045 for the Normal inputs, 0.97 for their
    translations (14 / 14 classified COVID-19). The outputs stay close to one another (mean L1 0.035 to
    their mean): with arbitrary pairs the L1 term pulls G(x) toward a typical COVID-19 image."""
    config = build_config(Pix2PixCXRConfig, PRESETS, None, {**TINY, "steps": 200})
    model = Pix2PixCXR.fit(cxr_prepared, config, tmp_path / "run", device="cpu")
    normal = domains.a.images
    out = model.translate(normal, seed=0)
    p_in, p_out = referee.p_covid(normal), referee.p_covid(out)
    outcome("share_in_covid", (p_in > 0.5).float().mean())
    outcome("share_out_covid", (p_out > 0.5).float().mean())
    outcome("p_out_minus_p_in", p_out.mean() - p_in.mean())
    outcome("spread_to_mean", (out - out.mean(0)).abs().mean())
    assert (p_in > 0.5).float().mean() <= 0.2 and (p_out > 0.5).float().mean() >= 0.8
    assert p_out.mean() - p_in.mean() >= 0.5
    assert (out - out.mean(0)).abs().mean() > 0.01  # the output still depends on the input
    # test-time dropout (pix2pix's noise z) gives other images, reproducibly for a seed
    drawn = model.translate(normal[:4], seed=3, diversify="dropout")
    assert torch.equal(drawn, model.translate(normal[:4], seed=3, diversify="dropout"))
    assert (drawn - out[:4]).abs().mean() > 0.01
    assert torch.equal(model.translate(normal[:4], seed=5), out[:4])  # without dropout the seed does not matter
