"""Stage helpers shared by the experiments: prepare the data, fit a synthesizer, read results back."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Union

from radsynth.atomic import atomic_write_text
from radsynth.config import build_config, merge
from radsynth.data.detect import open_source
from radsynth.data.prepare import PrepareOptions, prepare
from radsynth.experiments.stages import StageContext
from radsynth.synth.registry import method_entry

DATA_RECORD = "data.json"
# split fractions, or a function of the number of patients giving them (None: radsynth's default 70 / 10 / 20)
Fractions = Union[Mapping[str, float], Callable[[int], Mapping[str, float]], None]


def prepare_stage(data: Path, size: int, seed: int, keep: str = "all", fractions: Fractions = None):
    """Stage ``prepare``: use a prepared set as it is, or prepare a source at ``size`` px (slices ``keep``, patient split
    ``fractions``) into the stage folder."""

    def run(ctx: StageContext) -> None:
        source = Path(data).resolve()
        if (source / "dataset.json").exists():
            prepared = source
        else:
            prepared = ctx.folder / "set"
            opened = open_source(source)
            split = fractions(len(set(opened.patients))) if callable(fractions) else fractions
            prepare(opened, prepared, PrepareOptions(size=size, seed=seed, keep=keep, fractions=dict(split) if split else None), force=True)
        atomic_write_text(ctx.folder / DATA_RECORD, json.dumps({"source": str(source), "prepared": str(prepared), "size": size}))

    return run


def prepared_set(run_dir: Path, stage: str = "prepare") -> Path:
    """The prepared set a ``prepare`` stage (default the experiment's main one) chose."""
    return Path(json.loads((Path(run_dir) / stage / DATA_RECORD).read_text(encoding="utf-8"))["prepared"])


def fit_stage(method: str, preset: str | None, overrides: dict[str, Any], data_of=prepared_set, device: str = "auto"):
    """Stage that trains ``method`` (registry name) into the stage folder; a partial folder resumes from its checkpoint.

    ``overrides`` may hold callables of the run directory (values known only after earlier stages, e.g. slice ids).
    """

    def run(ctx: StageContext) -> None:
        entry = method_entry(method)
        values = {k: v(ctx.run_dir) if callable(v) else v for k, v in overrides.items()}
        config = build_config(entry.config, entry.presets, preset, merge(values, entry.fixed))
        entry.synthesizer.fit(data_of(ctx.run_dir), config, ctx.folder, resume=ctx.partial and (ctx.folder / "run.json").exists(),
                              force=True, device=device)

    return run


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def done_results(run_dir: Path, names: list[str], reader) -> list[dict]:
    """results.json of the named stage folders that have one, in order."""
    return [reader(Path(run_dir) / n) for n in names if (Path(run_dir) / n / "results.json").exists()]


def departure_line(items: list[str], record: dict, quick: str = "") -> str:
    """One line of a table's departures from the paper: the protocol's ``items``, then (for a preset other than
    ``paper``) what that preset scales down, ``quick``."""
    preset = record.get("preset", "paper")
    scaled = [f"preset {preset}: {quick}" if quick else f"preset {preset}: smaller images and shorter training (experiment.json)"] if preset != "paper" else []
    return "; ".join(items + scaled) + "."
