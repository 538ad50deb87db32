"""Shared fixtures: the shared real data (skipped when absent), tiny on-disk data sets, a CLI runner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from radsynth.cli import main
from radsynth.data.nifti import save_volume

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config) -> None:
    """Under pytest-xdist (``make test`` runs two workers, one per core) each worker keeps to one
    torch thread, so the two workers do not fight over the two cores."""
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture
def outcome(request):
    """Record a measured training outcome of an ``outcome`` test (one JSON line: test, name, value,
    the CPU capability and thread count it ran under) in the file named by ``RADSYNTH_OUTCOME_LOG``,
    when set. tests/outcome_spread.py runs the outcome tests under several kernels and tabulates
    these lines, so each threshold can be set with the spread across CPUs in view. Returns ``value``."""
    import json
    import os

    import torch

    def record(name: str, value: float) -> float:
        log = os.environ.get("RADSYNTH_OUTCOME_LOG")
        if log:
            line = {"test": request.node.nodeid, "name": name, "value": float(value),
                    "capability": torch.backends.cpu.get_cpu_capability(), "onednn_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
                    "threads": torch.get_num_threads()}
            with open(log, "a") as handle:
                handle.write(json.dumps(line) + "\n")
        return value

    return record


@pytest.fixture
def ends_in_tanh():
    """``check(net, run)``: ``run()`` returns the net's output, which must be exactly what the last ``nn.Tanh``
    called inside ``net`` produced (so the [-1, 1] range is the network's structure, not luck of the
    initial weights), finite and within [-1, 1]. Returns the output."""
    import torch
    from torch import nn

    def check(net: nn.Module, run):
        produced = []
        hooks = [m.register_forward_hook(lambda module, args, out: produced.append(out)) for m in net.modules() if isinstance(m, nn.Tanh)]
        try:
            with torch.no_grad():
                y = run()
        finally:
            for hook in hooks:
                hook.remove()
        assert produced, f"{type(net).__name__} has no nn.Tanh that ran"
        assert torch.equal(y, produced[-1]), "the output is not the last Tanh's output"
        assert bool(torch.isfinite(y).all()) and float(y.abs().max()) <= 1.0
        return y

    return check


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data next to the repository (CI has it there); tests using it skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run ``radsynth ARGS`` in-process and capture its exit code and output."""

    def run(*args: str | Path) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def tiny_label_volume(z: int = 5, h: int = 24, w: int = 20, seed: int = 0) -> np.ndarray:
    """A (Z, H, W) uint8 schema label volume with every label present: lung blocks holding GGO and consolidation."""
    rng = np.random.default_rng(seed)
    label = np.zeros((z, h, w), np.uint8)
    label[:, 4:20, 2:9] = 1
    label[:, 4:20, 11:18] = 1
    label[:, 6:10, 3:7] = 2
    label[:, 14:17, 12:15] = 3
    label[rng.random(label.shape) < 0.02] = 2  # scattered labels: resizing must not invent values
    return label


@pytest.fixture
def nifti_pair_dir(tmp_path: Path) -> Path:
    """A folder with two tiny HU volumes and labels, laid out like ../shared/data/ct-rp9-dev."""
    root = tmp_path / "nifti"
    root.mkdir()
    for i, name in enumerate(("PA", "PB")):
        label = tiny_label_volume(seed=i)
        image = np.where(label == 0, 40.0, -850.0) + 200.0 * (label >= 2) - 1000.0 * (np.arange(20)[None, None, :] < 1)
        save_volume(root / f"{name}_image.nii.gz", image.astype(np.int16), (0.7, 0.7, 5.0))
        save_volume(root / f"{name}_label.nii.gz", label, (0.7, 0.7, 5.0))
    return root


@pytest.fixture(scope="session")
def phantom_prepared(tmp_path_factory) -> Path:
    """A prepared phantom CT set at 32 px: 3 patients x 6 slices, patient-level split."""
    from radsynth.data import phantom
    from radsynth.data.detect import open_source
    from radsynth.data.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("phantom")
    phantom.write_ct_phantom(root / "ct", n_patients=3, n_slices=6, size=128, seed=0)
    prepare(open_source(root / "ct"), root / "prepared32", PrepareOptions(size=32, fractions={"train": 0.34, "val": 0.0, "test": 0.66}))
    return root / "prepared32"


@pytest.fixture(scope="session")
def phantom_prepared64(tmp_path_factory) -> Path:
    """A prepared phantom CT set at 64 px: 4 patients x 6 slices (one without infection)."""
    from radsynth.data import phantom
    from radsynth.data.detect import open_source
    from radsynth.data.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("phantom64")
    phantom.write_ct_phantom(root / "ct", n_patients=4, n_slices=6, size=128, seed=1)
    prepare(open_source(root / "ct"), root / "prepared64", PrepareOptions(size=64, fractions={"train": 0.5, "val": 0.0, "test": 0.5}))
    return root / "prepared64"
