"""CoSinGAN: mask-conditional CT synthesis learned from ONE annotated slice (Zhang et al. 2020).

A pyramid of two-stage GANs over the scales 32 ... 512 px (section 2.1). At scale i:

* stage 1, G_is, conditional super-resolution (eq. 1): ``O_is = G_is(U(O_{i-1}) + C_i)``; scale 0
  takes ``C_0`` alone. The condition is ADDED, as eq. 1 writes, not concatenated: the input stays
  one channel, which is what lets stage 2 start as an exact copy of G_is and take ``O_is`` (one
  channel) as its input;
* stage 2, G_ir, unconditional restoration (eqs. 2-3), initialised as a copy of the trained G_is:
  ``O_i = G_ir(O_is)``.

Each stage is trained against its own conditional patch discriminator ``D(C_i, image)`` (eqs. 4-5)
with pix2pix's adversarial loss plus the mixed reconstruction loss (eq. 6: WPPL 10, MS-SSIM 1,
VGG feature 10, UNet feature 10). Stage 1 sees strong augmentation whose intensity falls as the
scale grows, stage 2 weak augmentation (section 2.3). The training pair is augmented at the scale
being trained, and the lower-scale inputs are regenerated from the augmented condition through the
frozen scales 0..i-1, never by augmenting O_{i-1}.

Every number of sections 2.1 and 3.2.1 is a config default; "epochs" on a single image are
counted as steps of one mini-batch of augmented copies.

Where the paper is silent, radsynth chooses and says so here:

* dropout (needed for the AD diversifier) sits in the innermost decoder block only
  (``dropout_blocks=1``). pix2pix's three dropout blocks would cover the whole decoder of the 4-
  and 5-deep generators at 32-96 px; measured on a phantom slice at 32 px after 300 steps (PSNR
  of the training slice): 16.2 dB with three blocks, 18.0 dB with one, 19.5 dB without dropout.
* the UNet-feature weights gamma_k are 1/5 for each of the five encoder blocks;
* strong augmentation falls linearly to ``strong_final`` (half) of its intensity at the last scale.
* ``strong_scale`` scales SA as a whole (1 = the paper). Short CPU schedules cannot absorb the paper's
  SA: a 16-wide UNet fitting one 64 px phantom slice with L1 alone (batch 4, Adam lr 2e-4) reaches
  35.8 dB on that slice after 600 steps without augmentation but 21.3 dB under full SA; at a quarter
  of SA's strength (lr 1e-3) 25.0 dB. The paper's 4000 + 2000 epochs per scale absorb it; short CPU
  runs are better served by a weaker SA.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

from radsynth import distributed
from radsynth.config import check_range, config_from_dict, config_to_dict
from radsynth.data.augment import STRONG, WEAK, AugmentSpec, augment_pair, resize_batch, weakened
from radsynth.data.body import clear_outside_body
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.evaluate.protocols import set_flags
from radsynth.losses import AdversarialLoss, FeatureLoss, MSSSIMLoss, WeightedPixelL1
from radsynth.nets import PatchDiscriminator, UNetGenerator, set_dropout_active
from radsynth.nets.init import carry_over
from radsynth.nets.unet_generator import UPSAMPLES
from radsynth.quality.paired import psnr_from_rmse
from radsynth.report.grids import save_grid
from radsynth.synth.base import Synthesizer, TrainingData, load_training_data, read_run, start_run, update_run
from radsynth.training.checkpoint import Retention, file_sha256, latest_checkpoint, load_module_weights, read_checkpoint, restore
from radsynth.synth.conditions import condition_tensor
from radsynth.synth.diversify import RC_DELTAS, random_condition
from radsynth.synth.feature_extractors import FeatureSpec, build_feature_losses, load_given_extractors
from radsynth.synth.reconstruction import mixed_reconstruction
from radsynth.training.schedule import LinearDecay
from radsynth.training.trainer import Trainer, TrainerOptions, amp_autocast, resolve_device, step_seed

SCALES = (32, 48, 64, 96, 128, 192, 256, 384, 512)  # section 2.1
GENERATOR_DOWNS = (4, 4, 5, 5, 6, 6, 7, 7, 8)  # section 2.1: 2x downsamplings of each UNet
DISCRIMINATOR_CONVS = (6, 6, 7, 7, 8, 8, 9, 9, 10)  # section 2.1: conv layers of each patch discriminator
DIVERSIFIERS = ("none", "dropout", "rc")
CONDITIONS = ("merged", "typed")  # merged: 3.2.1's three grey levels; typed: GGO and consolidation apart


@dataclass(frozen=True)
class CoSinGANConfig:
    """CoSinGAN; defaults are the paper's (sections 2.1, 2.2, 2.3, 3.2.1, 3.2.4)."""

    scales: tuple[int, ...] = SCALES
    generator_downs: tuple[int, ...] = GENERATOR_DOWNS
    discriminator_convs: tuple[int, ...] = DISCRIMINATOR_CONVS
    ngf: int = 64  # pix2pix widths (the paper builds on pix2pix, section 2.1)
    ndf: int = 64
    norm: str = "batch"
    dropout: float = 0.5  # 3.2.4: AD uses dropout 50 % at test time
    dropout_blocks: int = 1  # decoder blocks with dropout, innermost first; see the module docstring
    condition: str = "merged"  # 3.2.1: background 0, lung 128, infection 255; "typed": GGO 192, consolidation 255 apart (typed sets only)
    upsample: str = "transpose"  # pix2pix's transposed convs (2.1 builds on pix2pix); "resize" / "bilinear": nearest / bilinear x2 + 3x3 conv, no checkerboard
    d_padding: int = 2  # pix2pixHD's padding: with pix2pix's 1 these depths leave no logits at 32, 64, ... px
    stage1_steps: int = 4000  # 3.2.1: 4000 epochs, strong augmentation
    stage1_lr: float = 2e-4  # 3.2.1
    stage1_decay_fraction: float = 0.5  # 3.2.1: linear decay (0.05 %/epoch) after 2000 of 4000
    stage2_steps: int = 2000  # 3.2.1: 2000 epochs, weak augmentation
    stage2_lr: float = 1e-4  # 3.2.1
    stage2_decay_fraction: float = 0.5  # 3.2.1: decay (0.1 %/epoch) after 1000 of 2000
    batch_size: int = 4  # 3.2.1
    large_batch_size: int = 2  # 3.2.1: batch 2 at 512 x 512 ...
    large_scale: int = 512  # ... i.e. for scales of at least this size
    beta1: float = 0.5  # 3.2.1
    beta2: float = 0.999
    gan_mode: str = "vanilla"  # pix2pix's adversarial loss (section 2.2)
    lambdas: tuple[float, float, float, float] = (10.0, 1.0, 10.0, 10.0)  # 3.2.1: WPPL, MS-SSIM, MS-FVL, MS-FUL
    wppl_weights: tuple[float, float, float] = (0.1, 0.5, 1.0)  # 3.2.1: background, lung, infection
    strong_final: float = 0.5  # SA intensity at the last scale relative to the first (2.3 gives no number)
    strong_scale: float = 1.0  # SA intensity at the first scale (1 = section 2.3's crop 0.5-1.0); see the module docstring
    rc_deltas: tuple[float, float, float] = RC_DELTAS  # 3.2.4, eq. 10
    reuse_weights: bool = False  # each scale's G_is and D start from the scale below's where shapes allow (2.1's depths; SinGAN)
    # radsynth: clear the training slice's table and cables (data.body.clear_outside_body) before training. Off: it removed
    # the table streaks on ct-rp9-dev but lowered every synthetic row's infection DSC on ct-ma20 (cpu preset, seed 0:
    # O-STS 41.0 -> 28.5, IF-STS 41.4 -> 33.6; README, the cosingan experiment)
    body_only: bool = False
    vgg_weights: str = ""  # local VGG19 weights for MS-FVL; empty: the domain UNet stands in
    unet_features: str = ""  # user segmenter weights for MS-FUL; empty: a UNet trained on the same slice
    feature_unet_steps: int = 600  # radsynth's choice
    slice_ids: tuple[str, ...] = ()  # exactly one slice of the prepared set
    amp: bool = True  # bf16 autocast on CUDA
    seed: int = 0
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        n = len(self.scales)
        if n == 0 or len(self.generator_downs) != n or len(self.discriminator_convs) != n:
            raise ValueError(f"scales, generator_downs and discriminator_convs need one entry per scale ({n})")
        if list(self.scales) != sorted(set(self.scales)):
            raise ValueError(f"scales must increase, got {self.scales}")
        for size, downs in zip(self.scales, self.generator_downs):
            if size % 2**downs:
                raise ValueError(f"scale {size} is not divisible by 2**{downs} (generator_downs)")
        check_range(vars(self), ("stage1_steps", "stage2_steps", "batch_size", "large_batch_size", "ngf", "ndf", "log_every", "sample_every", "checkpoint_every"), low=1)
        check_range(vars(self), ("stage1_decay_fraction", "stage2_decay_fraction", "strong_final", "strong_scale"), low=0, high=1)
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {self.condition!r}")
        if self.upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}, got {self.upsample!r}")
        if len(self.slice_ids) > 1:
            raise ValueError(f"CoSinGAN learns from ONE slice; got {len(self.slice_ids)} slice ids")

    def batch_for(self, size: int) -> int:
        return self.large_batch_size if size >= self.large_scale else self.batch_size

    def strong_for(self, index: int) -> AugmentSpec:
        """SA at scale ``index``: full strength at scale 0, ``strong_final`` of it at the last scale."""
        last = max(len(self.scales) - 1, 1)
        return weakened(STRONG, self.strong_scale * (1.0 - (1.0 - self.strong_final) * index / last))


