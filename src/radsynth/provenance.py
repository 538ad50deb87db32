"""What made an output: versions, seed, command line and time, recorded beside every result."""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from typing import Any

import numpy as np
import torch

import radsynth


def versions() -> dict[str, str]:
    """Versions of radsynth and the libraries that decide its numbers."""
    return {
        "radsynth": radsynth.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def provenance(seed: int | None = None, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-ready record: versions, seed, config, the command line and the UTC time."""
    return {
        "versions": versions(),
        "seed": seed,
        "config": config or {},
        "command": " ".join(sys.argv),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
