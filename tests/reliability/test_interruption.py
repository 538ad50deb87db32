"""Interrupted work is not lost, and a kill never leaves a half-written checkpoint or output that is then used.

The training test runs the real command (``python -m radsynth.cli train pix2pix``) in a child
process, kills it with SIGKILL, resumes it (in this process, to save a second interpreter start)
and stops that with a real SIGINT (Ctrl-C), resumes again, and compares every tensor of the final checkpoint with an uninterrupted run: on CPU with a fixed seed
they are bit-identical.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from radsynth.training.checkpoint import latest_checkpoint, read_checkpoint
from tests.reliability.helpers import TINY_PIX2PIX, assert_one_line_error, run_cli, tree

STEPS = 20  # checkpoints every 5 steps (TINY_PIX2PIX)


def _train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "pix2pix", "--data", str(data), "--out", str(out), "--steps", str(STEPS), *TINY_PIX2PIX, *extra]


def _child(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "radsynth.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _latest_step(run: Path) -> int:
    pointer = run / "train" / "checkpoints" / "latest.json"
    try:
        return json.loads(pointer.read_text())["step"]
    except (OSError, ValueError):  # not there yet (it is replaced atomically, so never half-written)
        return -1


def _wait_for_step(proc: subprocess.Popen, run: Path, step: int, timeout: float = 120.0) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and _latest_step(run) < step:
        time.sleep(0.01)
    return _latest_step(run)


def _sigint_when(run: Path, step: int, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and _latest_step(run) < step:
        time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGINT)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(latest_checkpoint(run / "train")).tensors


def test_sigkill_then_sigint_then_resume_equals_uninterrupted(phantom_prepared, tmp_path):
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    code, _, err = run_cli(*_train_args(phantom_prepared, straight))
    assert code == 0, err

    proc = _child(_train_args(phantom_prepared, cut))
    killed_at = _wait_for_step(proc, cut, 5)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert 5 <= killed_at < STEPS - 5, "the child ran too far before it could be killed"
    # what a kill between writing a tensor file and moving latest.json leaves: a newer, unreferenced,
    # truncated checkpoint and a temporary file; resuming must ignore both
    folder = cut / "train" / "checkpoints"
    (folder / f"step_{STEPS - 1:07d}.safetensors").write_bytes(b"\x00" * 40)
    (folder / f".step_{STEPS - 1:07d}.safetensors.tmp-kill").write_bytes(b"\x00" * 40)

    # resume in this process and press Ctrl-C (a real SIGINT) once it has saved 5 more steps
    watcher = threading.Thread(target=_sigint_when, args=(cut, killed_at + 5), daemon=True)
    watcher.start()
    code, _, err = run_cli(*_train_args(phantom_prepared, cut, "--resume"))
    watcher.join(timeout=5)
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    stopped_at = _latest_step(cut)
    assert killed_at + 5 <= stopped_at < STEPS, "the run finished before it could be interrupted"

    code, _, err = run_cli(*_train_args(phantom_prepared, cut, "--resume"))
    assert code == 0, err
    a, b = _weights(straight), _weights(cut)
    assert a.keys() == b.keys() and len(a) > 20
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    logged = [int(r["step"]) for r in csv.DictReader(open(cut / "log_train.csv"))]
    assert logged == list(range(5, STEPS + 1, 5))  # each step logged once, despite two interruptions


def test_truncated_checkpoint_is_refused_not_loaded(trained_run, phantom_prepared, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    path = latest_checkpoint(run / "train")
    path.write_bytes(path.read_bytes()[:-100])
    code, out, err = run_cli("synth", run, "--conditions", phantom_prepared, "--out", tmp_path / "synth")
    assert_one_line_error(code, out, err, path.name, "does not match the hash")
    code, out, err = run_cli("train", "pix2pix", "--data", phantom_prepared, "--out", run, "--steps", "10", *TINY_PIX2PIX, "--resume")
    assert_one_line_error(code, out, err, path.name, "does not match the hash")
    assert not (tmp_path / "synth").exists()


def _synth(run: Path, conditions: Path, out: Path) -> tuple[int, str, str]:
    return run_cli("synth", run, "--conditions", conditions, "--out", out, "--n-per-condition", "2", "--seed", "5", "--device", "cpu")


def test_interrupted_synthesis_leaves_nothing_and_a_rerun_equals_an_uninterrupted_one(trained_run, phantom_prepared, tmp_path, monkeypatch):
    code, _, err = _synth(trained_run, phantom_prepared, tmp_path / "reference")
    assert code == 0, err
    import radsynth.synth.export as export

    written = []
    original = export.write_image

    def ctrl_c_at_the_tenth_image(path, image):
        written.append(path)
        if len(written) == 10:
            raise KeyboardInterrupt
        original(path, image)

    monkeypatch.setattr(export, "write_image", ctrl_c_at_the_tenth_image)
    out = tmp_path / "out" / "synth"
    code, _, err = _synth(trained_run, phantom_prepared, out)
    assert code == 130 and "interrupted" in err and len(written) == 10
    assert not (tmp_path / "out").exists()  # no half-written set, no temporary folder
    monkeypatch.setattr(export, "write_image", original)
    code, _, err = _synth(trained_run, phantom_prepared, out)
    assert code == 0, err
    reference = tmp_path / "reference"
    files = [p for p in tree(reference) if (reference / p).is_file() and p.endswith((".png", ".csv"))]
    assert len(files) > 2 * 18
    assert [f for f in files if (reference / f).read_bytes() != (out / f).read_bytes()] == []


@pytest.mark.parametrize("verb", ["synth", "train"])
def test_sigkill_leaves_no_output_that_is_later_mistaken_for_a_finished_one(verb, trained_run, phantom_prepared, tmp_path):
    """A killed ``synth`` leaves no ``--out`` at all (only a hidden temporary folder); a killed
    ``train`` leaves a run that ``synth`` reads from its last complete checkpoint."""
    if verb == "train":
        run = tmp_path / "run"
        shutil.copytree(trained_run, run)
        folder = run / "train" / "checkpoints"
        (folder / "step_0000011.safetensors").write_bytes(b"partial")  # newer than latest.json names
        code, _, err = _synth(run, phantom_prepared, tmp_path / "s")
        assert code == 0, err
        rows = list(csv.DictReader(open(tmp_path / "s" / "manifest.csv")))
        final = folder / "final_0000010.safetensors"  # the finished run's slim checkpoint, the one latest.json names
        assert {r["checkpoint_sha256"] for r in rows} == {hashlib.sha256(final.read_bytes()).hexdigest()}
        return
    out = tmp_path / "synth"
    proc = _child(["synth", str(trained_run), "--conditions", str(phantom_prepared), "--out", str(out), "--n-per-condition", "20", "--device", "cpu"])
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not any(p.name.startswith(".synth.tmp-") for p in tmp_path.iterdir()):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "synthesis finished before it could be killed"
    assert not out.exists()
    code, _, err = run_cli("synth", trained_run, "--conditions", phantom_prepared, "--out", out, "--limit", "2", "--device", "cpu")
    assert code == 0, err  # the leftover temporary folder does not block the rerun
    assert len(list(csv.DictReader(open(out / "manifest.csv")))) == 2
