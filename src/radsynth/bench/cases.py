"""The benchmark cases: each network built as its method trains it, at one size, optimised or plain.

A case gives a ``TrainableMethod`` (the method's own class, so a timed step is the real
``train_step``) and a synthesis function (labels or images -> images, eval mode, no gradients).

* optimised: the method's defaults (bf16 autocast on CUDA, CoSinGAN's early-stopping feature
  extractor and multi-tensor Adam; channels-last and bf16 for the segmenter and classifier on CUDA);
* reference: the same networks, same batch, in a plain eager fp32 loop: ``amp`` off, CoSinGAN's
  ``plain`` path (the whole feature UNet per loss, per-tensor Adam), no channels-last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from radsynth.bench.data import ct_slices, cxr_domains
from radsynth.config import build_config
from radsynth.data.labels import to_categories
from radsynth.losses import FeatureLoss, ModuleFeatures
from radsynth.nets.classifiers import build_classifier
from radsynth.nets.segmenter import ENCODER_LAYERS, unet_segmenter
from radsynth.synth import cosingan, cyclegan, globallocal, pix2pix, pix2pix_cxr
from radsynth.synth.conditions import condition_tensor, one_hot_condition
from radsynth.synth.feature_extractors import FEATURE_UNET_CHANNELS, SEGMENTATION_CLASS_WEIGHTS, UNET_LAYER_WEIGHTS
from radsynth.training.schedule import LinearDecay

SYNTHESIZERS = ("pix2pix", "enhanced-pix2pix", "cosingan", "globallocal", "pix2pixhd", "spade", "cyclegan", "pix2pix-cxr")
NETWORKS = ("unet-segmenter", "resnet18-classifier")
CASES = SYNTHESIZERS + NETWORKS
QUICK_WIDTH = {"ngf": 16, "ndf": 16}  # --quick: narrow nets (each method's quick preset, halved again)


@dataclass
class Built:
    """One case ready to time: the trainable method, a synthesis call and what one step processes."""

    method: Any  # TrainableMethod
    synthesize: Callable[[], torch.Tensor]  # one synthesis batch -> images
    train_batch: int
    synth_batch: int
    note: str = ""


def feature_losses(device: torch.device, stop_early: bool) -> dict[str, FeatureLoss]:
    """MS-FUL over an untrained feature UNet of the real architecture (the weights do not change the speed)."""
    unet = unet_segmenter(3, 1, FEATURE_UNET_CHANNELS)
    return {"unet": FeatureLoss(ModuleFeatures(unet, ENCODER_LAYERS, stop_early=stop_early), UNET_LAYER_WEIGHTS).to(device)}


def _preset(quick: bool) -> str:
    return "quick" if quick else "paper"


def build_pix2pix(name: str, size: int, quick: bool, device: torch.device, plain: bool, synth_batch: int) -> Built:
    variant = "enhanced" if name == "enhanced-pix2pix" else "pix2pix"
    width = QUICK_WIDTH if quick else {}
    config = build_config(pix2pix.Pix2PixConfig, pix2pix.PRESETS, _preset(quick), {"size": size, "variant": variant, "amp": not plain, **width})
    data = ct_slices(size)
    losses = feature_losses(device, stop_early=not plain) if variant == "enhanced" else {}
    method = pix2pix.Pix2PixMethod(config, data, device, losses)
    labels = data.labels[:1].expand(synth_batch, -1, -1).to(device)

    def synthesize() -> torch.Tensor:
        method.generator.eval()
        with method._autocast():
            return method.generator(condition_tensor(labels))

    return Built(method, synthesize, config.batch_size, synth_batch)


def cosingan_config(quick: bool, size: int, plain: bool) -> cosingan.CoSinGANConfig:
    """The preset's pyramid cut at ``size`` (its scales up to ``size``)."""
    base = build_config(cosingan.CoSinGANConfig, cosingan.PRESETS, _preset(quick), {"slice_ids": ["bench"], "amp": not plain})
    keep = [i for i, s in enumerate(base.scales) if s <= size] or [0]
    width = QUICK_WIDTH if quick else {}
    pick = lambda values: [values[i] for i in keep]  # noqa: E731
    return build_config(
        cosingan.CoSinGANConfig, cosingan.PRESETS, _preset(quick),
        {"slice_ids": ["bench"], "amp": not plain, "scales": pick(base.scales), "generator_downs": pick(base.generator_downs),
         "discriminator_convs": pick(base.discriminator_convs), **width},
    )


