"""Fixtures for the experiment-runner and report tests (this folder only)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Two shared cores: one torch thread keeps the miniature runs fast (see tests/evaluate/conftest.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
