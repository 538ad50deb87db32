"""Which synthesizers exist: method name -> class, config type, presets and fixed settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radsynth.errors import InputError
from radsynth.synth.base import Synthesizer, read_run
from radsynth.synth.cosingan import PRESETS as COSINGAN_PRESETS
from radsynth.synth.cosingan import CoSinGAN, CoSinGANConfig
from radsynth.synth.cyclegan import PRESETS as CYCLEGAN_PRESETS
from radsynth.synth.cyclegan import CycleGAN, CycleGANConfig
from radsynth.synth.globallocal import PRESETS as GLOBALLOCAL_PRESETS
from radsynth.synth.globallocal import GlobalLocal, GlobalLocalConfig
from radsynth.synth.pix2pix import PRESETS as PIX2PIX_PRESETS
from radsynth.synth.pix2pix import Pix2Pix, Pix2PixConfig
from radsynth.synth.pix2pix_cxr import PRESETS as PIX2PIX_CXR_PRESETS
from radsynth.synth.pix2pix_cxr import Pix2PixCXR, Pix2PixCXRConfig
from radsynth.synth.translator import Translator


@dataclass(frozen=True)
class MethodEntry:
    synthesizer: type[Synthesizer] | type[Translator]  # Translator: X-ray class translation (synth --images)
    config: type
    presets: dict[str, dict[str, Any]]
    fixed: dict[str, Any] = field(default_factory=dict)  # settings the method name implies


METHODS: dict[str, MethodEntry] = {
    "pix2pix": MethodEntry(Pix2Pix, Pix2PixConfig, PIX2PIX_PRESETS, {"variant": "pix2pix"}),
    "enhanced-pix2pix": MethodEntry(Pix2Pix, Pix2PixConfig, PIX2PIX_PRESETS, {"variant": "enhanced"}),
    "cosingan": MethodEntry(CoSinGAN, CoSinGANConfig, COSINGAN_PRESETS),
    "globallocal": MethodEntry(GlobalLocal, GlobalLocalConfig, GLOBALLOCAL_PRESETS, {"variant": "globallocal"}),
    "pix2pixhd": MethodEntry(GlobalLocal, GlobalLocalConfig, GLOBALLOCAL_PRESETS, {"variant": "pix2pixhd"}),
    "spade": MethodEntry(GlobalLocal, GlobalLocalConfig, GLOBALLOCAL_PRESETS, {"variant": "spade"}),
    "cyclegan": MethodEntry(CycleGAN, CycleGANConfig, CYCLEGAN_PRESETS),
    "pix2pix-cxr": MethodEntry(Pix2PixCXR, Pix2PixCXRConfig, PIX2PIX_CXR_PRESETS),
}
# run.json records the variant as its method; map it back to the entry that loads it
RUN_METHODS = {
    "pix2pix": "pix2pix", "enhanced": "enhanced-pix2pix", "cosingan": "cosingan",
    "globallocal": "globallocal", "pix2pixhd": "pix2pixhd", "spade": "spade",
    "cyclegan": "cyclegan", "pix2pix-cxr": "pix2pix-cxr",
}


def method_entry(name: str) -> MethodEntry:
    if name not in METHODS:
        raise InputError("method", f"unknown or not built yet: '{name}' (available: {', '.join(METHODS)})")
    return METHODS[name]


def load_synthesizer(run_dir: Path, device: str = "auto") -> Synthesizer | Translator:
    """Rebuild the trained synthesizer (or X-ray translator) of a run directory."""
    method = read_run(run_dir)["method"]
    if method not in RUN_METHODS:
        raise InputError(run_dir, f"run of unknown method '{method}'")
    return METHODS[RUN_METHODS[method]].synthesizer.load(run_dir, device)
