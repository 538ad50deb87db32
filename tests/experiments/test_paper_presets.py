"""Every experiment's ``paper`` preset loads, and every network it trains takes one training step at the
paper's size and width on a tiny batch (batch 1): a paper run fails here, in seconds, not hours into a GPU job.

The configs are built the way the experiments' stages build them (``fit_stage``: the registry's config
class, the named preset, the experiment's overrides, the registry's fixed values; segmenters and
classifiers: their config class, the named preset, the experiment's overrides and the model name).
"""

from __future__ import annotations

import math

import pytest
import torch

from radsynth.bench.cases import feature_losses
from radsynth.bench.data import ct_slices, cxr_domains
from radsynth.config import build_config, merge
from radsynth.evaluate.classify_config import PRESETS as CLASSIFY_PRESETS
from radsynth.evaluate.classify_config import ClassifyConfig
from radsynth.evaluate.config import PRESETS as SEGMENT_PRESETS
from radsynth.evaluate.config import SegmentConfig
from radsynth.experiments import ct_cgan, cxr_pix2pix
from radsynth.experiments.run import EXPERIMENTS
from radsynth.nets.classifiers import build_classifier
from radsynth.nets.segmenter import build_segmenter
from radsynth.quality.config import PRESETS as QUALITY_PRESETS
from radsynth.quality.config import QualityConfig
from radsynth.synth import cosingan, cyclegan, globallocal, pix2pix, pix2pix_cxr
from radsynth.synth.registry import method_entry

CPU = torch.device("cpu")
TINY_BATCH = {"batch_size": 1}


def synth_config(method: str, preset: str, overrides: dict):
    """As ``experiments.common.fit_stage`` builds it."""
    entry = method_entry(method)
    return build_config(entry.config, entry.presets, preset, merge(overrides, entry.fixed))


def paper_configs(name: str) -> dict[str, object]:
    """Every config the experiment's paper preset names, keyed by what trains with it."""
    s = EXPERIMENTS[name].presets["paper"]
    out: dict[str, object] = {}
    if name == "cosingan":
        out["cosingan"] = synth_config("cosingan", s["cosingan_preset"], {**s["cosingan"], "slice_ids": ["a"]})
        for method in ("pix2pix", "enhanced-pix2pix"):
            out[method] = synth_config(method, s["pix2pix_preset"], {**s["pix2pix"], "slice_ids": ["a"]})
        out["quality"] = build_config(QualityConfig, QUALITY_PRESETS, s["quality_preset"], {})
    if name == "ct-cgan":
        for method in s["methods"]:
            overrides = {**s["pix2pix"], **ct_cgan.JIANG_PIX2PIX} if method == "pix2pix" else {**s["gan"], "size": s["size"]}
            out[method] = synth_config(method, s["gan_preset"], overrides)
    if name == "cxr-cyclegan":
        out["cyclegan"] = synth_config("cyclegan", s["cyclegan_preset"], s["cyclegan"])
    if name == "cxr-pix2pix":
        out["pix2pix-cxr"] = synth_config("pix2pix-cxr", s["pix2pix_preset"], s["pix2pix"])
        for _, _, preset, _, copies in cxr_pix2pix.runs({**s, "weights": "given"}):
            out[f"classify-{preset}-{s['classifier']}-x{copies}"] = build_config(ClassifyConfig, CLASSIFY_PRESETS, preset,
                                                                                {**s["classify"], "model": s["classifier"], "positive_copies": copies})
    for model in s.get("segmenters", ["unet"] if "segment_preset" in s else []):
        out[f"segment-{model}"] = build_config(SegmentConfig, SEGMENT_PRESETS, s["segment_preset"], {**s["segment"], "model": model})
    for model in s.get("classifiers", []):
        for size in s.get("classify_sizes", [None]):  # cosingan: Tables 2 and 3 (256 and 512 px)
            extra = {"size": size} if size else {}
            out[f"classify-{model}" + (f"-{size}" if size else "")] = build_config(ClassifyConfig, CLASSIFY_PRESETS, s["classify_preset"],
                                                                                  {**s["classify"], "model": model, **extra})
    return out


