"""Progress in log files: paced plain lines when the console is not a terminal (radsynth.progress)."""

import io
import re
import subprocess
import sys

from rich.console import Console

from radsynth.progress import LINE_PATTERN as LINE
from radsynth.progress import Pacer, PlainProgress, progress_bar, without_progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines_at(total: int, seconds_per_step: float, period_s: float = 30.0) -> list[tuple[int, float]]:
    """(step, time) of every line a Pacer allows when each step takes ``seconds_per_step``."""
    clock = FakeClock()
    pacer = Pacer(total, period_s=period_s, clock=clock)
    out = []
    for done in range(1, total + 1):
        clock.now += seconds_per_step
        if pacer.due(done):
            out.append((done, clock.now - 1000.0))
    return out


def test_fast_steps_give_a_line_every_5_percent():
    assert [d for d, _ in _lines_at(200, 0.1)] == list(range(10, 201, 10))


def test_slow_steps_give_a_line_every_period():
    lines = _lines_at(1000, 1.0)  # 5 % = 50 steps = 50 s > 30 s: the period rules
    assert [d for d, _ in lines][:5] == [30, 60, 90, 120, 150]
    assert lines[-1][0] == 1000  # and the last step always has its line
    gaps = [(d2 - d1, t2 - t1) for (d1, t1), (d2, t2) in zip(lines, lines[1:])]
    assert all(steps >= 50 or seconds >= 30.0 for steps, seconds in gaps[:-1])  # never more often than either rule
    assert gaps[-1] == (10, 10.0)  # 990 -> 1000: only the final line comes sooner


def test_steps_longer_than_the_period_give_one_line_each():
    assert [d for d, _ in _lines_at(100, 45.0)] == list(range(1, 101))


def test_a_short_period_is_a_keyword():
    assert [d for d, _ in _lines_at(1000, 1.0, period_s=5.0)][:3] == [5, 10, 15]


def test_plain_line_has_step_total_mean_losses_rate_elapsed_and_eta():
    clock, stream = FakeClock(), io.StringIO()
    progress = PlainProgress("scale0-stage1", 20, period_s=30.0, stream=stream, clock=clock)
    for done in range(1, 3):
        clock.now += 2.0
        progress.update(done, {"d": float(done), "g_adv": 0.5})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # 5 % of 20 = 1 step
    match = LINE.match(lines[1])
    assert match and match["what"] == "scale0-stage1" and (match["done"], match["total"]) == ("2", "20")
    assert "d 2 g_adv 0.5" in match["rest"]  # the mean since the previous line (only step 2 here)
    assert "0.5 it/s" in match["rest"] and "elapsed 0:00:04" in match["rest"] and "ETA 0:00:36" in match["rest"]


def test_loss_means_cover_the_steps_since_the_last_line():
    clock, stream = FakeClock(), io.StringIO()
    progress = PlainProgress("train", 100, stream=stream, clock=clock)
    for done in range(1, 6):
        clock.now += 1.0
        progress.update(done, {"loss": float(done)})
    (line,) = stream.getvalue().splitlines()
    assert "5/100" in line and "loss 3 |" in line  # mean of 1..5


def test_not_a_terminal_writes_lines_a_terminal_draws_a_bar():
    plain, bar = io.StringIO(), io.StringIO()
    with progress_bar("synthesizing", 10, Console(file=io.StringIO(), force_terminal=False), stream=plain) as update:
        for done in range(1, 11):
            update(done)
    assert len(plain.getvalue().splitlines()) == 10 and "10/10 (100%)" in plain.getvalue()
    with progress_bar("synthesizing", 10, Console(file=bar, force_terminal=True), stream=plain) as update:
        update(5, {"loss": 1.0})
    assert len(plain.getvalue().splitlines()) == 10  # nothing more in the log
    assert "synthesizing" in bar.getvalue()


def test_piped_training_prints_progress_lines(phantom_prepared, tmp_path):
    """A child ``radsynth train`` with stderr piped (as in ``> run.log 2>&1``) reports step / total, losses and ETA."""
    tiny = {"size": 32, "ngf": 8, "ndf": 8, "batch_size": 2, "sample_every": 40, "checkpoint_every": 40}
    command = [sys.executable, "-m", "radsynth.cli", "train", "pix2pix", "--data", str(phantom_prepared), "--out", str(tmp_path / "run"),
               "--steps", "40", "--device", "cpu", *[f"--set={k}={v}" for k, v in tiny.items()]]
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout
    lines = [m for m in map(LINE.match, proc.stdout.splitlines()) if m]
    assert [int(m["done"]) for m in lines] == list(range(2, 41, 2))  # 5 % of 40 steps
    assert all(m["what"] == "train" and m["total"] == "40" for m in lines)
    assert all(re.search(r"\| d [-\d.e]+ g_adv [-\d.e]+ .*\| elapsed \d+:\d\d:\d\d \| ETA \d+:\d\d:\d\d$", m["rest"]) for m in lines)
    assert lines[-1]["rest"].endswith("ETA 0:00:00")
    assert without_progress(proc.stdout).splitlines()[-1].startswith("trained pix2pix into")
