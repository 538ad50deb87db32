"""pix2pix for mask -> CT: it learns, it resumes exactly, it synthesizes a traceable set."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from radsynth.config import build_config
from radsynth.data.geometry import fit_to_size
from radsynth.data.intensity import to_unit
from radsynth.data.phantom import ct_phantom_slice
from radsynth.data.slices import SliceSet
from radsynth.synth.base import TrainingData
from radsynth.training.checkpoint import latest_checkpoint, read_checkpoint
from radsynth.synth.conditions import condition_tensor
from radsynth.synth.pix2pix import PRESETS, Pix2Pix, Pix2PixConfig, Pix2PixMethod, cosingan_num_downs
from radsynth.training.trainer import Trainer, TrainerOptions

TINY = {"size": 32, "ngf": 8, "ndf": 8, "batch_size": 2, "log_every": 5, "sample_every": 10, "checkpoint_every": 10}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB for images in [-1, 1] (peak-to-peak 2)."""
    return float(10 * torch.log10(4.0 / ((a - b) ** 2).mean()))


def test_cosingan_depth_rule():
    assert [cosingan_num_downs(s) for s in (32, 48, 64, 96, 128, 192, 256, 384, 512)] == [4, 4, 5, 5, 6, 6, 7, 7, 8]


@pytest.mark.outcome
def test_pix2pix_overfits_one_phantom_pair(tmp_path, outcome):
    """250 steps on one 64 px phantom pair reach >= 27 dB PSNR (measured 30.5 dB); predicting the mean gives ~9 dB."""
    hu, label = ct_phantom_slice(256, seed=1)
    image, label = fit_to_size(to_unit(hu, -1000.0, 200.0), label, 64)
    data = TrainingData(torch.from_numpy(image)[None, None], torch.from_numpy(label.astype(np.int64))[None], ["0"], ["p"], "memory")
    config = Pix2PixConfig(size=64, ngf=32, ndf=32, steps=250, augment="none", batch_size=1, dropout=0.0)
    method = Pix2PixMethod(config, data, torch.device("cpu"), {})
    Trainer(method, tmp_path, TrainerOptions(steps=250, sample_every=250, checkpoint_every=250)).fit()
    method.generator.eval()
    with torch.no_grad():
        fake = method.generator(condition_tensor(data.labels))
    assert psnr(data.images, data.images.mean().expand_as(data.images)) < 12
    assert outcome("psnr", psnr(fake, data.images)) >= 27.0


def test_onehot_condition_keeps_ggo_and_consolidation_apart():
    """Jiang's pix2pix baseline takes the four labels as channels (the global-local cGAN's input); CoSinGAN's grey
    condition merges GGO and consolidation into one level."""
    from radsynth.synth.pix2pix import encode_condition

    label = torch.tensor([[[0, 1], [2, 3]]])
    grey, onehot = Pix2PixConfig(size=32, condition="cosingan"), Pix2PixConfig(size=32, condition="onehot")
    merged = encode_condition(label, grey)
    assert merged.shape == (1, 1, 2, 2) and merged[0, 0, 1, 0] == merged[0, 0, 1, 1]
    apart = encode_condition(label, onehot)
    assert apart.shape == (1, 4, 2, 2) and apart[0, :, 1, 0].argmax() == 2 and apart[0, :, 1, 1].argmax() == 3
    hu, phantom_label = ct_phantom_slice(256, seed=1)
    image, phantom_label = fit_to_size(to_unit(hu, -1000.0, 200.0), phantom_label, 32)
    data = TrainingData(torch.from_numpy(image)[None, None], torch.from_numpy(phantom_label.astype(np.int64))[None], ["0"], ["p"], "memory")
    method = Pix2PixMethod(Pix2PixConfig(**TINY, condition="onehot", augment="jiang"), data, torch.device("cpu"), {})
    losses = method.train_step(0, torch.Generator().manual_seed(0))
    assert all(np.isfinite(v) for v in losses.values())
    assert method.generator(apart.repeat(1, 1, 16, 16)).shape == (1, 1, 32, 32)  # a 4-channel generator (a 1-channel one raises)


def _state(run: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(latest_checkpoint(run / "train")).tensors


def test_interrupted_then_resumed_equals_uninterrupted(phantom_prepared, tmp_path):
    config = build_config(Pix2PixConfig, PRESETS, None, {**TINY, "steps": 30})
    Pix2Pix.fit(phantom_prepared, config, tmp_path / "straight", device="cpu")

    def interrupt(step: int) -> None:
        if step == 15:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Pix2Pix.fit(phantom_prepared, config, tmp_path / "broken", device="cpu", on_step=interrupt)
    assert read_checkpoint(latest_checkpoint(tmp_path / "broken" / "train")).step == 15
    Pix2Pix.fit(phantom_prepared, config, tmp_path / "broken", resume=True, device="cpu")
    straight, resumed = _state(tmp_path / "straight"), _state(tmp_path / "broken")
    assert straight.keys() == resumed.keys() and len(straight) > 20
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    rows = list(csv.DictReader(open(tmp_path / "broken" / "log_train.csv")))
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20, 25, 30]  # no duplicated rows after the resume


