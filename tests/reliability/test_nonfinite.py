"""Training stops on a non-finite loss or non-finite weights with one clear line (exit 1), and the newest
checkpoint on disk is always the last good one.

tests/synth/test_pix2pix.py::test_nonfinite_loss_stops_and_keeps_last_good_checkpoint covers a NaN loss
injected at step 15 (checkpoint 10 kept); here a real divergence (learning rate 1e15) and an update that
overflows the weights while the loss of its step was still finite.
"""

from __future__ import annotations

import torch

from radsynth.progress import without_progress
from radsynth.training.checkpoint import latest_checkpoint, read_checkpoint
from radsynth.synth.pix2pix import Pix2PixMethod
from tests.reliability.helpers import TINY_PIX2PIX, run_cli


def _one_line(code: int, err: str) -> str:
    lines = without_progress(err).strip().splitlines()  # progress lines (radsynth.progress) may come before it
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_diverging_training_stops_and_writes_no_bad_checkpoint(phantom_prepared, tmp_path):
    run = tmp_path / "run"
    code, _, err = run_cli("train", "pix2pix", "--data", phantom_prepared, "--out", run, "--steps", "10", *TINY_PIX2PIX,
                           "--set=lr=1e15", "--set=checkpoint_every=1")
    line = _one_line(code, err)
    assert line.startswith("radsynth: error: step 1: ") and "non-finite" in line and "lower the learning rate" in line
    assert latest_checkpoint(run / "train") is None  # the overflowed weights of step 1 were not saved


def test_overflowing_weights_are_not_saved_over_the_last_good_checkpoint(phantom_prepared, tmp_path, monkeypatch):
    original = Pix2PixMethod.train_step

    def overflow_at_step_10(self, step, generator):
        losses = original(self, step, generator)
        if step == 9:  # step 10: the loss of this step is finite; the update it made is not
            with torch.no_grad():
                next(self.generator.parameters()).fill_(float("inf"))
        return losses

    monkeypatch.setattr(Pix2PixMethod, "train_step", overflow_at_step_10)
    run = tmp_path / "run"
    code, _, err = run_cli("train", "pix2pix", "--data", phantom_prepared, "--out", run, "--steps", "20", *TINY_PIX2PIX)
    line = _one_line(code, err)
    assert line.startswith("radsynth: error: step 10: weights or optimizer state became non-finite")
    checkpoint = read_checkpoint(latest_checkpoint(run / "train"))
    assert checkpoint.step == 5 and all(torch.isfinite(t.float()).all() for t in checkpoint.tensors.values())
    monkeypatch.setattr(Pix2PixMethod, "train_step", original)
    code, _, err = run_cli("synth", run, "--conditions", phantom_prepared, "--out", tmp_path / "synth", "--limit", "2", "--device", "cpu")
    assert code == 0, err  # the kept checkpoint is usable
