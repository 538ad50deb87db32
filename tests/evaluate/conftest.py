"""Fixtures for the evaluation tests (this folder only)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The CPU is two cores shared with other jobs: one torch thread runs these small nets several
    times faster than two threads fighting for them (measured 24 s -> under 2 s for an ENet backward)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