# Departures from section 3.2.1 for schedules of a few hundred steps instead of 4000 + 2000 epochs
# (quick preset, make demo, tests). Measured on the 3-scale phantom pyramid of tests/synth (150 + 75
# steps, half-strength SA; training-slice PSNR through the pyramid / pooled infection - lung gap on
# 12 unseen masks, real: 0.32): paper values 15.2 dB / 0.02; lr x5 20.4 dB / 0.12; lr x5 and WPPL
# weight 100 (pix2pix's L1 weight) 20.9 dB / 0.16. On one ct-ma20 slice at 32 px (300 steps):
# 33.6 dB without SA, 19.9 dB at half SA, 22.6 dB at quarter SA or after 900 steps: SA is what a short
# schedule cannot absorb, so SA is also halved (strong_scale).
CPU_SHORT_SCHEDULE: dict[str, Any] = {"stage1_lr": 1e-3, "stage2_lr": 5e-4, "lambdas": [100.0, 1.0, 10.0, 10.0], "strong_scale": 0.5}

# CPU: the 32 -> 128 pyramid, narrower nets; finishes in minutes on 2 cores (see the issue notes)
QUICK_SCHEDULE: dict[str, Any] = {
    "scales": [32, 48, 64, 96, 128],
    "generator_downs": [4, 4, 5, 5, 6],
    "discriminator_convs": [6, 6, 7, 7, 8],
    "ngf": 32,
    "ndf": 32,
    "stage1_steps": 300,
    "stage2_steps": 150,
    **CPU_SHORT_SCHEDULE,
    "feature_unet_steps": 300,
    "sample_every": 150,
    # a checkpoint holds weights + Adam state (52-335 MB per scale); every 50 steps wrote 45 of them, minutes
    # of fsync on a small machine (6.8 GB when all are kept, --keep-checkpoints; by default a running phase
    # keeps only its newest and a finished one its generator). 150 writes 15; the weights are the same
    # (steps are seeded per step) and Ctrl-C still checkpoints at once.
    "checkpoint_every": 150,
}

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "quick": QUICK_SCHEDULE,
    # CPU with what the fidelity curve (benchmarks/cosingan_cpu_curve.py, ct-rp9-dev 128 px, slice 000032) kept:
    # nearest-resize upsampling (no transposed-conv dot grid) and weights carried between scales (GGO - lung offset
    # 0.17 -> 0.36 of real, lung texture 0.67 -> 1.03), and twice quick's steps per scale (about 35 CPU minutes per
    # pyramid on one core): on ct-ma20 (cosingan experiment, seed 0) IF-STS infection DSC 48.5 and 41.4 with 2 x
    # against 36.0 and 38.2 with 1 x (two slice-B choices), RC-STS 38.3 against 35.2, O-STS 41.0 against 31.6 (but 39.7
    # against 46.7 with the earlier B): four of five pairs favour 2 x; a single GAN run moves a row by up to 15 points.
    # Add --set condition=typed on a set that labels GGO and consolidation apart (consolidation offset 0.37 -> 0.60).
    "cpu": {**QUICK_SCHEDULE, "upsample": "resize", "reuse_weights": True, "stage1_steps": 600, "stage2_steps": 300,
            "sample_every": 300, "checkpoint_every": 300},
}


