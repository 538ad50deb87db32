"""Existing outputs are never overwritten without ``--force``; with ``--force`` a failed run still keeps them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.helpers import TINY_PIX2PIX, assert_one_line_error, run_cli


def _commands(out: Path, prepared: Path, run: Path, nifti: Path) -> dict[str, list]:
    return {
        "data prepare": ["data", "prepare", nifti, "--out", out, "--size", "16"],
        "data phantom": ["data", "phantom", "--out", out, "--patients", "1", "--slices", "2", "--size", "32"],
        "train": ["train", "pix2pix", "--data", prepared, "--out", out, "--steps", "2", *TINY_PIX2PIX],
        "synth": ["synth", run, "--conditions", prepared, "--out", out, "--limit", "2", "--device", "cpu"],
        "evaluate segment": ["evaluate", "segment", "--train", "oc", "--test", prepared, "--out", out, "--preset", "quick", "--epochs", "1", "--device", "cpu"],
    }


VERBS = ["data prepare", "data phantom", "train", "synth", "evaluate segment"]


@pytest.mark.parametrize("verb", VERBS)
def test_refused_without_force_then_replaced_with_force(verb, tmp_path, phantom_prepared, trained_run, nifti_pair_dir):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    command = _commands(out, phantom_prepared, trained_run, nifti_pair_dir)[verb]
    code, stdout, err = run_cli(*command)
    assert_one_line_error(code, stdout, err, str(out), "pass --force to replace it")
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "precious"
    if verb == "evaluate segment":
        return  # training a segmenter is not needed to show the refusal; tests/evaluate covers --force runs
    code, _, err = run_cli(*command, "--force")
    assert code == 0, err
    assert not (out / "keep.txt").exists() and any(out.iterdir())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary or backup folder left


def test_force_with_bad_input_keeps_the_old_output(tmp_path):
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "P_image.nii.gz").write_bytes(b"not a volume")
    code, stdout, err = run_cli("data", "prepare", tmp_path / "bad", "--out", out, "--size", "16", "--force")
    assert_one_line_error(code, stdout, err, "P_image.nii.gz", "cannot read NIfTI")
    assert (out / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "prepared"]


def test_resume_continues_an_existing_run_without_force(trained_run, phantom_prepared, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = {p.name: p.read_bytes() for p in (run / "train" / "checkpoints").iterdir()}
    code, _, err = run_cli("train", "pix2pix", "--data", phantom_prepared, "--out", run, "--steps", "10", *TINY_PIX2PIX, "--resume")
    assert code == 0, err
    after = {p.name: p.read_bytes() for p in (run / "train" / "checkpoints").iterdir()}
    assert after == before  # finished: nothing retrained, nothing replaced
