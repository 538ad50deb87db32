"""Helpers shared by the reliability tests: an in-process CLI runner and checks of its output."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from radsynth.cli import main
from radsynth.progress import without_progress

# a tiny pix2pix (32 px, 8 filters): a step takes ~0.1 s on one CPU thread
TINY_PIX2PIX = ("--device", "cpu", "--set=size=32", "--set=ngf=8", "--set=ndf=8", "--set=batch_size=2",
                "--set=log_every=5", "--set=sample_every=1000", "--set=checkpoint_every=5")


def run_cli(*args: str | Path) -> tuple[int, str, str]:
    """``radsynth ARGS`` in-process -> (exit code, stdout, stderr); usable in session fixtures."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, out: str, err: str, names: str, problem: str) -> str:
    """Exit 2, one stderr line ``radsynth: error: ...`` naming ``names`` and ``problem``, no traceback."""
    lines = without_progress(err).strip().splitlines()  # progress lines (radsynth.progress) may come before it
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("radsynth: error: "), err
    assert names in lines[0] and problem in lines[0], lines[0]
    assert "Traceback" not in err and out == ""
    return lines[0]


def tree(root: Path) -> list[str]:
    """Every path under ``root`` (hidden temporary folders included), relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))