def build_cosingan_stage(index: int, stage: int, size: int, quick: bool, device: torch.device, plain: bool, synth_batch: int) -> Built:
    """Stage ``stage`` of scale ``index`` of the preset pyramid cut at ``size`` (lower scales frozen, as in training)."""
    config = cosingan_config(quick, size, plain)
    data = ct_slices(config.scales[-1], n=1)
    pairs = cosingan.training_pairs(data, config.scales, device)
    torch.manual_seed(config.seed)
    pyramid = cosingan.Pyramid(config).to(device)
    method = cosingan.StageMethod(config, pyramid, index, stage, pairs, feature_losses(device, not plain), device, plain=plain)
    model = cosingan.CoSinGAN(config, pyramid, [], device)
    labels = data.labels[:1].expand(synth_batch, -1, -1)

    def synthesize() -> torch.Tensor:
        with method._autocast():
            return model.generate(labels, seed=0)

    return Built(method, synthesize, config.batch_for(config.scales[index]), synth_batch, note=f"scale {index} ({config.scales[index]} px) stage {stage}")


def build_globallocal(name: str, size: int, quick: bool, device: torch.device, plain: bool, synth_batch: int) -> Built:
    width = {"ngf": 16, "ndf": 16, "spade_channels": [128, 64, 32, 16]} if quick else {}
    config = build_config(globallocal.GlobalLocalConfig, globallocal.PRESETS, _preset(quick), {"size": size, "variant": name, "amp": not plain, **width})
    data = ct_slices(size)
    torch.manual_seed(config.seed)
    networks = globallocal.Networks(config).to(device)
    phase = config.phases[-1]
    method = networks.phase(phase, data, device, steps=1000)
    labels = data.labels[:1].expand(synth_batch, -1, -1).to(device)

    def synthesize() -> torch.Tensor:
        networks.eval()
        with torch.autocast(device.type, torch.bfloat16, enabled=config.amp and device.type == "cuda"):
            return networks.synthesize(one_hot_condition(labels))

    return Built(method, synthesize, config.batch_size, synth_batch, note=f"phase {phase}")


def build_cyclegan(size: int, quick: bool, device: torch.device, plain: bool, synth_batch: int) -> Built:
    width = QUICK_WIDTH if quick else {}
    config = build_config(cyclegan.CycleGANConfig, cyclegan.PRESETS, _preset(quick), {"size": size, "amp": not plain, **width})
    data = cxr_domains(size)
    method = cyclegan.CycleGANMethod(config, data, device, steps=1000)
    images = data.a.images[:1].expand(synth_batch, -1, -1, -1).to(device)

    def synthesize() -> torch.Tensor:
        method.g_a.eval()
        with torch.autocast(device.type, torch.bfloat16, enabled=config.amp and device.type == "cuda"):
            return method.g_a(images)

    return Built(method, synthesize, config.batch_size, synth_batch)


def build_pix2pix_cxr(size: int, quick: bool, device: torch.device, plain: bool, synth_batch: int) -> Built:
    width = QUICK_WIDTH if quick else {}
    config = build_config(pix2pix_cxr.Pix2PixCXRConfig, pix2pix_cxr.PRESETS, _preset(quick), {"size": size, "amp": not plain, **width})
    data = cxr_domains(size)
    method = pix2pix_cxr.Pix2PixCXRMethod(config, data, device, steps=1000)
    images = data.a.images[:1].expand(synth_batch, -1, -1, -1).to(device)

    def synthesize() -> torch.Tensor:
        method.generator.eval()
        with torch.autocast(device.type, torch.bfloat16, enabled=config.amp and device.type == "cuda"):
            return method.generator(images)

    return Built(method, synthesize, config.batch_size, synth_batch)


