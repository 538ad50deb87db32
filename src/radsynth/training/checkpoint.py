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
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from radsynth.atomic import atomic_write_bytes, atomic_write_text
from radsynth.errors import InputError, NonFiniteLoss

LATEST = "latest.json"


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
    blob = save_safetensors(tensors)
    name = f"step_{step:07d}"
    atomic_write_bytes(folder / f"{name}.safetensors", blob)
    meta = {"step": step, "sha256": hashlib.sha256(blob).hexdigest(), "optimizers": optim_meta, "extra": extra or {}}
    atomic_write_text(folder / f"{name}.json", json.dumps(meta, indent=1))
    atomic_write_text(folder / LATEST, json.dumps({"step": step, "name": name}))
    return folder / f"{name}.safetensors"


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
