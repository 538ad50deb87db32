"""Global-local conditional GAN for mask -> lung CT (Jiang et al. 2020), with its comparison methods.

Variants (``variant``), each a ``radsynth train`` method:

* ``globallocal`` (the paper): ``GlobalLocalGenerator`` trained in three steps (III-A): G1 alone on
  the half-resolution condition (phase ``step1_global``), G2 alone (``step2_local``), then both
  jointly (``step3_joint``); judged by the multi-resolution discriminator on randomly sampled
  70 x 70 patches (III-B); loss: cGAN (eq. 2) + lambda 10 x feature matching (eq. 3).
* ``pix2pixhd``: the same generator trained as pix2pixHD does (global, then joint), its
  discriminators judging whole images (no patch sampling).
* ``spade``: MONAI's SPADE decoder as generator (one phase, ``train``), same discriminator and losses.

The condition is the one-hot label map (background, lung, GGO, consolidation), as pix2pixHD and
SPADE take semantic maps. With ``region='lung'`` (III-D) the networks synthesize the lung region
only: the target is the real image with everything outside the lung (label 0) set to -1, the
generator's output is masked the same way before the discriminator sees it, and synthesis writes
that lung-only image plus the "complemented" image: the synthetic lung pasted into the real
image's non-lung area (``complement``), equal to the real image outside the lung.

Schedule (IV-A): 20 epochs per training step, lr 2e-4 constant for the first half then linear to 0,
Adam(0.5, 0.999), batch 16. The paper expands 300 training slices to 12,000 by augmentation
(Table I); radsynth augments on the fly, so an "epoch" is ``augment_copies`` (40) augmented copies
of every training slice. The paper does not say how the 20 epochs divide over the three steps;
radsynth runs the whole schedule in each step. Augmentation (IV-A: random resize and crop,
rotation, Gaussian noise, elastic transform) magnitudes are not given; ``data.augment.JIANG`` and
``noise_std`` name radsynth's choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from radsynth import distributed
from radsynth.config import check_range, config_from_dict, config_to_dict
from radsynth.data.augment import JIANG, augment_pair
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.losses import AdversarialLoss, FeatureMatchingLoss
from radsynth.nets.global_local import GlobalLocalGenerator
from radsynth.nets.multires_discriminator import MultiResolutionPatchDiscriminator
from radsynth.nets.spade_generator import SPADE_CHANNELS, SpadeGenerator
from radsynth.synth.base import Synthesizer, TrainingData, load_training_data, read_run, start_run, update_run
from radsynth.training.checkpoint import Retention, file_sha256, latest_checkpoint, read_checkpoint, restore
from radsynth.synth.conditions import NUM_LABELS, one_hot_condition
from radsynth.training.schedule import LinearDecay
from radsynth.training.trainer import Trainer, TrainerOptions, amp_autocast, resolve_device

VARIANTS = ("globallocal", "pix2pixhd", "spade")
PHASES = {
    "globallocal": ("step1_global", "step2_local", "step3_joint"),  # III-A: three-step training
    "pix2pixhd": ("step1_global", "step3_joint"),  # pix2pixHD: global, then global + local
    "spade": ("train",),
}
REGIONS = ("lung", "full")


@dataclass(frozen=True)
class GlobalLocalConfig:
    """Global-local cGAN and its comparisons. Defaults: Jiang et al. 2020 section III and IV-A."""

    variant: str = "globallocal"
    size: int = 512  # IV-A: slices rescaled from 630 to 512
    ngf: int = 64  # Fig. 3: first conv 7x7, 64 channels
    global_downsampling: int = 3  # Fig. 3: 256 -> 32
    global_blocks: int = 9  # III-A: nine residual blocks
    local_blocks: int = 3  # pix2pixHD code (Fig. 4 gives no count)
    spade_channels: tuple[int, ...] = SPADE_CHANNELS  # SPADE generator widths (spade variant)
    ndf: int = 64  # pix2pixHD
    d_layers: int = 3  # 70 x 70 PatchGAN (III-B follows SPADE / pix2pix)
    num_d: int = 2  # III-B: full- and half-resolution discriminators
    patch_size: int = 70  # III-B: random 70 x 70 patches (the pix2pixhd variant judges whole images)
    patches_per_image: int = 4  # radsynth's choice ("a series of patches")
    gan_mode: str = "vanilla"  # eq. 2: log D + log(1 - D)
    lambda_fm: float = 10.0  # IV-A: feature matching weight
    lambda_l1: float = 0.0  # not in the paper (0: off); an optional L1 to the target for very short runs
    batch_size: int = 16  # IV-A
    epochs: int = 20  # IV-A, per training step (see the module docstring)
    augment_copies: int = 40  # Table I: 300 slices -> 12,000 augmented
    steps: int = 0  # steps per training step; 0: epochs * ceil(slices * augment_copies / batch_size)
    lr: float = 2e-4  # IV-A
    beta1: float = 0.5  # IV-A
    beta2: float = 0.999  # IV-A
    decay_fraction: float = 0.5  # IV-A: constant for 10 of 20 epochs, then linear to 0
    noise_std: float = 0.01  # IV-A Gaussian-noise augmentation, std on the [-1, 1] scale (radsynth's choice)
    region: str = "lung"  # III-D: synthesize the lung region, paste into the real non-lung area
    infected_only: bool = True  # IV-A: only slices with infection (373 of 829)
    slice_ids: tuple[str, ...] = ()  # slices of the prepared set to learn from; empty: its train split
    amp: bool = True  # bf16 autocast on CUDA (no effect on CPU)
    seed: int = 0
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got '{self.variant}'")
        if self.region not in REGIONS:
            raise ValueError(f"region must be one of {REGIONS}, got '{self.region}'")
        step = 2 ** len(self.spade_channels) if self.variant == "spade" else 2 * 2**self.global_downsampling
        if self.size < 16 or self.size % step:
            raise ValueError(f"size must be >= 16 and divisible by {step} for the {self.variant} generator, got {self.size}")
        check_range(vars(self), ("batch_size", "epochs", "augment_copies", "ngf", "ndf", "d_layers", "num_d", "patches_per_image", "log_every", "sample_every", "checkpoint_every"), low=1)
        check_range(vars(self), ("steps", "patch_size", "noise_std", "lambda_fm", "lambda_l1"), low=0)
        check_range(vars(self), ("decay_fraction",), low=0, high=1)
        if self.ngf % 2:
            raise ValueError(f"ngf must be even, got {self.ngf}")
        if self.lr <= 0:
            raise ValueError("lr must be positive")

    @property
    def phases(self) -> tuple[str, ...]:
        return PHASES[self.variant]

    def phase_steps(self, n_slices: int) -> int:
        """Steps of each training step: ``steps``, else the paper's epochs over the augmented set."""
        return self.steps or self.epochs * math.ceil(n_slices * self.augment_copies / self.batch_size)


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    # CPU: 128 px, half-width networks, batch 4, 1000 steps per training step (measured: ct-rp9-dev in about 15 min)
    "quick": {
        "size": 128, "ngf": 32, "ndf": 32, "batch_size": 4, "steps": 1000, "spade_channels": [256, 128, 64, 32],
        "sample_every": 250, "checkpoint_every": 250,
    },
}


