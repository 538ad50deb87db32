"""Loading weights never executes code: a malicious pickle given to the CLI is refused and its payload never runs.

Each payload, when unpickled, writes a marker file; the control at the end shows that an ordinary
unpickler really would run it. Library-level tests of the same guard: tests/synth/test_checkpoint.py
(run checkpoints), tests/nets/test_state_file.py and tests/losses/test_perceptual.py (VGG weights).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import torch

from radsynth.training.checkpoint import latest_checkpoint
from tests.reliability.helpers import TINY_PIX2PIX, assert_one_line_error, run_cli


class Exploit:
    """Unpickling this runs code that writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_synth_refuses_a_run_whose_checkpoint_is_a_pickle(trained_run, phantom_prepared, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    marker = tmp_path / "pwned"
    path = latest_checkpoint(run / "train")
    torch.save({"module.generator.weight": Exploit(marker)}, path)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()  # so only the file format can stop it
    path.with_suffix(".json").write_text(json.dumps(meta))
    code, out, err = run_cli("synth", run, "--conditions", phantom_prepared, "--out", tmp_path / "synth", "--device", "cpu")
    assert_one_line_error(code, out, err, path.name, "not a safetensors file")
    assert not marker.exists() and not (tmp_path / "synth").exists()
    pickle.loads(_pickle_payload(path))  # control: an ordinary unpickler runs the payload
    assert marker.read_text() == "pwned"


def _pickle_payload(path: Path) -> bytes:
    """The pickle inside a torch.save zip file."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
        return archive.read(name)


def test_user_weights_file_with_pickled_code_is_refused(phantom_prepared, tmp_path):
    """``--set unet_features=FILE`` (a user segmenter for the enhanced pix2pix feature loss) is read with
    ``torch.load(weights_only=True)``: the pickled payload is refused before training starts."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "segmenter.pt"
    torch.save({"model.0.conv.weight": Exploit(marker)}, evil)
    out = tmp_path / "run"
    code, stdout, err = run_cli("train", "enhanced-pix2pix", "--data", phantom_prepared, "--out", out, "--steps", "2",
                                *TINY_PIX2PIX, f"--set=unet_features={evil}")
    assert_one_line_error(code, stdout, err, "segmenter.pt", "refused")
    assert not marker.exists()
    assert not out.exists()  # refused before the run directory was made


def test_bad_weights_file_under_force_keeps_the_old_run(phantom_prepared, tmp_path):
    """A missing VGG weights file is input checked before ``--force`` clears anything: the old run stays."""
    out = tmp_path / "run"
    code, _, _ = run_cli("train", "enhanced-pix2pix", "--data", phantom_prepared, "--out", out, "--steps", "2", *TINY_PIX2PIX)
    assert code == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    code, stdout, err = run_cli("train", "enhanced-pix2pix", "--data", phantom_prepared, "--out", out, "--steps", "2", *TINY_PIX2PIX,
                                f"--set=vgg_weights={tmp_path / 'missing.safetensors'}", "--force")
    assert_one_line_error(code, stdout, err, "missing.safetensors", "not found")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
