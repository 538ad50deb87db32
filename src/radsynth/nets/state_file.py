"""Read a weights file (.safetensors, or .pt/.pth without unpickling arbitrary objects)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from radsynth.errors import InputError

SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pt", ".pth")


def read_state_file(path: str | Path) -> dict[str, Tensor]:
    """A flat ``{name: tensor}`` state dict from ``path``, on the CPU.

    ``.safetensors`` files are read with safetensors; ``.pt`` / ``.pth`` files with
    ``torch.load(weights_only=True)``, which refuses pickled code and arbitrary objects. Raises
    InputError (naming the file) when it is missing, of another type, unreadable, refused, or not a
    mapping from names to tensors.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SAFETENSORS_SUFFIXES + TORCH_SUFFIXES:
        raise InputError(path, f"weights must be a .safetensors, .pt or .pth file, got '{suffix or path.name}'")
    if not path.is_file():
        raise InputError(path, "weights file not found")
    if suffix in SAFETENSORS_SUFFIXES:
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise InputError(path, f"not a readable safetensors file ({err})") from err
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load raises many types (IndexError, KeyError, ...) on random bytes
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(
            path, f"refused or unreadable: only plain tensors are loaded, never pickled objects ({first_line})"
        ) from err
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise InputError(path, "expected a state dict (a mapping from parameter names to tensors)")
    return dict(state)
