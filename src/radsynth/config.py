"""Typed configs: dataclasses with the papers' defaults, presets, overrides, strict validation.

A method's config is a frozen dataclass whose defaults are the paper's values (each with a
comment naming the section). ``build_config`` starts from those defaults, applies a named preset
(a dict of changes, e.g. ``quick`` for CPU) and then the user's overrides (``--set key=value`` or
a YAML file). Unknown keys and values of the wrong type are refused with an ``InputError`` that
names the key; range checks live in each dataclass's ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from radsynth.errors import InputError

T = TypeVar("T")
SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def check_range(values: Mapping[str, Any], names: tuple[str, ...], low: float | None = None, high: float | None = None) -> None:
    """Raise ValueError naming the first of ``names`` whose value in ``values`` lies outside [low, high].

    Config dataclasses call it as ``check_range(vars(self), ("steps", "batch_size"), low=1)``.
    """
    for name in names:
        value = values[name]
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"in [{low}, {high}]" if low is not None and high is not None else f">= {low}" if low is not None else f"<= {high}"
            raise ValueError(f"{name} must be {bounds}, got {value}")


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a simple annotation (bool/int/float/str/tuple/Optional/nested dataclass)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(value, option, where)
            except InputError as exc:
                errors.append(exc.problem)
        raise InputError(where, " or ".join(errors))
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise InputError(where, f"expected a mapping, got {value!r}")
        return config_from_dict(annotation, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(where, f"expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise InputError(where, f"expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise InputError(where, f"expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InputError(where, f"expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise InputError(where, f"must be a finite number, got {value!r}")
            return float(value)
        raise InputError(where, f"expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise InputError(where, f"expected a string, got {value!r}")
    return value


def config_from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types raise ``InputError``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputError(where, f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    values = {name: _coerce(value, hints[name], f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**values)
    except ValueError as exc:
        raise InputError(where, str(exc)) from None


def config_to_dict(config: Any) -> dict[str, Any]:
    """Dataclass -> plain dict (tuples become lists), ready for YAML / JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict update (nested mappings are merged, everything else replaced)."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_set(items: list[str]) -> dict[str, Any]:
    """``['train.steps=100', 'size=64']`` -> nested dict; values parsed as YAML scalars / lists."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise InputError("--set", f"'{item}' is not key=value")
        key, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise InputError("--set", f"cannot parse the value of '{item}'") from None
        if isinstance(value, str) and SCIENTIFIC.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path`` (safe loader only)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(path, f"cannot read YAML ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, "must hold a mapping of config keys")
    return data


def build_config(cls: type[T], presets: Mapping[str, Mapping[str, Any]], preset: str | None, overrides: Mapping[str, Any]) -> T:
    """Defaults of ``cls`` <- ``presets[preset]`` <- ``overrides``."""
    if preset is not None and preset not in presets:
        raise InputError("--preset", f"unknown preset '{preset}' (choose from {', '.join(presets)})")
    changes = merge(presets[preset] if preset else {}, overrides)
    base = config_to_dict(cls())
    return config_from_dict(cls, merge(base, changes))