def _train_cmd(data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    sets = [f"--set={k}={v}" for k, v in TINY.items() if k != "checkpoint_every"]
    return [sys.executable, "-m", "radsynth.cli", "train", "pix2pix", "--data", str(data), "--out", str(out),
            "--steps", str(steps), "--device", "cpu", "--set=checkpoint_every=20", *sets, *extra]


def test_sigkill_then_resume_equals_uninterrupted(phantom_prepared, tmp_path):
    steps = 400
    assert subprocess.run(_train_cmd(phantom_prepared, tmp_path / "straight", steps), capture_output=True, timeout=600).returncode == 0
    proc = subprocess.Popen(_train_cmd(phantom_prepared, tmp_path / "killed", steps), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer = tmp_path / "killed" / "train" / "checkpoints" / "latest.json"
    deadline = time.time() + 120
    while time.time() < deadline and not (pointer.exists() and json.loads(pointer.read_text())["step"] >= 40):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(pointer.read_text())["step"]
    assert 40 <= killed_at < steps, "training finished before it could be killed; raise the step count"
    resumed = subprocess.run(_train_cmd(phantom_prepared, tmp_path / "killed", steps, "--resume"), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    straight, after = _state(tmp_path / "straight"), _state(tmp_path / "killed")
    assert all(torch.equal(straight[k], after[k]) for k in straight)


def test_synthesize_set_keeps_conditions_and_provenance(cli, phantom_prepared, tmp_path):
    run = tmp_path / "run"
    assert cli("train", "pix2pix", "--data", phantom_prepared, "--out", run, "--steps", "10", "--device", "cpu",
               *[f"--set={k}={v}" for k, v in TINY.items()]).code == 0
    record = json.loads((run / "run.json").read_text())
    assert record["method"] == "pix2pix" and record["config"]["steps"] == 10 and "versions" in record["provenance"]
    out = tmp_path / "synth"
    result = cli("synth", run, "--conditions", phantom_prepared, "--out", out, "--split", "test", "--n-per-condition", "2", "--seed", "3")
    assert result.code == 0, result.err
    conditions = SliceSet(phantom_prepared, "test")
    synthetic = SliceSet(out)
    assert len(synthetic) == 2 * len(conditions)
    by_id = {row["id"]: i for i, row in enumerate(conditions.rows)}
    checkpoint_hash = None
    for i, row in enumerate(synthetic.rows):
        source = by_id[row["condition_id"]]
        assert torch.equal(synthetic[i][1], conditions[source][1])  # label map = the condition
        assert row["patient"] == conditions.rows[source]["patient"] and row["split"] == "test"
        assert row["model"] == "pix2pix" and row["diversifier"] == "none" and row["seed"] == "3"
        checkpoint_hash = checkpoint_hash or row["checkpoint_sha256"]
        assert row["checkpoint_sha256"] == checkpoint_hash and len(checkpoint_hash) == 64
    # without diversification both copies of a condition are the same image
    n = len(conditions)
    assert torch.allclose(synthetic[0][0], synthetic[n][0])


def test_dropout_diversifies_and_seed_reproduces(phantom_prepared, tmp_path):
    config = build_config(Pix2PixConfig, PRESETS, None, {**TINY, "steps": 10})
    model = Pix2Pix.fit(phantom_prepared, config, tmp_path / "run", device="cpu")
    labels = SliceSet(phantom_prepared)[0][1][None].repeat(2, 1, 1)
    a = model.generate(labels, seed=1, diversify="dropout")
    b = model.generate(labels, seed=1, diversify="dropout")
    plain = model.generate(labels, seed=1)
    assert torch.equal(a, b)
    assert (a[0] - a[1]).abs().mean() > 1e-4  # two dropout draws differ
    assert torch.equal(plain[0], plain[1])


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(cli, phantom_prepared, tmp_path, monkeypatch):
    original = Pix2PixMethod.train_step

    def poisoned(self, step, generator):
        losses = original(self, step, generator)
        return {**losses, "d": float("nan")} if step == 14 else losses

    monkeypatch.setattr(Pix2PixMethod, "train_step", poisoned)
    result = cli("train", "pix2pix", "--data", phantom_prepared, "--out", tmp_path / "run", "--steps", "30", "--device", "cpu",
                 *[f"--set={k}={v}" for k, v in TINY.items()])
    assert result.code == 1 and "non-finite loss" in result.err and "step 15" in result.err
    assert read_checkpoint(latest_checkpoint(tmp_path / "run" / "train")).step == 10


def test_synth_limit_spreads_over_the_set():
    """--limit keeps first and last and spaces the rest evenly, so a set sorted by patient / modality keeps both ends."""
    from radsynth.errors import InputError
    from radsynth.synth.generate import evenly_spaced

    rows = list(range(100, 110))
    assert evenly_spaced(rows, 4) == [100, 103, 106, 109]
    assert evenly_spaced(rows, 2) == [100, 109]
    assert evenly_spaced(rows, 1) == [100]
    assert evenly_spaced(rows, 10) == rows and evenly_spaced(rows, 50) == rows
    assert len(evenly_spaced(list(range(486)), 400)) == 400
    with pytest.raises(InputError, match="--limit"):
        evenly_spaced(rows, 0)