class Pyramid(torch.nn.Module):
    """The generators of all scales: ``stage1[i]`` (G_is) and ``stage2[i]`` (G_ir)."""

    def __init__(self, config: CoSinGANConfig) -> None:
        super().__init__()
        self.scales = config.scales
        self.typed = config.condition == "typed"

        def generator(downs: int) -> UNetGenerator:
            return UNetGenerator(
                1, 1, num_downs=downs, ngf=config.ngf, norm=config.norm, dropout=config.dropout, dropout_blocks=config.dropout_blocks,
                upsample=config.upsample,
            )

        self.stage1 = torch.nn.ModuleList(generator(d) for d in config.generator_downs)
        self.stage2 = torch.nn.ModuleList(generator(d) for d in config.generator_downs)

    def stage_input(self, index: int, previous: torch.Tensor | None, condition: torch.Tensor) -> torch.Tensor:
        """Eq. 1's ``U(O_{i-1}) + C_i`` (scale 0: ``C_0``); (N, 1, s_i, s_i)."""
        if index == 0 or previous is None:
            return condition
        size = self.scales[index]
        return F.interpolate(previous, size=(size, size), mode="bilinear", align_corners=False) + condition

    def run(self, conditions: list[torch.Tensor], upto: int, with_stages: bool = False) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """O_upto from the per-scale conditions (eq. 3 applied scale by scale).

        Returns the final output and, with ``with_stages``, every scale's (O_is, O_ir).
        """
        previous = None
        stages = []
        for index in range(upto + 1):
            o_s = self.stage1[index](self.stage_input(index, previous, conditions[index]))
            previous = self.stage2[index](o_s)
            if with_stages:
                stages.append((o_s, previous))
        return previous, stages