def _finite_step(method, step_losses: dict[str, float]) -> None:
    """A step that ran and reported finite losses."""
    assert step_losses and all(math.isfinite(v) for v in step_losses.values()), step_losses


def one_step(key: str, config) -> None:
    """One real training step of the network ``config`` describes, at its size and width, batch 1."""
    generator = torch.Generator().manual_seed(0)
    if key == "cosingan":  # the largest scale's refinement stage (its G_is and the lower scales run frozen inside it)
        config = build_config(cosingan.CoSinGANConfig, cosingan.PRESETS, None, {**vars(config), "batch_size": 1, "large_batch_size": 1})
        data = ct_slices(config.scales[-1], n=1)
        pairs = cosingan.training_pairs(data, config.scales, CPU)
        pyramid = cosingan.Pyramid(config)
        losses = feature_losses(CPU, stop_early=True)
        method = cosingan.StageMethod(config, pyramid, len(config.scales) - 1, 2, pairs, losses, CPU)
        _finite_step(method, method.train_step(0, generator))
    elif key in ("pix2pix", "enhanced-pix2pix"):
        config = build_config(pix2pix.Pix2PixConfig, pix2pix.PRESETS, None, {**vars(config), **TINY_BATCH})
        losses = feature_losses(CPU, stop_early=True) if config.variant == "enhanced" else {}
        method = pix2pix.Pix2PixMethod(config, ct_slices(config.size, n=1), CPU, losses)
        _finite_step(method, method.train_step(0, generator))
    elif key in ("globallocal", "pix2pixhd", "spade"):
        config = build_config(globallocal.GlobalLocalConfig, globallocal.PRESETS, None, {**vars(config), **TINY_BATCH})
        method = globallocal.Networks(config).phase(config.phases[-1], ct_slices(config.size, n=1), CPU, steps=10)  # the last trains every network
        _finite_step(method, method.train_step(0, generator))
    elif key == "cyclegan":
        config = build_config(cyclegan.CycleGANConfig, cyclegan.PRESETS, None, {**vars(config), **TINY_BATCH})
        method = cyclegan.CycleGANMethod(config, cxr_domains(config.size, n=1), CPU, steps=10)
        _finite_step(method, method.train_step(0, generator))
    elif key == "pix2pix-cxr":
        config = build_config(pix2pix_cxr.Pix2PixCXRConfig, pix2pix_cxr.PRESETS, None, {**vars(config), **TINY_BATCH})
        method = pix2pix_cxr.Pix2PixCXRMethod(config, cxr_domains(config.size, n=1), CPU, steps=10)
        _finite_step(method, method.train_step(0, generator))
    elif key.startswith("segment-"):
        net = build_segmenter(config.model, 4, 1, config.unet_features)
        images, labels = torch.rand(1, 1, config.size, config.size) * 2 - 1, torch.randint(4, (1, config.size, config.size))
        loss = torch.nn.functional.cross_entropy(net(images), labels)
        loss.backward()
        assert math.isfinite(loss.item())
    elif key.startswith("classify-"):
        net = build_classifier(config.model, 3, 1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(torch.rand(1, 3, config.size, config.size)), torch.ones(1, 1))
        loss.backward()
        assert math.isfinite(loss.item()) and all(p.grad is not None for p in net.parameters() if p.requires_grad)
    elif key != "quality":
        raise AssertionError(f"no step for {key}")


PAPER_EXPERIMENTS = [name for name, spec in EXPERIMENTS.items() if "paper" in spec.presets]


def test_every_paper_has_a_paper_preset():
    assert {"cosingan", "ct-cgan", "cxr-cyclegan", "cxr-pix2pix"} <= set(PAPER_EXPERIMENTS)


@pytest.mark.parametrize("name", PAPER_EXPERIMENTS)
def test_paper_preset_loads_and_each_network_takes_a_step(name):
    configs = paper_configs(name)
    assert configs, name
    sizes = {getattr(c, "size", None) for c in configs.values()} - {None}
    assert max(sizes) >= 224, sizes  # paper sizes, not a CPU preset's
    for key, config in configs.items():
        one_step(key, config)