class SupervisedMethod:
    """A plain supervised training step of a segmenter or classifier (Adam, cross-entropy / BCE).

    Optimised (``plain=False``) on CUDA: bf16 autocast and channels-last; on the CPU both paths
    are the same eager fp32 step.
    """

    def __init__(self, net: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, loss: Callable, device: torch.device, plain: bool) -> None:
        self.fast = not plain and device.type == "cuda"
        memory = torch.channels_last if self.fast else torch.contiguous_format
        self.net = net.to(device=device, memory_format=memory)
        self.images = images.to(device).contiguous(memory_format=memory)
        self.targets = targets.to(device)
        self.loss = loss
        self.device = device
        self._optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-4, foreach=None if plain else True)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"net": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"net": self._optimizer}

    def schedules(self) -> dict[str, LinearDecay]:
        return {"net": LinearDecay(1e-4, 1000, 1000)}

    def train_step(self, step: int, generator: torch.Generator) -> dict[str, float]:
        self.net.train()
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.fast):
            logits = self.net(self.images)
        loss = self.loss(logits.float(), self.targets)
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._optimizer.step()
        return {"loss": loss.item()}

    def predict(self) -> torch.Tensor:
        self.net.eval()
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.fast):
            return self.net(self.images)


def build_segmenter(size: int, quick: bool, device: torch.device, plain: bool, synth_batch: int) -> Built:
    """MONAI BasicUNet (background / lung / infection), CoSinGAN 3.3.2 class weights; batch 4 (8 at full width)."""
    batch = 4 if quick else 8
    data = ct_slices(size, n=batch)
    net = unet_segmenter(3, 1, (16, 16, 32, 64, 128, 16) if quick else (32, 32, 64, 128, 256, 32))
    weights = torch.tensor(SEGMENTATION_CLASS_WEIGHTS, device=device)
    method = SupervisedMethod(net, data.images, to_categories(data.labels).long(), lambda z, t: F.cross_entropy(z, t, weight=weights), device, plain)
    return Built(method, method.predict, batch, batch, note="inference images/s")


def build_classifier_case(size: int, quick: bool, device: torch.device, plain: bool, synth_batch: int) -> Built:
    """ResNet18 (3-channel input, one logit, BCE) on phantom X-rays; batch 8 (16 at full size)."""
    batch = 8 if quick else 16
    domains = cxr_domains(size, n=batch // 2)
    images = torch.cat([domains.a.images, domains.b.images]).expand(-1, 3, -1, -1)
    targets = torch.cat([torch.zeros(batch // 2, 1), torch.ones(batch // 2, 1)])
    method = SupervisedMethod(build_classifier("resnet18", 3, 1), images, targets, F.binary_cross_entropy_with_logits, device, plain)
    return Built(method, method.predict, batch, batch, note="inference images/s")


def build_case(name: str, size: int, quick: bool, device: torch.device, plain: bool, synth_batch: int) -> Built:
    """Any case but CoSinGAN (see ``build_cosingan_stage``)."""
    if name in ("pix2pix", "enhanced-pix2pix"):
        return build_pix2pix(name, size, quick, device, plain, synth_batch)
    if name in ("globallocal", "pix2pixhd", "spade"):
        return build_globallocal(name, size, quick, device, plain, synth_batch)
    if name == "cyclegan":
        return build_cyclegan(size, quick, device, plain, synth_batch)
    if name == "pix2pix-cxr":
        return build_pix2pix_cxr(size, quick, device, plain, synth_batch)
    if name == "unet-segmenter":
        return build_segmenter(size, quick, device, plain, synth_batch)
    if name == "resnet18-classifier":
        return build_classifier_case(size, quick, device, plain, synth_batch)
    raise ValueError(f"unknown case {name!r}")
