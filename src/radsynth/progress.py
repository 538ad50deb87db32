"""Progress of long work: rich bars on a terminal, plain paced lines in a log file.

``progress_bar(description, total)`` yields ``update(n_done, losses=None)``. On a terminal it draws
a transient rich bar (losses and it/s beside it). When the console is not a terminal
(``radsynth train ... > run.log 2>&1``) it writes a plain line to stderr, flushed, whenever
``Pacer`` says one is due: after 5 % of the total or ``period_s`` seconds (30 by default) since
the previous line, whichever comes first, and at the last step; never more often. A line says
what runs, step / total, the mean of each loss since the previous line (when the caller has
losses), the rate, the elapsed time and the ETA, e.g.::

    radsynth 14:02:11 scale1-stage2: 120/2000 (6%) | d 0.412 g_adv 1.87 | 3.1 it/s | elapsed 0:00:38 | ETA 0:10:03

Lines are written only when progress is reported (after a step), so one step longer than
``period_s`` gives one line per step. Only the main process (``distributed.is_main``) reports.
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from radsynth import distributed

PERIOD_S = 30.0  # a plain line at least this often (while progress is reported)
FRACTION = 0.05  # ... and after this share of the total
SHOWN_LOSSES = 4  # losses beside the terminal bar
LINE_PATTERN = re.compile(r"^radsynth \d\d:\d\d:\d\d (?P<what>[^:]+): (?P<done>\d+)/(?P<total>\d+) \(\d+%\)(?P<rest>.*)$")  # a plain line


class Update(Protocol):
    def __call__(self, done: int, losses: Mapping[str, float] | None = None) -> None: ...


class Pacer:
    """When a plain line is due: ``due(done)`` is True after ``ceil(fraction * total)`` steps or
    ``period_s`` seconds since the last line (or the start), and once at ``done == total``."""

    def __init__(self, total: int, start: int = 0, period_s: float = PERIOD_S, fraction: float = FRACTION,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.stride = max(1, math.ceil(fraction * total))
        self.period_s = period_s
        self.clock = clock
        self.last_done = start
        self.last_time = clock()

    def due(self, done: int) -> bool:
        """Whether a line is due now; when it is, the line is counted as written."""
        now = self.clock()
        due = (done >= self.total and done > self.last_done) or done - self.last_done >= self.stride \
            or now - self.last_time >= self.period_s
        if due:
            self.last_done, self.last_time = done, now
        return due


def _clock_text(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_line(description: str, done: int, total: int, elapsed_s: float, rate: float | None,
                  losses: Mapping[str, float] | None = None) -> str:
    """One plain progress line (module docstring); ``rate`` in steps per second (None: unknown yet)."""
    parts = [f"radsynth {time.strftime('%H:%M:%S')} {description}: {done}/{total} ({100 * done // max(total, 1)}%)"]
    if losses:
        parts.append(" ".join(f"{k} {v:.4g}" for k, v in losses.items()))
    eta = "?" if not rate else _clock_text((total - done) / rate)
    parts.append(f"{rate:.3g} it/s" if rate else "? it/s")
    parts.append(f"elapsed {_clock_text(elapsed_s)}")
    parts.append(f"ETA {eta}")
    return " | ".join(parts)


class PlainProgress:
    """Writes ``progress_line``s to ``stream`` (stderr) as ``Pacer`` allows; losses are averaged between lines."""

    def __init__(self, description: str, total: int, start: int = 0, period_s: float = PERIOD_S,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.description, self.total, self.start = description, total, start
        self.stream = stream
        self.clock = clock
        self.started = clock()
        self.pacer = Pacer(total, start, period_s, clock=clock)
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def update(self, done: int, losses: Mapping[str, float] | None = None) -> None:
        for key, value in (losses or {}).items():
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1
        if not self.pacer.due(done):
            return
        elapsed = self.clock() - self.started
        rate = (done - self.start) / elapsed if done > self.start and elapsed > 0 else None
        means = {k: self.sums[k] / self.counts[k] for k in self.sums}
        self.sums, self.counts = {}, {}
        stream = self.stream or sys.stderr  # looked up now: tests and redirections replace sys.stderr
        print(progress_line(self.description, done, self.total, elapsed, rate, means), file=stream, flush=True)


def without_progress(text: str) -> str:
    """``text`` (a captured stderr) without its plain progress lines."""
    return "\n".join(line for line in text.splitlines() if not LINE_PATTERN.match(line))


@contextlib.contextmanager
def progress_bar(description: str, total: int, console: Console | None = None, *, start: int = 0,
                 period_s: float = PERIOD_S, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> Iterator[Update]:
    """Yield ``update(n_done, losses=None)``: a rich bar on a terminal, plain lines (``PlainProgress``,
    to ``stream`` or stderr) otherwise, nothing on ranks other than the main one. ``start``: steps
    already done (a resumed run)."""
    console = console or Console(stderr=True)
    if not distributed.is_main():
        yield lambda done, losses=None: None
        return
    if not console.is_terminal:
        yield PlainProgress(description, total, start, period_s, stream, clock).update
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total, completed=start, info="")
        last = [start, clock()]

        def update(done: int, losses: Mapping[str, float] | None = None) -> None:
            now = clock()
            info = ""
            if losses:
                rate = (done - last[0]) / max(now - last[1], 1e-9)
                info = " ".join(f"{k} {v:.3f}" for k, v in list(losses.items())[:SHOWN_LOSSES]) + f" {rate:.1f} it/s"
            last[:] = [done, now]
            bar.update(task, completed=done, info=info)

        yield update


@contextlib.contextmanager
def reporting(progress: Callable[[int], None] | None, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """The caller's ``progress`` callback when given, else a ``progress_bar`` of its own: library
    functions called without one (by experiments, the demo) still report their progress."""
    if progress is not None:
        yield progress
        return
    with progress_bar(description, total) as update:
        yield update
