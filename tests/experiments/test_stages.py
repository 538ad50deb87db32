"""The stage runner: done stages are skipped, partial ones redone or continued, markers only after success."""

import json

import pytest
from rich.console import Console

from radsynth.errors import InputError
from radsynth.experiments.stages import DONE, Stage, is_done, run_stages, stage_seconds, start_run

QUIET = Console(quiet=True)


def _counting(calls, name, fail=False):
    def run(ctx):
        calls.append((name, ctx.partial))
        (ctx.folder / "out.txt").write_text(str(len(calls)))
        if fail:
            raise RuntimeError("boom")

    return run


def test_done_stages_are_skipped_and_redo_reruns(tmp_path):
    calls = []
    stages = [Stage("a", _counting(calls, "a")), Stage("b", _counting(calls, "b"))]
    timings = run_stages(tmp_path, stages, QUIET)
    assert [c[0] for c in calls] == ["a", "b"] and set(timings) == {"a", "b"}
    assert is_done(tmp_path, "a") and stage_seconds(tmp_path, "b") >= 0
    assert run_stages(tmp_path, stages, QUIET) == {} and len(calls) == 2
    run_stages(tmp_path, stages, QUIET, redo=["b"])
    assert [c[0] for c in calls] == ["a", "b", "b"] and (tmp_path / "b" / "out.txt").read_text() == "3"
    with pytest.raises(InputError):
        run_stages(tmp_path, stages, QUIET, redo=["nope"])


def test_a_failed_stage_has_no_marker_and_later_stages_do_not_run(tmp_path):
    calls = []
    with pytest.raises(RuntimeError):
        run_stages(tmp_path, [Stage("a", _counting(calls, "a", fail=True)), Stage("b", _counting(calls, "b"))], QUIET)
    assert not (tmp_path / "a" / DONE).exists() and not (tmp_path / "b").exists()
    # partial folder: a non-resumable stage starts clean, a resumable one is told it is partial and keeps its files
    run_stages(tmp_path, [Stage("a", _counting(calls, "a"))], QUIET)
    assert calls[-1] == ("a", False)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "checkpoint").write_text("x")
    run_stages(tmp_path, [Stage("c", _counting(calls, "c"), resumable=True)], QUIET)
    assert calls[-1] == ("c", True) and (tmp_path / "c" / "checkpoint").exists()
    assert json.loads((tmp_path / "c" / DONE).read_text())["stage"] == "c"


def test_run_record_refuses_other_settings(tmp_path):
    start_run(tmp_path / "run", {"experiment": "x", "settings": {"size": 32}, "seed": 0})
    (tmp_path / "run" / "a").mkdir()
    start_run(tmp_path / "run", {"experiment": "x", "settings": {"size": 32}, "seed": 0})
    assert (tmp_path / "run" / "a").exists()
    with pytest.raises(InputError, match="settings"):
        start_run(tmp_path / "run", {"experiment": "x", "settings": {"size": 64}, "seed": 0})
    start_run(tmp_path / "run", {"experiment": "x", "settings": {"size": 64}, "seed": 0}, force=True)
    assert not (tmp_path / "run" / "a").exists()


def test_experiment_verb_refuses_bad_input(tmp_path, capsys):
    from radsynth.cli import main

    assert main(["experiment", "nope", "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err
    assert main(["experiment", "cosingan", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run")]) == 2
    assert main(["experiment", "cosingan", "--data", str(tmp_path), "--preset", "huge", "--out", str(tmp_path / "run")]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err and not (tmp_path / "run").exists()
    assert main(["report", str(tmp_path)]) == 2


KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from rich.console import Console
from radsynth.experiments.stages import Stage, run_stages

def a(ctx):
    (ctx.folder / "a.txt").write_text("a")

def b(ctx):
    (ctx.folder / "checkpoint-1").write_text("step 1")
    os.kill(os.getpid(), signal.SIGKILL)  # the power goes out in the middle of stage b

run_stages(Path(sys.argv[1]), [Stage("a", a), Stage("b", b, resumable=True)], Console(quiet=True))
"""


def test_a_sigkilled_experiment_resumes_at_the_killed_stage(tmp_path):
    """SIGKILL during a stage: the finished stage keeps its marker and is not recomputed; the killed
    one has none and, being resumable, continues from its files on the next run."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path)], capture_output=True)
    assert result.returncode == -9
    assert is_done(tmp_path, "a") and not is_done(tmp_path, "b") and (tmp_path / "b" / "checkpoint-1").exists()
    calls = []

    def b(ctx):
        calls.append(("b", ctx.partial, sorted(p.name for p in ctx.folder.iterdir())))

    timings = run_stages(tmp_path, [Stage("a", _counting(calls, "a")), Stage("b", b, resumable=True)], QUIET)
    assert calls == [("b", True, ["checkpoint-1"])] and set(timings) == {"b"} and is_done(tmp_path, "b")
