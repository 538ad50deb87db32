"""Which synthesizers exist: method name -> class, config type, presets and fixed settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radsynth.errors import InputError
from radsynth.synth.base import Synthesizer, read_run
from radsynth.synth.cosingan import PRESETS as COSINGAN_PRESETS
from radsynth.synth.cosingan import CoSinGAN, CoSinGANConfig
from radsynth.synth.pix2pix import PRESETS as PIX2PIX_PRESETS
from radsynth.synth.pix2pix import Pix2Pix, Pix2PixConfig


@dataclass(frozen=True)
class MethodEntry:
    synthesizer: type[Synthesizer]
    config: type
    presets: dict[str, dict[str, Any]]
    fixed: dict[str, Any] = field(default_factory=dict)  # settings the method name implies


METHODS: dict[str, MethodEntry] = {
    "pix2pix": MethodEntry(Pix2Pix, Pix2PixConfig, PIX2PIX_PRESETS, {"variant": "pix2pix"}),
    "enhanced-pix2pix": MethodEntry(Pix2Pix, Pix2PixConfig, PIX2PIX_PRESETS, {"variant": "enhanced"}),
    "cosingan": MethodEntry(CoSinGAN, CoSinGANConfig, COSINGAN_PRESETS),
}
# run.json records the variant as its method; map it back to the entry that loads it
RUN_METHODS = {"pix2pix": "pix2pix", "enhanced": "enhanced-pix2pix", "cosingan": "cosingan"}


def method_entry(name: str) -> MethodEntry:
    if name not in METHODS:
        raise InputError("method", f"unknown or not built yet: '{name}' (available: {', '.join(METHODS)})")
    return METHODS[name]


def load_synthesizer(run_dir: Path, device: str = "auto") -> Synthesizer:
    """Rebuild the trained synthesizer of a run directory."""
    method = read_run(run_dir)["method"]
    if method not in RUN_METHODS:
        raise InputError(run_dir, f"run of unknown method '{method}'")
    return METHODS[RUN_METHODS[method]].synthesizer.load(run_dir, device)
