"""Checkpoints that never execute code when loaded: safetensors for tensors, JSON for the rest.

A checkpoint ``step_000100`` is two files in ``<run>/checkpoints/``:

* ``step_000100.safetensors``: every module's state_dict (``module.<name>.<key>``) and every
  tensor of every optimizer's state (``optim.<name>.<param index>.<key>``);
* ``step_000100.json``: the step, optimizer param groups and non-tensor state, extra training
  state (e.g. which stage is running), and the SHA-256 of the tensor file.

Both are written atomically, the JSON second, and ``latest.json`` (which names the newest
complete checkpoint) last, so a kill at any moment leaves the previous checkpoint loadable.
A tensor file whose hash does not match its JSON is refused, and weights or optimizer state that
hold NaN / inf are never saved (``NonFiniteLoss``), so the newest checkpoint is always a good one.

What stays on disk (``Retention``; the ``Trainer`` applies it): while a phase runs, the newest
``keep_last`` (default 1) ``step_*`` checkpoints, older ones deleted only after ``latest.json``
names the new one; a finished phase keeps one slim ``final_<step>`` checkpoint holding only the
modules later phases and synthesis read (no optimizer state; its JSON lists them under ``kept``).
``Retention(keep_all=True)`` (``radsynth train --keep-checkpoints``) keeps every checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from radsynth.atomic import atomic_write_bytes, atomic_write_text
from radsynth.errors import InputError, NonFiniteLoss

LATEST = "latest.json"
FINAL = "final"  # name prefix of a finished phase's slim checkpoint (``step`` while it runs)
_CHECKPOINT_FILE = re.compile(r"^(step|final)_(\d+)\.(safetensors|json)$")
_CHECKPOINT_TEMPORARY = re.compile(r"^\.((step|final)_\d+\.(safetensors|json)|latest\.json)\.tmp-")


@dataclass(frozen=True)
class Retention:
    """Which checkpoints a run keeps on disk: a storage choice, not part of a model's config.

    ``keep_all``: every checkpoint of every phase, optimizer state included (as before retention).
    Otherwise a running phase keeps its newest ``keep_last`` checkpoints and a finished phase one
    slim final checkpoint (the method's ``kept_modules``, no optimizer state).
    """

    keep_all: bool = False
    keep_last: int = 1

    def __post_init__(self) -> None:
        if self.keep_last < 1:
            raise InputError("--keep-last", f"must be >= 1, got {self.keep_last}")


@dataclass
class Checkpoint:
    """What a checkpoint holds once read."""

    step: int
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


def _flatten(modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer]) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value.detach().cpu().contiguous().clone()
    optim_meta = {}
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        plain_state: dict[str, dict[str, Any]] = {}
        for index, entries in state["state"].items():
            for key, value in entries.items():
                if torch.is_tensor(value):
                    tensors[f"optim.{name}.{index}.{key}"] = value.detach().cpu().contiguous().clone()
                else:
                    plain_state.setdefault(str(index), {})[key] = value
        optim_meta[name] = {"param_groups": state["param_groups"], "plain_state": plain_state}
    return tensors, optim_meta


def save_checkpoint(
    run_dir: Path,
    step: int,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint ``step`` under ``run_dir/checkpoints`` and point ``latest.json`` at it."""
    folder = Path(run_dir) / "checkpoints"
    tensors, optim_meta = _flatten(modules, optimizers)
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:  # finite losses can still end in an update that overflows; never save such weights over good ones
        raise NonFiniteLoss(
            f"step {step}: weights or optimizer state became non-finite ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); "
            f"stopped without saving them. The last good checkpoint is kept in {folder}; lower the learning rate or check the data."
        )
    return _write(folder, f"step_{step:07d}", step, tensors, {"optimizers": optim_meta, "extra": extra or {}})


def save_final(run_dir: Path, step: int, modules: dict[str, torch.nn.Module], extra: dict[str, Any] | None = None) -> Path:
    """Write the slim checkpoint ``final_<step>`` of a finished phase (``modules``' weights only,
    their names under ``kept`` in its JSON) and point ``latest.json`` at it; nothing is deleted here."""
    folder = Path(run_dir) / "checkpoints"
    tensors, _ = _flatten(modules, {})
    meta = {"optimizers": {}, "kept": sorted(modules), "extra": extra or {}}
    return _write(folder, f"{FINAL}_{step:07d}", step, tensors, meta)


def _write(folder: Path, name: str, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Tensor file, then its JSON, then ``latest.json``: each atomic, so a kill leaves the previous latest loadable."""
    blob = save_safetensors(tensors)
    atomic_write_bytes(folder / f"{name}.safetensors", blob)
    meta = {"step": step, "sha256": hashlib.sha256(blob).hexdigest(), **meta}
    atomic_write_text(folder / f"{name}.json", json.dumps(meta, indent=1))
    atomic_write_text(folder / LATEST, json.dumps({"step": step, "name": name}))
    return folder / f"{name}.safetensors"


def is_final(checkpoint: Checkpoint) -> bool:
    """Whether ``checkpoint`` is a finished phase's slim one (module weights of ``kept`` only, no optimizer state)."""
    return "kept" in checkpoint.meta


def prune_checkpoints(run_dir: Path, keep_last: int = 1) -> list[Path]:
    """Delete the checkpoints of ``run_dir`` that retention no longer needs; returns the deleted files.

    Kept: the one ``latest.json`` names and, when that is a ``step_*`` one, the ``keep_last - 1``
    newest ``step_*`` before it. Deleted: every other ``step_*`` / ``final_*`` file (older ones, a
    full checkpoint a slim final one replaced, files newer than latest that a kill left unreferenced)
    and leftover temporary files of killed writes. Call it only after ``latest.json`` names the new
    checkpoint, from the one process that writes this run; without a latest checkpoint it deletes nothing.
    """
    folder = Path(run_dir) / "checkpoints"
    latest = latest_checkpoint(run_dir)
    if latest is None:
        return []
    newest = latest.stem
    found: dict[str, tuple[str, int]] = {}
    for path in folder.iterdir():
        match = _CHECKPOINT_FILE.match(path.name)
        if match:
            found[path.stem] = (match.group(1), int(match.group(2)))
    keep = {newest}
    if newest.startswith("step_") and keep_last > 1:
        newest_step = found.get(newest, ("step", -1))[1]
        older = sorted((step, stem) for stem, (kind, step) in found.items() if kind == "step" and step < newest_step)
        keep.update(stem for _, stem in older[-(keep_last - 1):])
    removed = []
    for path in sorted(folder.iterdir()):
        match = _CHECKPOINT_FILE.match(path.name)
        if (match and path.stem not in keep) or _CHECKPOINT_TEMPORARY.match(path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def read_checkpoint(path: Path) -> Checkpoint:
    """Read ``<name>.safetensors`` + ``<name>.json``; corrupt, mismatched or pickled files raise InputError."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    try:
        blob = path.read_bytes()
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read checkpoint ({type(exc).__name__}: {exc})") from None
    if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
        raise InputError(path, "tensor file does not match the hash recorded in its JSON (truncated or replaced?)")
    try:
        tensors = load_safetensors(blob)
    except Exception as exc:  # safetensors never unpickles; anything else is simply not a checkpoint
        raise InputError(path, f"not a safetensors file ({type(exc).__name__}: {exc})") from None
    return Checkpoint(int(meta["step"]), tensors, meta)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None when it has none."""
    pointer = Path(run_dir) / "checkpoints" / LATEST
    if not pointer.exists():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["name"]
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise InputError(pointer, f"cannot read ({exc})") from None
    return pointer.parent / f"{name}.safetensors"


def restore(checkpoint: Checkpoint, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer]) -> None:
    """Load module weights and optimizer state from ``checkpoint`` (strict: every key must match)."""
    for name, module in modules.items():
        prefix = f"module.{name}."
        state = {k[len(prefix):]: v for k, v in checkpoint.tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise InputError(name, f"checkpoint does not fit this model: {str(exc).splitlines()[0]}") from None
    for name, optimizer in optimizers.items():
        meta = checkpoint.meta["optimizers"].get(name)
        if meta is None:
            raise InputError(name, "checkpoint holds no state for this optimizer")
        state: dict[int, dict[str, Any]] = {}
        prefix = f"optim.{name}."
        for key, value in checkpoint.tensors.items():
            if key.startswith(prefix):
                index, entry = key[len(prefix):].split(".", 1)
                state.setdefault(int(index), {})[entry] = value
        for index, entries in meta["plain_state"].items():
            state.setdefault(int(index), {}).update(entries)
        groups = [
            {k: tuple(v) if isinstance(now.get(k), tuple) else v for k, v in saved.items()}  # JSON made tuples lists
            for saved, now in zip(meta["param_groups"], optimizer.param_groups)
        ]
        optimizer.load_state_dict({"state": state, "param_groups": groups})


def load_module_weights(path: Path, modules: dict[str, torch.nn.Module]) -> Checkpoint:
    """Read a checkpoint and load only module weights (for synthesis)."""
    checkpoint = read_checkpoint(path)
    restore(checkpoint, modules, {})
    return checkpoint


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (recorded in synthetic-set manifests)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