def scale_conditions(
    labels: torch.Tensor, scales: tuple[int, ...], upto: int, rc: tuple[torch.Generator, tuple[float, float, float]] | None = None, typed: bool = False
) -> list[torch.Tensor]:
    """(N, H, W) labels -> conditions C_0..C_upto, each (N, 1, s, s) (nearest resize; RC when given; ``typed``: GGO and consolidation apart)."""
    out = []
    for size in scales[: upto + 1]:
        small = F.interpolate(labels[:, None].float(), size=(size, size), mode="nearest-exact")[:, 0].round().long()
        out.append(random_condition(small, rc[0], rc[1], typed) if rc else condition_tensor(small, typed))
    return out


class StageMethod:
    """Training of one stage at one scale, for the ``Trainer``."""

    def __init__(
        self,
        config: CoSinGANConfig,
        pyramid: Pyramid,
        index: int,
        stage: int,
        pairs: list[tuple[torch.Tensor, torch.Tensor]],
        feature_losses: dict[str, FeatureLoss],
        device: torch.device,
        plain: bool = False,
    ) -> None:
        """``plain``: the unoptimised reference path (per-tensor Adam); the default path gives the same weights."""
        self.config, self.pyramid, self.index, self.stage, self.device = config, pyramid, index, stage, device
        self.size = config.scales[index]
        self.image, self.label = pairs[index]
        self.generator = pyramid.stage1[index] if stage == 1 else pyramid.stage2[index]
        torch.manual_seed(step_seed(config.seed, f"discriminator-{index}-{stage}", 0))
        self.discriminator = PatchDiscriminator.from_total_convs(
            2, config.discriminator_convs[index], ndf=config.ndf, norm=config.norm, padding=config.d_padding
        ).to(device)
        lr = config.stage1_lr if stage == 1 else config.stage2_lr
        steps = config.stage1_steps if stage == 1 else config.stage2_steps
        fraction = config.stage1_decay_fraction if stage == 1 else config.stage2_decay_fraction
        betas = (config.beta1, config.beta2)
        foreach = None if plain else True  # multi-tensor Adam: the same arithmetic per element, fewer kernel launches
        self._optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas, foreach=foreach),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas, foreach=foreach),
        }
        schedule = LinearDecay(lr, round(fraction * steps), steps)
        self._schedules = {"generator": schedule, "discriminator": schedule}
        self.augment = config.strong_for(index) if stage == 1 else WEAK
        self.adversarial = AdversarialLoss(config.gan_mode)
        self.wppl = WeightedPixelL1(config.wppl_weights)
        self.msssim = MSSSIMLoss()
        self.feature_losses = feature_losses
        self.preview_label = self._preview_labels()

    def _preview_labels(self) -> torch.Tensor:
        """The training condition and one fixed strongly augmented version of it, for sample grids."""
        generator = torch.Generator().manual_seed(self.config.seed)
        _, augmented = augment_pair(self.image, self.label, self.config.strong_for(0), generator)
        return torch.cat([self.label, augmented])

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def kept_modules(self) -> tuple[str, ...]:
        """After the phase: the generator (later phases read the lower scales' generators, frozen, and stage 2
        starts as a copy of stage 1's), and with ``reuse_weights`` the discriminator, which the next phase's starts from."""
        return ("generator", "discriminator") if self.config.reuse_weights else ("generator",)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def schedules(self) -> dict[str, LinearDecay]:
        return self._schedules

    def _autocast(self) -> torch.autocast:
        return amp_autocast(self.device, self.config.amp)

    def _frozen_output(self, conditions: list[torch.Tensor]) -> torch.Tensor | None:
        """O_{i-1} from the frozen lower scales (eval mode, no gradients)."""
        if self.index == 0:
            return None
        with torch.no_grad(), self._autocast():
            for module in (*self.pyramid.stage1[: self.index], *self.pyramid.stage2[: self.index]):
                module.eval()
            output, _ = self.pyramid.run(conditions, self.index - 1)
        return output.float()

    def _forward(self, conditions: list[torch.Tensor]) -> torch.Tensor:
        previous = self._frozen_output(conditions)
        stage_input = self.pyramid.stage_input(self.index, previous, conditions[self.index])
        if self.stage == 1:
            return self.generator(stage_input)
        with torch.no_grad():
            self.pyramid.stage1[self.index].eval()
            o_s = self.pyramid.stage1[self.index](stage_input)
        return self.generator(o_s)

    def train_step(self, step: int, generator: torch.Generator) -> dict[str, float]:
        batch = self.config.batch_for(self.size)
        real, label = augment_pair(self.image.expand(batch, -1, -1, -1), self.label.expand(batch, -1, -1), self.augment, generator)
        real, label = distributed.rank_share(real, label)  # the batch is global; this rank's slice of it
        conditions = scale_conditions(label, self.config.scales, self.index, typed=self.pyramid.typed)
        condition = conditions[self.index]
        self.generator.train()
        self.discriminator.train()
        with self._autocast():
            fake = self._forward(conditions)
            self.discriminator.requires_grad_(True)
            d_fake = self.discriminator(torch.cat([condition, fake.detach()], 1))
            d_real = self.discriminator(torch.cat([condition, real], 1))
            loss_d = 0.5 * (self.adversarial(d_fake, False) + self.adversarial(d_real, True))  # eq. 5
        self._optimizers["discriminator"].zero_grad(set_to_none=True)
        loss_d.backward()
        self._optimizers["discriminator"].step()
        self.discriminator.requires_grad_(False)
        with self._autocast():
            loss_adv = self.adversarial(self.discriminator(torch.cat([condition, fake], 1)), True, for_discriminator=False)
            terms = self._reconstruction(fake.float(), real, label)
            loss_g = loss_adv + sum(terms.values())  # eq. 4 with eq. 6
        self._optimizers["generator"].zero_grad(set_to_none=True)
        loss_g.backward()
        self._optimizers["generator"].step()
        return {"d": loss_d.item(), "g_adv": loss_adv.item(), **{k: v.item() for k, v in terms.items()}}

    def _reconstruction(self, fake: torch.Tensor, real: torch.Tensor, label: torch.Tensor) -> dict[str, torch.Tensor]:
        return mixed_reconstruction(self.config.lambdas, self.wppl, self.msssim, self.feature_losses, fake, real, label)

    @torch.no_grad()
    def samples(self) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        self.generator.eval()
        conditions = scale_conditions(self.preview_label, self.config.scales, self.index, typed=self.pyramid.typed)
        fake = self._forward(conditions).float()
        labels = self.preview_label.cpu().numpy().astype(np.uint8)
        return (
            [self.image[0, 0].cpu().numpy(), fake[0, 0].cpu().numpy(), fake[1, 0].cpu().numpy()],
            [labels[0], None, labels[1]],
        )


