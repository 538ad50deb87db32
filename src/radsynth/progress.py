"""Progress bars for long work (rich), quiet when output is not a terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from radsynth import distributed


@contextlib.contextmanager
def progress_bar(description: str, total: int, console: Console | None = None) -> Iterator[Callable[[int], None]]:
    """Yield ``update(n_done)``; draws a bar on a terminal, nothing otherwise."""
    console = console or Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=not (console.is_terminal and distributed.is_main())) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)
