"""Segmentation UNet (MONAI ``BasicUNet``) for background / lung / infection.

Used as the downstream segmenter and as the feature network of CoSinGAN's MS-FUL (section 2.2,
eq. 9), whose encoder blocks are ``ENCODER_LAYERS``. ``build_segmenter`` also builds ENet;
``save_segmenter`` / ``load_segmenter`` write and read a trained segmenter as safetensors plus a
JSON sidecar that says how to rebuild it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from monai.networks.nets import BasicUNet
from safetensors.torch import save as save_safetensors

from radsynth.atomic import atomic_write_bytes, atomic_write_text
from radsynth.errors import InputError
from radsynth.nets.enet import ENet
from radsynth.nets.state_file import read_state_file

ENCODER_LAYERS = ("conv_0", "down_1", "down_2", "down_3", "down_4")
DEFAULT_FEATURES = (32, 32, 64, 128, 256, 32)  # MONAI BasicUNet defaults


def unet_segmenter(num_classes: int = 3, in_channels: int = 1, features: tuple[int, ...] = DEFAULT_FEATURES) -> BasicUNet:
    """(N, in_channels, H, W) in [-1, 1] -> (N, num_classes, H, W) logits; H, W divisible by 16."""
    return BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, features=features)


SEGMENTER_KINDS = ("unet", "enet")
SEGMENTER_FORMAT = "radsynth-segmenter/1"


def build_segmenter(kind: str, num_classes: int = 3, in_channels: int = 1, features: tuple[int, ...] = DEFAULT_FEATURES) -> torch.nn.Module:
    """'unet' (MONAI BasicUNet, ``features`` wide) or 'enet' (``radsynth.nets.enet.ENet``); logits out."""
    if kind == "unet":
        return unet_segmenter(num_classes, in_channels, tuple(features))
    if kind == "enet":
        return ENet(num_classes, in_channels)
    raise InputError("model", f"unknown segmenter '{kind}' (choose from {', '.join(SEGMENTER_KINDS)})")


def save_segmenter(path: Path, model: torch.nn.Module, info: dict[str, Any]) -> str:
    """Write the weights to ``path`` (.safetensors, a plain state dict) and ``info`` to its .json sidecar.

    ``info`` must hold model, num_classes, in_channels, features (what ``build_segmenter`` needs).
    Both files are written atomically, the sidecar last; returns the weights' SHA-256.
    """
    path = Path(path)
    blob = save_safetensors({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    digest = hashlib.sha256(blob).hexdigest()
    atomic_write_bytes(path, blob)
    atomic_write_text(path.with_suffix(".json"), json.dumps({"format": SEGMENTER_FORMAT, **info, "sha256": digest}, indent=1))
    return digest


def read_segmenter_info(path: Path) -> dict[str, Any] | None:
    """The sidecar JSON written by ``save_segmenter`` beside ``path``, or None when there is none."""
    sidecar = Path(path).with_suffix(".json")
    if not sidecar.exists():
        return None
    try:
        info = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(sidecar, f"cannot read ({exc})") from None
    return info if isinstance(info, dict) and info.get("format") == SEGMENTER_FORMAT else None


def load_segmenter(path: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A segmenter saved by ``save_segmenter``, on the CPU in eval mode, and its info."""
    info = read_segmenter_info(path)
    if info is None:
        raise InputError(path, f"has no {SEGMENTER_FORMAT} sidecar {Path(path).with_suffix('.json').name}; not a radsynth segmenter")
    if hashlib.sha256(Path(path).read_bytes()).hexdigest() != info.get("sha256"):
        raise InputError(path, "weights do not match the hash in their sidecar JSON (truncated or replaced?)")
    model = build_segmenter(info["model"], int(info["num_classes"]), int(info["in_channels"]), tuple(info.get("features", DEFAULT_FEATURES)))
    _load_strict(model, path)
    return model.eval(), info


def unet_from_weights(path: Path, features: tuple[int, ...], num_classes: int = 3) -> torch.nn.Module:
    """A 1-channel UNet segmenter from a weights file (CoSinGAN's MS-FUL feature network).

    When ``path`` has a ``save_segmenter`` sidecar (``radsynth evaluate segment`` writes one), its
    width and class count are used, so any UNet that command trained fits; otherwise ``features``
    and ``num_classes`` must match the file. An ENet checkpoint is refused.
    """
    info = read_segmenter_info(path)
    in_channels = 1
    if info is not None:
        if info.get("model") != "unet":
            raise InputError(path, f"is a '{info.get('model')}' segmenter; the UNet feature loss needs a UNet")
        features, num_classes, in_channels = tuple(info["features"]), int(info["num_classes"]), int(info["in_channels"])
        if in_channels != 1:
            raise InputError(path, f"has {in_channels} input channels; the UNet feature loss needs 1")
    model = unet_segmenter(num_classes, in_channels, features)
    _load_strict(model, path)
    return model


def _load_strict(model: torch.nn.Module, path: Path) -> None:
    try:
        model.load_state_dict(read_state_file(path))
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit this segmenter ({str(exc).splitlines()[0]})") from None