def region_weight(label: torch.Tensor, region: str) -> torch.Tensor:
    """(N, H, W) labels -> (N, 1, H, W) float: 1 inside the synthesized region (lung: label > 0), else 0."""
    if region == "full":
        return torch.ones_like(label, dtype=torch.float32)[:, None]
    return (label > 0).float()[:, None]


def restrict(image: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Keep ``image`` where ``weight`` is 1 and set the rest to the background value -1 (soft at edges)."""
    return weight * image + (1.0 - weight) * -1.0


def half(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H/2, W/2) by 2x2 averaging."""
    return F.avg_pool2d(x, 2)


class GANPhase:
    """One training step of a variant for the ``Trainer``: cGAN + feature matching (eqs. 1-3).

    ``forward`` maps the full-resolution one-hot condition to an image at the phase resolution
    (half for the global step). ``trainable`` are the generator parts this phase updates; ``kept``
    the names of ``modules()`` a later phase or synthesis reads once this one has finished.
    """

    def __init__(
        self,
        config: GlobalLocalConfig,
        data: TrainingData,
        device: torch.device,
        forward: Callable[[torch.Tensor], torch.Tensor],
        trainable: dict[str, nn.Module],
        discriminator: MultiResolutionPatchDiscriminator,
        half_resolution: bool,
        steps: int,
        kept: tuple[str, ...] = ("generator",),
    ) -> None:
        self.config = config
        self.kept = kept
        self.device = device
        self.images = data.images.to(device)
        self.labels = data.labels.to(device)
        self.forward = forward
        self.trainable = trainable
        self.discriminator = discriminator
        self.half_resolution = half_resolution
        betas = (config.beta1, config.beta2)
        generator_params = [p for module in trainable.values() for p in module.parameters()]
        self._optimizers = {
            "generator": torch.optim.Adam(generator_params, lr=config.lr, betas=betas),
            "discriminator": torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=betas),
        }
        schedule = LinearDecay(config.lr, round(config.decay_fraction * steps), steps)
        self._schedules = {"generator": schedule, "discriminator": schedule}
        self.adversarial = AdversarialLoss(config.gan_mode)
        self.feature_matching = FeatureMatchingLoss(scale_weights=[1.0] * config.num_d)  # eq. 1 sums over D1, D2
        area = (self.labels > 0).flatten(1).sum(1)  # samples: the 4 slices with the most lung, in set order
        self.sample_index = area.topk(min(4, len(area))).indices.sort().values

    def modules(self) -> dict[str, nn.Module]:
        return {**self.trainable, "discriminator": self.discriminator}

    def kept_modules(self) -> tuple[str, ...]:
        return self.kept

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def schedules(self) -> dict[str, LinearDecay]:
        return self._schedules

    def _batch(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Augmented (condition (N, 4, S, S), target (N, 1, s, s), region weight (N, 1, s, s)) at the phase resolution s."""
        index = torch.randint(len(self.images), (self.config.batch_size,), generator=generator).to(self.device)
        image, label = augment_pair(self.images[index], self.labels[index], JIANG, generator)
        if self.config.noise_std:
            noise = torch.randn(image.shape, generator=generator).to(self.device)
            image = (image + self.config.noise_std * noise).clamp(-1.0, 1.0)
        image, label = distributed.rank_share(image, label)  # batch_size is the global batch; this rank's slice of it
        return self._targets(image, label)

    def _targets(self, image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        condition = one_hot_condition(label)
        weight = region_weight(label, self.config.region)
        target = restrict(image, weight)
        if self.half_resolution:
            target, weight = half(target), half(weight)
        return condition, target, weight

    def _judge(self, condition: torch.Tensor, image: torch.Tensor, boxes) -> list[list[torch.Tensor]]:
        if self.half_resolution:
            condition = half(condition)
        return self.discriminator(torch.cat([condition, image], 1), boxes)

    def _adversarial(self, predictions: list[list[torch.Tensor]], real: bool, for_discriminator: bool = True) -> torch.Tensor:
        return sum(self.adversarial(scale, real, for_discriminator) for scale in predictions)  # eq. 1: sum over D_i

    def train_step(self, step: int, generator: torch.Generator) -> dict[str, float]:
        for module in (*self.trainable.values(), self.discriminator):
            module.train()
        condition, real, weight = self._batch(generator)
        batch = self.config.batch_size  # the global batch: every rank draws all its patches and keeps its images' rows
        boxes = self.discriminator.sample_boxes(batch, real.shape[-2], real.shape[-1], generator)
        boxes = [None if b is None else distributed.rank_share(b.view(batch, -1, 2))[0].reshape(-1, 2) for b in boxes]
        autocast = amp_autocast(self.device, self.config.amp)
        with autocast:
            fake = restrict(self.forward(condition), weight)
            self.discriminator.requires_grad_(True)
            d_fake = self._judge(condition, fake.detach(), boxes)
            d_real = self._judge(condition, real, boxes)
            loss_d = 0.5 * (self._adversarial(d_fake, False) + self._adversarial(d_real, True))
        self._optimizers["discriminator"].zero_grad(set_to_none=True)
        loss_d.backward()
        self._optimizers["discriminator"].step()
        self.discriminator.requires_grad_(False)
        with autocast:
            g_fake = self._judge(condition, fake, boxes)
            with torch.no_grad():  # the real image's features from the same (updated) D as the fake's, as pix2pixHD
                g_real = self._judge(condition, real, boxes)
            loss_adv = self._adversarial(g_fake, True, for_discriminator=False)
            loss_fm = self.config.lambda_fm * self.feature_matching(g_fake, g_real)
            loss_g = loss_adv + loss_fm
            losses = {"d": loss_d.item(), "g_adv": loss_adv.item(), "g_fm": loss_fm.item()}
            if self.config.lambda_l1:
                loss_l1 = self.config.lambda_l1 * F.l1_loss(fake.float(), real)
                loss_g = loss_g + loss_l1
                losses["g_l1"] = loss_l1.item()
        self._optimizers["generator"].zero_grad(set_to_none=True)
        loss_g.backward()
        self._optimizers["generator"].step()
        self.discriminator.requires_grad_(True)
        return losses

    @torch.no_grad()
    def samples(self) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        for module in self.trainable.values():
            module.eval()
        condition, target, weight = self._targets(self.images[self.sample_index], self.labels[self.sample_index])
        fake = restrict(self.forward(condition), weight).float()
        images, labels = [], []
        for i in range(len(self.sample_index)):
            images += [target[i, 0].cpu().numpy(), fake[i, 0].cpu().numpy()]
            overlay = self.labels[self.sample_index[i]]
            overlay = overlay[::2, ::2] if self.half_resolution else overlay
            labels += [overlay.cpu().numpy().astype(np.uint8), None]
        return images, labels


class Networks(nn.Module):
    """The generator of a variant and the discriminators of its phases."""

    def __init__(self, config: GlobalLocalConfig) -> None:
        super().__init__()
        self.config = config
        if config.variant == "spade":
            self.generator: nn.Module = SpadeGenerator(NUM_LABELS, config.size, tuple(config.spade_channels))
        else:
            self.generator = GlobalLocalGenerator(
                NUM_LABELS, 1, config.ngf, config.global_downsampling, config.global_blocks, config.local_blocks
            )
        patch = 0 if config.variant == "pix2pixhd" else config.patch_size

        def discriminator() -> MultiResolutionPatchDiscriminator:
            return MultiResolutionPatchDiscriminator(
                NUM_LABELS + 1, config.num_d, config.ndf, config.d_layers, patch_size=patch, patches_per_image=config.patches_per_image
            )

        self.discriminator = discriminator()  # full resolution: step 2, step 3 (continued from step 2), spade
        self.global_discriminator = discriminator() if "step1_global" in config.phases else None  # half resolution, step 1

    def synthesize(self, condition: torch.Tensor) -> torch.Tensor:
        """(N, 4, S, S) one-hot condition -> (N, 1, S, S) in [-1, 1] (the final generator)."""
        if self.config.variant == "spade":
            return self.generator(condition)
        return self.generator(condition, "joint")

    def phase(self, name: str, data: TrainingData, device: torch.device, steps: int) -> GANPhase:
        """The ``GANPhase`` of training step ``name``. What a finished phase keeps: step 1 G1 (its
        half-resolution discriminator is used by no later phase), step 2 G2 and the full-resolution
        discriminator (step 3 continues training it), step 3 / spade's ``train`` the generator."""
        config, g = self.config, self.generator
        if name == "step1_global":
            return GANPhase(config, data, device, lambda c: g(c, "global"), {"global": g.global_net}, self.global_discriminator, True, steps,
                            kept=("global",))
        if name == "step2_local":
            return GANPhase(config, data, device, lambda c: g(c, "local"), {"local": g.local_modules()}, self.discriminator, False, steps,
                            kept=("local", "discriminator"))
        return GANPhase(config, data, device, self.synthesize, {"generator": g}, self.discriminator, False, steps, kept=("generator",))


def training_slices(path: Path, config: GlobalLocalConfig) -> TrainingData:
    """The train-split slices (or ``slice_ids``) at the model size; only infected ones when asked (IV-A)."""
    info = SliceSet(path, cache=False).info
    if config.region == "lung" and not info.get("has_lung", True):
        raise InputError(path, "has no lung masks (has_lung=false); lung-only synthesis needs them (or use --set region=full)")
    data = load_training_data(path, config.size, config.slice_ids)
    if config.infected_only and not config.slice_ids:
        keep = [i for i in range(len(data.ids)) if bool((data.labels[i] >= 2).any())]
        if not keep:
            raise InputError(path, "no training slice shows infection; use --set infected_only=false to train on all")
        data = TrainingData(data.images[keep], data.labels[keep], [data.ids[i] for i in keep], data.patients, data.source)
    if config.region == "lung" and not bool((data.labels > 0).any()):
        raise InputError(path, "the training slices hold no lung or infection pixels to synthesize")
    return data


class GlobalLocal(Synthesizer):
    """Mask -> (lung) CT slice: global-local cGAN, pix2pixHD or SPADE."""

    name = "globallocal"

    def __init__(self, config: GlobalLocalConfig, networks: Networks, checkpoint: Path, device: torch.device) -> None:
        self.config = config
        self.networks = networks.to(device).eval()
        self.checkpoint = checkpoint
        self.device = device

    @classmethod
    def fit(
        cls,
        data: Path,
        config: GlobalLocalConfig,
        out_dir: Path,
        resume: bool = False,
        force: bool = False,
        device: str = "auto",
        console: Console | None = None,
        on_step: Callable[[int], None] | None = None,
        retention: Retention = Retention(),
    ) -> GlobalLocal:
        """Train the variant's phases in order (resumable). ``retention``: which checkpoints stay on disk (``--keep-checkpoints`` / ``--keep-last``), not part of the config."""
        torch_device = resolve_device(device)
        out_dir = Path(out_dir)
        training = training_slices(Path(data), config)
        start_run(out_dir, config.variant, config_to_dict(config), training, resume, force)
        steps = config.phase_steps(len(training.ids))
        update_run(out_dir, phases=list(config.phases), steps_per_phase=steps, condition_input="one-hot label map (bg, lung, GGO, consolidation)")
        torch.manual_seed(config.seed)  # weight initialisation is part of the run's reproducibility
        networks = Networks(config).to(torch_device)
        for phase in config.phases:
            method = networks.phase(phase, training, torch_device, steps)
            options = TrainerOptions(
                steps=steps, seed=config.seed, log_every=config.log_every, sample_every=min(config.sample_every, steps),
                checkpoint_every=config.checkpoint_every, phase=phase, retention=retention,
            )
            if console:
                console.print(f"{phase}: {steps} steps, batch {config.batch_size}, {len(training.ids)} training slices")
            Trainer(method, out_dir, options, console=console, on_step=on_step).fit(resume=resume)
        return cls.load(out_dir, device)

    @classmethod
    def load(cls, run_dir: Path, device: str = "auto") -> GlobalLocal:
        record = read_run(run_dir)
        if record["method"] not in VARIANTS:
            raise InputError(run_dir, f"is a '{record['method']}' run, not {' / '.join(VARIANTS)}")
        config = config_from_dict(GlobalLocalConfig, record["config"], f"{run_dir}/run.json")
        final = config.phases[-1]
        path = latest_checkpoint(Path(run_dir) / final)
        checkpoint = read_checkpoint(path) if path else None
        if checkpoint is None or checkpoint.step < record.get("steps_per_phase", 0):
            raise InputError(run_dir, f"is not fully trained ({final} unfinished); continue it with --resume")
        networks = Networks(config)
        restore(checkpoint, {"generator": networks.generator}, {})  # the discriminators are not needed to synthesize
        return cls(config, networks, path, resolve_device(device))

    @property
    def checkpoint_sha256(self) -> str:
        return file_sha256(self.checkpoint)

    @property
    def output_size(self) -> int:
        return self.config.size

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, seed: int, diversify: str = "none") -> torch.Tensor:
        """(N, S, S) labels -> (N, 1, S, S) in [-1, 1]; with region 'lung', -1 outside the lung."""
        if diversify != "none":
            raise InputError("--diversify", f"{self.config.variant} has no dropout or noise input to diversify with; use 'none'")
        torch.manual_seed(seed)
        labels = labels.to(self.device)
        out = self.networks.synthesize(one_hot_condition(labels)).float()
        return restrict(out, region_weight(labels, self.config.region)).cpu()

    def complement(self, real: torch.Tensor, labels: torch.Tensor, synthetic: torch.Tensor) -> torch.Tensor | None:
        """III-D: the synthetic lung pasted into the real image's non-lung area; (N, 1, S, S) in [-1, 1].

        Equal to ``real`` wherever the label is 0. None when the whole image is synthesized.
        """
        if self.config.region == "full":
            return None
        inside = region_weight(labels, "lung").bool()
        return torch.where(inside, synthetic, real)
