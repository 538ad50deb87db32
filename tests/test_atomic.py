import pytest

from radsynth.atomic import atomic_output_dir, atomic_write_bytes
from radsynth.errors import InputError


def test_failed_block_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_output_dir(tmp_path / "out") as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_interrupt_leaves_previous_output_intact(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(out, force=True) as tmp:
            (tmp / "a.txt").write_text("new")
            raise KeyboardInterrupt
    assert (out / "a.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_success_replaces_only_with_force(tmp_path):
    out = tmp_path / "out"
    with atomic_output_dir(out) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(InputError, match="--force"):
        with atomic_output_dir(out):
            pass
    with atomic_output_dir(out, force=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_write_bytes(tmp_path):
    atomic_write_bytes(tmp_path / "f.bin", b"abc")
    assert (tmp_path / "f.bin").read_bytes() == b"abc" and len(list(tmp_path.iterdir())) == 1


def test_a_sigkilled_writer_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    """SIGKILL cannot be caught: the hidden temporary folder stays until the next run into the same
    output clears it; another live process's temporary folder is left alone."""
    import os
    import subprocess
    import sys

    from radsynth.atomic import _host_tag

    code = ("import os, signal, sys\nfrom radsynth.atomic import atomic_output_dir\n"
            "with atomic_output_dir(sys.argv[1]) as tmp:\n    (tmp / 'half.txt').write_text('half')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], capture_output=True)
    assert result.returncode == -9
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]
    assert len(left) == 1 and (left[0] / "half.txt").exists() and not (tmp_path / "out").exists()
    live = tmp_path / f".out.tmp-{_host_tag()}-{os.getppid()}-abc"  # pytest's parent process: alive
    live.mkdir()
    with atomic_output_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "out"]
