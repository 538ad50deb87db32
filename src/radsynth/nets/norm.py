"""Normalisation-layer factory shared by the generators and discriminators."""

from __future__ import annotations

from typing import Literal

from torch import nn

NormKind = Literal["batch", "instance", "none"]
NORM_KINDS: tuple[str, ...] = ("batch", "instance", "none")


def check_norm(norm: str) -> str:
    """Return ``norm`` if it is one of ``NORM_KINDS``, else raise ValueError saying what to pass."""
    if norm not in NORM_KINDS:
        raise ValueError(f"norm must be one of {NORM_KINDS}, got {norm!r}")
    return norm


def make_norm(norm: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer for ``channels`` feature maps.

    'batch': BatchNorm2d (affine, running statistics); 'instance': InstanceNorm2d without affine
    parameters or running statistics (the pix2pix/CycleGAN choice); 'none': Identity.
    """
    check_norm(norm)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by this norm needs its own bias (pix2pix: not before BatchNorm)."""
    return check_norm(norm) != "batch"