def start_from_lower(config: CoSinGANConfig, pyramid: Pyramid, method: StageMethod, run_dir: Path, index: int, stage: int) -> dict[str, int]:
    """``reuse_weights``: before a phase's first step, carry weights over where names and shapes match
    (``nets.init.carry_over``: the outer blocks of a one-block-deeper net, all of an equally deep one).
    Stage 1 of scale i: G_is from G_(i-1)s, D from stage 1's D of scale i - 1; stage 2: D from stage 1's D of
    the same scale (G_ir already starts as G_is). Returns the tensors carried and the totals, for run.json."""
    out = {}
    if stage == 1 and index > 0:
        out["generator"] = len(carry_over(pyramid.stage1[index], pyramid.stage1[index - 1]))
        out["generator_total"] = len(pyramid.stage1[index].state_dict())
    source = (index - 1, 1) if stage == 1 else (index, 1)
    path = latest_checkpoint(Path(run_dir) / phase_name(config, *source)) if source[0] >= 0 else None
    if path is not None:
        with torch.random.fork_rng(devices=[]):  # building the donor net must not move the global RNG
            donor = PatchDiscriminator.from_total_convs(2, config.discriminator_convs[source[0]], ndf=config.ndf, norm=config.norm,
                                                        padding=config.d_padding)
        load_module_weights(path, {"discriminator": donor})
        out["discriminator"] = len(carry_over(method.discriminator, donor))
        out["discriminator_total"] = len(method.discriminator.state_dict())
    return out


