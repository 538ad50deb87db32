"""A small resumable stage runner: each stage writes one folder, marked done only after it succeeded.

A run directory holds one folder per stage plus ``experiment.json`` (what was asked). A stage is
done when its folder holds ``.done`` (written atomically, last); a done stage is skipped when the
command runs again, unless ``force`` (all stages) or ``redo`` (the named ones) ask for it. A stage
folder without ``.done`` is partial: the stage is run again and told so (``StageContext.partial``),
so stages that train can continue from their own checkpoints instead of starting over.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from radsynth.atomic import atomic_write_text
from radsynth.config import merge
from radsynth.errors import InputError
from radsynth.provenance import provenance

DONE = ".done"
RECORD = "experiment.json"


@dataclass(frozen=True)
class StageContext:
    """What a stage function gets: its folder, the run directory, and whether a partial attempt is there."""

    folder: Path
    run_dir: Path
    partial: bool
    console: Console

    def stage(self, name: str) -> Path:
        """Folder of another (earlier) stage."""
        return self.run_dir / name


@dataclass(frozen=True)
class Stage:
    """One step of an experiment. ``run`` writes into ``ctx.folder``; ``resumable``: a partial folder is kept."""

    name: str
    run: Callable[[StageContext], None]
    title: str = ""
    resumable: bool = False


def is_done(run_dir: Path, name: str) -> bool:
    return (Path(run_dir) / name / DONE).exists()


def start_run(run_dir: Path, record: dict, force: bool = False, defaults: dict | None = None) -> None:
    """Write (or check) ``experiment.json``: a run directory is resumed only with the same experiment and settings
    (a setting the recorded ones lack, added to the preset since, reads its preset value ``defaults``)."""
    run_dir = Path(run_dir)
    path = run_dir / RECORD
    if path.exists() and not force:
        previous = json.loads(path.read_text(encoding="utf-8"))
        previous["settings"] = merge(defaults or {}, previous.get("settings") or {})
        for key in ("experiment", "settings"):
            if previous.get(key) != record.get(key):
                raise InputError(path, f"this run directory was started with a different {key}; use another --out or --force")
        return
    if force and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({**record, "provenance": provenance(record.get("seed"), record.get("settings"))}, indent=2, default=str))


def run_stages(run_dir: Path, stages: Sequence[Stage], console: Console | None = None, redo: Sequence[str] = ()) -> dict[str, float]:
    """Run every stage not done yet, in order; returns the seconds each stage run now took (skipped: absent)."""
    console = console or Console()
    run_dir = Path(run_dir)
    names = [s.name for s in stages]
    unknown = sorted(set(redo) - set(names))
    if unknown:
        raise InputError("--redo", f"unknown stage(s) {unknown}; stages: {', '.join(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate stage names in {names}")
    timings: dict[str, float] = {}
    for k, stage in enumerate(stages, 1):
        folder = run_dir / stage.name
        head = f"[{k}/{len(stages)}] {stage.name}" + (f": {stage.title}" if stage.title else "")
        if stage.name in redo and folder.exists():
            shutil.rmtree(folder)
        if (folder / DONE).exists():
            console.print(f"[dim]{head} - done before, skipped[/]")
            continue
        partial = folder.exists() and any(folder.iterdir())
        if partial and not stage.resumable:
            shutil.rmtree(folder)
            partial = False
        console.print(f"[bold]{head}[/]" + (" (continuing a partial run)" if partial else ""))
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        stage.run(StageContext(folder, run_dir, partial, console))
        seconds = time.perf_counter() - start
        atomic_write_text(folder / DONE, json.dumps({"stage": stage.name, "seconds": round(seconds, 2), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
        timings[stage.name] = seconds
        console.print(f"    {stage.name} done in {seconds:.0f} s")
    return timings


def stage_seconds(run_dir: Path, name: str) -> float | None:
    """Seconds the stage took when it was run (from its ``.done``), None when not done."""
    path = Path(run_dir) / name / DONE
    if not path.exists():
        return None
    return float(json.loads(path.read_text(encoding="utf-8"))["seconds"])
