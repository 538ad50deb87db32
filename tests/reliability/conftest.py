"""Fixtures for the reliability suite: one torch thread, a tiny trained pix2pix run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.reliability.helpers import TINY_PIX2PIX, run_cli


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Two shared cores: one torch thread is several times faster than two fighting threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trained_run(phantom_prepared, tmp_path_factory) -> Path:
    """A pix2pix run trained for 10 steps on the 32 px phantom set."""
    run = tmp_path_factory.mktemp("trained") / "run"
    code, _, err = run_cli("train", "pix2pix", "--data", phantom_prepared, "--out", run, "--steps", "10", *TINY_PIX2PIX)
    assert code == 0, err
    return run