@torch.no_grad()
def reconstruction_psnr(pyramid: Pyramid, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, dict[str, float]]:
    """PSNR (dB, images on [-1, 1], peak-to-peak 2) of the training slice's own reconstruction at each scale:
    the pyramid run up to that scale on the slice's unaugmented conditions, dropout off, against the slice
    resized to that scale; ``stage1`` is O_is, ``stage2`` O_ir. {"32": {"stage1": dB, "stage2": dB}, ...}."""
    pyramid.eval()
    label = pairs[-1][1]
    conditions = scale_conditions(label, pyramid.scales, len(pyramid.scales) - 1, typed=pyramid.typed)
    _, stages = pyramid.run(conditions, len(pyramid.scales) - 1, with_stages=True)
    out = {}
    for size, (image, _), (o_s, o_r) in zip(pyramid.scales, pairs, stages):
        # psnr_from_rmse takes peak 1: on [-1, 1] (peak-to-peak 2) that is the RMSE halved
        out[str(size)] = {name: round(float(psnr_from_rmse(F.mse_loss(o.float(), image.float()).sqrt() / 2)), 2)
                          for name, o in (("stage1", o_s), ("stage2", o_r))}
    return out


def phase_name(config: CoSinGANConfig, index: int, stage: int) -> str:
    return f"scale{index}_{config.scales[index]}px_stage{stage}"


