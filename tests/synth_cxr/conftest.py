"""Fixtures for the X-ray translators: phantom X-ray classes, a referee classifier, one trained CycleGAN."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from radsynth.cli import main
from radsynth.data import phantom
from radsynth.data.detect import open_source
from radsynth.data.prepare import PrepareOptions, prepare
from radsynth.data.slices import SliceSet

SIZE = 32
CLASSES = ("Normal", "Pneumonia", "COVID-19")
# The CycleGAN every quality / synth test shares: 32 px, narrow nets, 300 steps of batch 2 without
# augmentation (16-20 s on one CPU core of the shared, loaded test machine).
CYCLEGAN_SETS = {"ngf": 16, "ndf": 8, "n_blocks": 2, "batch_size": 2, "augment": False, "sample_every": 150, "checkpoint_every": 150}
CYCLEGAN_STEPS = 300


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread: the test machine's 2 cores are shared, and 2 threads under load are far slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture(scope="session")
def cxr_raw(tmp_path_factory) -> Path:
    """Phantom X-ray class folders: 20 images per class rendered at 64 px (seed 0), with a manifest."""
    root = tmp_path_factory.mktemp("cxr") / "raw"
    phantom.write_cxr_phantom(root, n_per_class=20, size=64, seed=0, classes=CLASSES)
    return root


@pytest.fixture(scope="session")
def cxr_prepared(cxr_raw) -> Path:
    """``cxr_raw`` prepared at 32 px: patient-level split 0.7 / 0.1 / 0.2 stratified by class (14 / 2 / 4 per class)."""
    out = cxr_raw.parent / "prepared32"
    prepare(open_source(cxr_raw), out, PrepareOptions(size=SIZE))
    return out


@dataclass
class Referee:
    """Logistic regression on 32 x 32 pixels, Normal (0) vs COVID-19 (1), trained on other phantom patients."""

    weight: torch.Tensor
    bias: torch.Tensor
    held_out_accuracy: float

    def p_covid(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1, 32, 32) in [-1, 1] -> (N,) probability of COVID-19."""
        return torch.sigmoid(images.flatten(1) @ self.weight + self.bias)


@pytest.fixture(scope="session")
def referee(tmp_path_factory) -> Referee:
    """A referee for "looks like the target class": 40 phantom patients per class (seed 1, disjoint from
    the training phantoms), 30 fit / 10 held out per class; L2-regularised logistic regression (LBFGS)."""
    root = tmp_path_factory.mktemp("referee")
    phantom.write_cxr_phantom(root / "raw", n_per_class=40, size=64, seed=1, classes=("Normal", "COVID-19"))
    prepare(open_source(root / "raw"), root / "set", PrepareOptions(size=SIZE, fractions={"train": 0.75, "val": 0.0, "test": 0.25}))
    data = SliceSet(root / "set")
    x = torch.stack([data[i][0] for i in range(len(data))]).flatten(1)
    y = torch.tensor([row["klass"] == "COVID-19" for row in data.rows], dtype=torch.float32)
    fit = torch.tensor([row["split"] == "train" for row in data.rows])
    weight = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=300)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x[fit] @ weight + bias, y[fit]) + 1e-2 * (weight**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    weight, bias = weight.detach(), bias.detach()
    accuracy = float((((x[~fit] @ weight + bias) > 0).float() == y[~fit]).float().mean())
    return Referee(weight, bias, accuracy)


@pytest.fixture(scope="session")
def cyclegan_run(cxr_prepared) -> Path:
    """A CycleGAN Normal -> COVID-19 trained through the CLI on ``cxr_prepared`` (300 steps)."""
    run = cxr_prepared.parent / "cyclegan_run"
    sets = [f"--set={k}={v}" for k, v in CYCLEGAN_SETS.items()]
    with one_thread():
        code = main(["train", "cyclegan", "--data", str(cxr_prepared), "--out", str(run), "--size", str(SIZE),
                     "--steps", str(CYCLEGAN_STEPS), "--source", "Normal", "--target", "COVID-19", "--device", "cpu", *sets])
    assert code == 0
    return run
