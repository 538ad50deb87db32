"""Fixtures for the quality tests (this folder only)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The CPU is two cores shared with other jobs: one torch thread runs these small nets several
    times faster than two threads fighting for them (as tests/evaluate/conftest.py measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cxr_prepared(tmp_path_factory):
    """Phantom X-rays, 6 Normal and 6 COVID-19, rendered and prepared at 32 px (patient-level split, stratified)."""
    from radsynth.data import phantom
    from radsynth.data.detect import open_source
    from radsynth.data.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("cxr")
    phantom.write_cxr_phantom(root / "raw", n_per_class=6, size=64, seed=0, classes=("Normal", "COVID-19"))
    prepare(open_source(root / "raw"), root / "prepared", PrepareOptions(size=32, fractions={"train": 0.5, "val": 0.0, "test": 0.5}))
    return root / "prepared"