def training_pairs(data: TrainingData, scales: tuple[int, ...], device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The single training slice resized to every scale: [(image (1,1,s,s), label (1,s,s))]."""
    if data.images.shape[-1] < scales[-1]:
        raise InputError(
            data.source, f"slices are {data.images.shape[-1]} px, smaller than the largest scale {scales[-1]}; prepare with --size {scales[-1]}"
        )
    return [tuple(t.to(device) for t in resize_batch(data.images, data.labels, size)) for size in scales]


class CoSinGAN(Synthesizer):
    """A trained CoSinGAN pyramid."""

    name = "cosingan"

    def __init__(self, config: CoSinGANConfig, pyramid: Pyramid, checkpoints: list[Path], device: torch.device) -> None:
        self.config = config
        self.pyramid = pyramid.to(device).eval()
        self.checkpoints = checkpoints
        self.device = device

    @classmethod
    def fit(
        cls,
        data: Path,
        config: CoSinGANConfig,
        out_dir: Path,
        resume: bool = False,
        force: bool = False,
        device: str = "auto",
        console: Console | None = None,
        on_step=None,
        plain: bool = False,
        retention: Retention = Retention(),
    ) -> CoSinGAN:
        """Train every scale's two stages. ``plain`` runs the unoptimised reference path (whole
        feature UNet per loss, per-tensor Adam); it gives the same weights, only slower.
        ``retention``: which checkpoints stay on disk (``--keep-checkpoints`` / ``--keep-last``), not part of the config."""
        if len(config.slice_ids) != 1:
            raise InputError("--slice", "CoSinGAN learns from exactly one slice: give its id (the 'id' column of manifest.csv) or 'auto'")
        torch_device = resolve_device(device)
        out_dir = Path(out_dir)
        training = load_training_data(Path(data), None, config.slice_ids)
        cleared = 0
        if config.body_only:  # the table is not in the condition, so a one-slice model imitates its lines as streaks
            image, cleared = clear_outside_body(training.images[0], training.labels[0])
            training = TrainingData(image[None], training.labels, training.ids, training.patients, training.source)
        if config.condition == "typed" and not set_flags(SliceSet(Path(data), cache=False))[1]:
            raise InputError(data, "labels infection without GGO / consolidation types; condition=typed needs a typed set (use condition=merged)")
        pairs = training_pairs(training, config.scales, torch_device)
        spec = FeatureSpec(config.vgg_weights, config.unet_features, config.feature_unet_steps, config.seed, config.scales)
        given = load_given_extractors(spec)  # a bad weights file stops here, before anything is written or cleared
        start_run(out_dir, cls.name, config_to_dict(config), training, resume, force)
        feature_losses, descriptions = build_feature_losses(spec, TrainingData(pairs[-1][0].cpu(), pairs[-1][1].cpu(), training.ids, training.patients, training.source), torch_device, out_dir, console, stop_early=not plain, given=given)
        update_run(out_dir, extractors=descriptions, condition_input="added to the upsampled previous output (eq. 1)",
                   **({"body_only_cleared_pixels": cleared} if config.body_only else {}))
        torch.manual_seed(config.seed)
        pyramid = Pyramid(config).to(torch_device)
        for index in range(len(config.scales)):
            for stage in (1, 2):
                phase = phase_name(config, index, stage)
                fresh = latest_checkpoint(out_dir / phase) is None
                if stage == 2 and fresh:
                    pyramid.stage2[index].load_state_dict(pyramid.stage1[index].state_dict())  # G_ir starts as G_is
                method = StageMethod(config, pyramid, index, stage, pairs, feature_losses, torch_device, plain=plain)
                if fresh and config.reuse_weights:  # recorded as it happens, so a resumed run keeps what earlier phases carried
                    carried = start_from_lower(config, pyramid, method, out_dir, index, stage)
                    update_run(out_dir, weights_carried={**read_run(out_dir).get("weights_carried", {}), phase: carried})
                steps = config.stage1_steps if stage == 1 else config.stage2_steps
                options = TrainerOptions(
                    steps=steps, seed=config.seed, log_every=config.log_every, sample_every=min(config.sample_every, steps),
                    checkpoint_every=config.checkpoint_every, phase=phase, retention=retention,
                )
                if console:
                    console.print(f"{phase}: {steps} steps, batch {config.batch_for(config.scales[index])}")
                Trainer(method, out_dir, options, console=console, on_step=on_step).fit(resume=resume)
        model = cls.load(out_dir, device)
        if distributed.is_main():
            model.save_scale_figure(pairs[-1][1], out_dir / "scales.png")
            update_run(out_dir, reconstruction_psnr=reconstruction_psnr(model.pyramid, pairs))
        return model

    @classmethod
    def load(cls, run_dir: Path, device: str = "auto") -> CoSinGAN:
        record = read_run(run_dir)
        if record["method"] != cls.name:
            raise InputError(run_dir, f"is a '{record['method']}' run, not cosingan")
        config = config_from_dict(CoSinGANConfig, record["config"], f"{run_dir}/run.json")
        pyramid = Pyramid(config)
        checkpoints = []
        for index in range(len(config.scales)):
            for stage, modules in ((1, pyramid.stage1), (2, pyramid.stage2)):
                path = latest_checkpoint(Path(run_dir) / phase_name(config, index, stage))
                steps = config.stage1_steps if stage == 1 else config.stage2_steps
                checkpoint = read_checkpoint(path) if path else None
                if checkpoint is None or checkpoint.step < steps:
                    raise InputError(run_dir, f"is not fully trained ({phase_name(config, index, stage)} unfinished); continue it with --resume")
                restore(checkpoint, {"generator": modules[index]}, {})  # the discriminator is not needed to synthesize
                checkpoints.append(path)
        return cls(config, pyramid, checkpoints, resolve_device(device))

    @property
    def checkpoint_sha256(self) -> str:
        digest = hashlib.sha256()
        for path in self.checkpoints:
            digest.update(file_sha256(path).encode())
        return digest.hexdigest()

    @property
    def output_size(self) -> int:
        return self.config.scales[-1]

    def check_conditions(self, conditions: Path, typed: bool) -> None:
        """A typed pyramid (condition=typed) would render an untyped set's infection (label 2) as GGO only."""
        if self.pyramid.typed and not typed:
            raise InputError(conditions, "labels infection without GGO / consolidation types, but this CoSinGAN was trained with "
                                         "condition=typed and would render all of it as GGO; use a typed condition set or a merged-condition run")

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, seed: int, diversify: str = "none") -> torch.Tensor:
        """(N, H, W) labels -> (N, 1, S, S) images at the largest scale S; diversify none | dropout | rc."""
        if diversify not in DIVERSIFIERS:
            raise InputError("--diversify", f"cosingan supports {', '.join(DIVERSIFIERS)} (and fusion with --fuse-with), not '{diversify}'")
        torch.manual_seed(seed)
        rc = (torch.Generator().manual_seed(seed), self.config.rc_deltas) if diversify == "rc" else None
        conditions = [c.to(self.device) for c in scale_conditions(labels.cpu(), self.config.scales, len(self.config.scales) - 1, rc, self.pyramid.typed)]
        self.pyramid.eval()
        set_dropout_active(self.pyramid, diversify == "dropout")
        output, _ = self.pyramid.run(conditions, len(self.config.scales) - 1)
        set_dropout_active(self.pyramid, False)
        return output.float().cpu()

    @torch.no_grad()
    def save_scale_figure(self, label: torch.Tensor, path: Path, panel: int = 128) -> Path:
        """Fig. 8: for one condition, every scale's stage-1 and stage-2 output, resized to ``panel`` px."""
        conditions = [c.to(self.device) for c in scale_conditions(label.cpu(), self.config.scales, len(self.config.scales) - 1, typed=self.pyramid.typed)]
        _, stages = self.pyramid.run(conditions, len(self.config.scales) - 1, with_stages=True)
        images = []
        for o_s, o_r in stages:
            for image in (o_s, o_r):
                images.append(F.interpolate(image.float(), size=(panel, panel), mode="bilinear", align_corners=False)[0, 0].cpu().numpy())
        return save_grid(path, images, None, columns=2 * min(len(stages), 5))
