"""``radsynth experiment NAME``: which experiments exist, their presets, running them, rebuilding a report."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from rich.console import Console

from radsynth.config import merge
from radsynth.errors import InputError
from radsynth.experiments import cosingan, ct_cgan, cxr_cyclegan, cxr_pix2pix, lesions
from radsynth.experiments.stages import RECORD, Stage, run_stages, start_run


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    presets: dict[str, dict[str, Any]]
    stages: Callable[..., list[Stage]]  # (data, settings, seed, device) -> stages
    report: Callable[[Path], Path]  # run_dir -> report/index.html


EXPERIMENTS: dict[str, Experiment] = {
    "cosingan": Experiment("cosingan", cosingan.TITLE, cosingan.PRESETS, cosingan.stages, cosingan.build_report),
    "ct-cgan": Experiment("ct-cgan", ct_cgan.TITLE, ct_cgan.PRESETS, ct_cgan.stages, ct_cgan.build_report),
    "cxr-cyclegan": Experiment("cxr-cyclegan", cxr_cyclegan.TITLE, cxr_cyclegan.PRESETS, cxr_cyclegan.stages, cxr_cyclegan.build_report),
    "cxr-pix2pix": Experiment("cxr-pix2pix", cxr_pix2pix.TITLE, cxr_pix2pix.PRESETS, cxr_pix2pix.stages, cxr_pix2pix.build_report),
    "lesions": Experiment("lesions", lesions.TITLE, lesions.PRESETS, lesions.stages, lesions.build_report),  # radsynth's own, no paper preset
}


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise InputError("experiment", f"unknown experiment '{name}' (available: {', '.join(EXPERIMENTS)})")
    return EXPERIMENTS[name]


def run_experiment(
    name: str,
    data: Path,
    out: Path,
    preset: str = "quick",
    overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    force: bool = False,
    redo: Sequence[str] = (),
    only: Sequence[str] = (),
    console: Console | None = None,
) -> Path:
    """Run every stage of experiment ``name`` not done yet into ``out``, then write ``out/report/index.html``; returns the page.

    ``only``: shell patterns of stage names; when given, just the matching stages run (their inputs must be done).
    """
    console = console or Console()
    spec = experiment(name)
    if preset not in spec.presets:
        raise InputError("--preset", f"unknown preset '{preset}' for {name} (choose from {', '.join(spec.presets)})")
    if not Path(data).exists():
        raise InputError(data, "does not exist")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(spec.presets[preset]))
    if unknown:
        option = "--classify-data" if unknown == ["classify_data"] else "--set"
        raise InputError(option, f"{name} has no setting {', '.join(unknown)} (it has {', '.join(sorted(spec.presets[preset]))})")
    extra = overrides.get("classify_data")
    if extra is not None and not Path(extra).exists():
        raise InputError(extra, "does not exist")
    check_kinds(spec.presets[preset], overrides)
    settings = merge(spec.presets[preset], overrides)
    check_segment_settings(settings)
    record = {"experiment": name, "data": str(Path(data).resolve()), "preset": preset, "seed": seed, "settings": settings}
    start_run(out, record, force, defaults=spec.presets[preset])
    console.print(f"[bold]{spec.title}[/] -> {out}")
    stages = spec.stages(Path(data), settings, seed, device)
    if only:
        stages = [s for s in stages if any(fnmatch(s.name, pattern) for pattern in only)]
        if not stages:
            raise InputError("--only", f"no stage matches {list(only)}")
    run_stages(out, stages, console, redo)
    page = spec.report(Path(out))
    console.print(f"[bold green]report[/]: {page}")
    return page


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "number"
    return "text" if isinstance(value, str) else type(value).__name__


def check_kinds(preset: Mapping[str, Any], overrides: Mapping[str, Any], where: str = "") -> None:
    """Refuse an override whose kind (mapping, list, number, text, true/false) differs from the preset's value
    (None, and a preset value of None, take anything), so ``--set seeds=0`` fails before any stage runs, not inside one."""
    for key, value in overrides.items():
        if value is None or key not in preset or preset[key] is None:  # None: the setting off or unlimited
            continue
        name = f"{where}{key}"
        if _kind(value) != _kind(preset[key]):
            raise InputError("--set", f"{name} must be a {_kind(preset[key])} like the preset's {preset[key]!r}, got {value!r}")
        if isinstance(value, Mapping):
            check_kinds(preset[key], value, f"{name}.")


def check_segment_settings(settings: Mapping[str, Any]) -> None:
    """Refuse, before any stage runs, ``segment`` overrides that the segmenter's config does not accept.

    ``epoch_order`` is the experiment's to set per row (the lesions experiment draws real + edited grouped,
    every other row from its own pool), so it cannot be set for all rows at once."""
    if "segment" not in settings or "segment_preset" not in settings:
        return
    if "epoch_order" in settings["segment"]:
        raise InputError("--set", "segment.epoch_order is chosen per row by the experiment (real + edited: grouped; "
                         "every other training set: its own pool) and cannot be set for all rows")
    from radsynth.config import build_config
    from radsynth.evaluate.config import PRESETS as SEGMENT_PRESETS
    from radsynth.evaluate.config import SegmentConfig

    try:
        build_config(SegmentConfig, SEGMENT_PRESETS, settings["segment_preset"], dict(settings["segment"]))
    except InputError as error:
        raise InputError("--set", f"segment ({error.where}): {error.problem}") from None


def rebuild_report(run_dir: Path) -> Path:
    """``radsynth report RUN_DIR``: write the HTML report again from a run (or demo) folder."""
    import json

    path = Path(run_dir) / RECORD
    if not path.exists():
        raise InputError(run_dir, f"has no {RECORD}; give a folder written by `radsynth experiment` or `radsynth demo`")
    name = json.loads(path.read_text(encoding="utf-8"))["experiment"]
    if name == "demo":
        from radsynth.demo import build_demo_report

        return build_demo_report(Path(run_dir))
    return experiment(name).report(Path(run_dir))
