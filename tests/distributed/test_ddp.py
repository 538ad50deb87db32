"""Several processes (torchrun-style, gloo on the CPU) reproduce one process.

Two worker processes are started the way ``torchrun --nproc_per_node 2`` starts them (RANK,
LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and run ``radsynth.cli.main``: pix2pix training
with the global batch 4 split 2 + 2, synthesis from a trained run, and a segmenter evaluation. The
same commands run once in this process. One launch serves all three commands (each interpreter
start costs seconds on the shared CPU).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from radsynth.cli import main
from radsynth.data.slices import SliceSet
from radsynth.training.checkpoint import latest_checkpoint, read_checkpoint
from radsynth.synth.pix2pix import Pix2Pix

WORKER = Path(__file__).with_name("ddp_worker.py")
STEPS, LR = 8, 2e-4
# instance norm and no dropout: the per-rank BatchNorm statistics and dropout masks of a plain DDP run
# would make the two runs differ by design (see radsynth.distributed)
PIX2PIX = ["--size", "32", "--steps", str(STEPS), "--device", "cpu", "--set", "ngf=8", "--set", "ndf=8", "--set", "batch_size=4",
           "--set", "norm=instance", "--set", "dropout=0.0", "--set", f"lr={LR}", "--set", "log_every=1", "--set", "sample_every=4",
           "--set", "checkpoint_every=4"]
SYNTH = ["--n-per-condition", "2", "--limit", "12", "--seed", "3", "--device", "cpu"]  # 4 batches of 8, 8, 4 (+ 4) conditions
# 60 steps at lr 0.01: long enough that the segmenter has learnt the lung (one process: lung DSC 0.685 with the
# AVX512 and AVX2 kernels, 0.636 with the default ones), so comparing the two runs' scores means something
SEGMENT = ["--model", "enet", "--epochs", "30", "--size", "32", "--device", "cpu", "--set", "batch_size=4", "--set", "augment=none",
           "--set", "lr=0.01"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(commands: list[list[str]], world: int = 2, timeout: float = 120.0) -> list[subprocess.CompletedProcess]:
    """Run ``commands`` (radsynth argv lists) in ``world`` worker processes, as torchrun would."""
    plan = json.dumps([[free_port(), [str(a) for a in argv]] for argv in commands])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "LOCAL_WORLD_SIZE": str(world)}
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), plan], env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r in range(world)
    ]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


@pytest.fixture(scope="module")
def runs(phantom_prepared, tmp_path_factory):
    """One-process and two-process outputs of the same commands."""
    root = tmp_path_factory.mktemp("ddp")
    one, two = root / "one", root / "two"
    for folder in (one, two):
        folder.mkdir()
    train = ["train", "pix2pix", "--data", phantom_prepared, *PIX2PIX]
    assert main([str(a) for a in [*train, "--out", one / "run"]]) == 0
    synth = ["synth", one / "run", "--conditions", phantom_prepared, *SYNTH]  # both synthesize from the one-process run
    assert main([str(a) for a in [*synth, "--out", one / "synth"]]) == 0
    segment = ["evaluate", "segment", "--train", "oc", "--test", phantom_prepared, *SEGMENT]
    assert main([str(a) for a in [*segment, "--out", one / "segment"]]) == 0
    ranks = launch([[*train, "--out", two / "run"], [*synth, "--out", two / "synth"], [*segment, "--out", two / "segment"]])
    for rank, result in enumerate(ranks):
        assert result.returncode == 0, f"rank {rank}:\n{result.stderr[-3000:]}"
    return one, two


def _tensors(run: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(latest_checkpoint(run / "train")).tensors


def _is_bias(name: str) -> bool:
    """Biases of the convolutions that feed an InstanceNorm: the norm subtracts them again, so their
    gradient is zero up to rounding, and Adam (which divides by the gradient's RMS) turns that rounding
    into steps of up to lr. They change nothing the networks compute. (Any other entry whose gradient
    happens to be near zero behaves the same way, hence the bound on all entries below.)"""
    return name.endswith(".bias") and name.startswith("module.")


def test_two_processes_train_the_same_pix2pix_as_one(runs, phantom_prepared):
    one, two = runs
    a, b = _tensors(one / "run"), _tensors(two / "run")
    assert a.keys() == b.keys()
    diffs = {k: (a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point()}
    assert max(diffs.values()) <= 2 * LR * STEPS  # Adam's steps are about lr: the no-effect biases (measured 9e-4)
    close = [((a[k].double() - b[k].double()).abs() < 1e-5).double().mean().item() for k in a if a[k].is_floating_point() and not _is_bias(k)]
    assert min(close) > 0.999  # weights and optimizer state, entry by entry (measured: all, max difference 6e-6)
    # what the generators compute agrees to float rounding
    labels = torch.stack([label for _, label, _ in SliceSet(phantom_prepared, split=None)])
    out_one = Pix2Pix.load(one / "run", "cpu").generate(labels, 0)
    out_two = Pix2Pix.load(two / "run", "cpu").generate(labels, 0)
    assert (out_one - out_two).abs().max().item() < 1e-4  # measured 4e-7; outputs lie in [-1, 1]
    # the logged losses (two processes: the mean over ranks) follow the one-process run
    log_one = (one / "run" / "log_train.csv").read_text().splitlines()
    log_two = (two / "run" / "log_train.csv").read_text().splitlines()
    assert len(log_one) == len(log_two) == STEPS + 1 and log_one[0] == log_two[0]
    for row_one, row_two in zip(log_one[1:], log_two[1:]):
        losses_one = [float(v) for v in row_one.split(",")[1:-1]]  # without it_per_s
        losses_two = [float(v) for v in row_two.split(",")[1:-1]]
        assert losses_one == pytest.approx(losses_two, rel=1e-4)
    # rank 0 alone wrote the run: one set of checkpoints, samples and records
    assert sorted(p.name for p in (two / "run" / "train" / "checkpoints").iterdir()) == sorted(
        p.name for p in (one / "run" / "train" / "checkpoints").iterdir())
    assert sorted(p.name for p in (two / "run" / "samples").iterdir()) == sorted(p.name for p in (one / "run" / "samples").iterdir())


def test_two_processes_synthesize_the_same_set_as_one(runs):
    one, two = runs
    a, b = one / "synth", two / "synth"
    assert (a / "manifest.csv").read_text() == (b / "manifest.csv").read_text()
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert len(files) == 2 * 24 + 1  # 24 images, 24 label maps (12 conditions x 2 copies), the preview
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.png"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    info_a, info_b = (json.loads((d / "dataset.json").read_text()) for d in (a, b))
    info_a.pop("provenance", None), info_b.pop("provenance", None)
    assert info_a == info_b


@pytest.mark.outcome
def test_two_processes_evaluate_a_segmenter(runs, outcome):
    """The segmenter (ENet: BatchNorm, so per-rank batch statistics) trains on the same samples; rank 0 tests and writes."""
    one, two = runs
    r1, r2 = (json.loads((d / "segment" / "results.json").read_text()) for d in (one, two))
    assert r1["training_set"] == r2["training_set"] and r1["test"] == r2["test"]
    dsc1 = r1["metrics"]["overall"]["lung"]["dsc"]["mean"]
    dsc2 = r2["metrics"]["overall"]["lung"]["dsc"]["mean"]
    outcome("lung_dsc_one_process", dsc1)
    outcome("lung_dsc_two_processes", dsc2)
    assert dsc1 >= 0.4 and dsc2 >= 0.4, (dsc1, dsc2)  # both learnt the lung (all-lung labelling scores 0.25)
    assert abs(dsc1 - dsc2) < 0.2, (dsc1, dsc2)


def test_single_process_verbs_refuse_to_run_under_torchrun(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["data", "phantom", "--out", str(tmp_path / "p")]) == 2
    assert "under torchrun use train, synth, evaluate segment" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
