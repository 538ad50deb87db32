"""pix2pix for mask -> CT, the CoSinGAN paper's baselines (section 3.2.3).

``pix2pix``: UNet generator + PatchGAN discriminator on (condition, image), vanilla GAN loss and
the weighted pixel-level L1 (WPPL, eq. 7) in place of pix2pix's L1, with pix2pix's weight 100.
``enhanced``: the same networks with CoSinGAN's mixed reconstruction loss (eq. 6: WPPL 10,
MS-SSIM 1, VGG feature 10, UNet feature 10); see ``synth/feature_extractors.py`` for the feature networks.
The condition is the CoSinGAN encoding (bg 0, lung 128, infection 255 -> [-1, 1]); ``condition='onehot'``
gives the four schema labels as channels (GGO and consolidation apart), the input of the global-local cGAN
that Jiang et al. compare pix2pix with.

Training follows CoSinGAN section 3.2.1 (stage 1): Adam(0.5, 0.999), lr 2e-4, batch 4, 4000
epochs with linear decay to 0 after 2000, strong augmentation. With one or two training slices an
"epoch" is one mini-batch of augmented copies; radsynth counts it as one step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from radsynth import distributed
from radsynth.config import check_range, config_from_dict, config_to_dict
from radsynth.data.augment import JIANG, NONE, STRONG, WEAK, augment_pair
from radsynth.errors import InputError
from radsynth.losses import AdversarialLoss, FeatureLoss, MSSSIMLoss, WeightedPixelL1
from radsynth.nets import PatchDiscriminator, UNetGenerator, set_dropout_active
from radsynth.synth.base import DIVERSIFIERS, Synthesizer, TrainingData, load_training_data, read_run, start_run, update_run
from radsynth.training.checkpoint import Retention, file_sha256, latest_checkpoint, load_module_weights
from radsynth.synth.conditions import NUM_LABELS, condition_tensor, one_hot_condition
from radsynth.synth.feature_extractors import FeatureSpec, build_feature_losses, load_given_extractors
from radsynth.synth.reconstruction import mixed_reconstruction
from radsynth.training.schedule import LinearDecay
from radsynth.training.trainer import Trainer, TrainerOptions, amp_autocast, resolve_device

VARIANTS = ("pix2pix", "enhanced")
AUGMENTS = {"strong": STRONG, "weak": WEAK, "none": NONE, "jiang": JIANG}
CONDITIONS = ("cosingan", "onehot")


def cosingan_num_downs(size: int) -> int:
    """CoSinGAN's UNet depth per scale: (4,4,5,5,6,6,7,7,8) for (32,...,512) = floor(log2 size) - 1."""
    return int(math.floor(math.log2(size))) - 1


@dataclass(frozen=True)
class Pix2PixConfig:
    """pix2pix / enhanced pix2pix for mask -> CT. Defaults: CoSinGAN section 3.2.1 / 3.2.3."""

    variant: str = "pix2pix"
    size: int = 512  # CoSinGAN compares the baselines at 512 x 512 (section 3.2.3)
    ngf: int = 64  # pix2pix appendix 6.1.1
    ndf: int = 64
    num_downs: int = 0  # 0: CoSinGAN's rule floor(log2 size) - 1 (section 2.1)
    d_layers: int = 3  # pix2pix 70x70 PatchGAN
    norm: str = "batch"
    dropout: float = 0.5  # pix2pix
    gan_mode: str = "vanilla"  # pix2pix's adversarial loss (CoSinGAN section 2.2)
    batch_size: int = 4  # CoSinGAN 3.2.1
    steps: int = 4000  # CoSinGAN 3.2.1: 4000 epochs (stage 1)
    lr: float = 2e-4  # CoSinGAN 3.2.1
    beta1: float = 0.5  # CoSinGAN 3.2.1
    beta2: float = 0.999
    decay_fraction: float = 0.5  # CoSinGAN 3.2.1: constant, then linear decay to 0 (0.05 %/epoch) after 2000 of 4000 epochs
    lambda_wppl: float = 100.0  # pix2pix's L1 weight, applied to WPPL (pix2pix variant)
    wppl_weights: tuple[float, float, float] = (0.1, 0.5, 1.0)  # CoSinGAN 3.2.1: bg / lung / infection
    enhanced_lambdas: tuple[float, float, float, float] = (10.0, 1.0, 10.0, 10.0)  # eq. 6: WPPL, MS-SSIM, VGG, UNet (3.2.1)
    vgg_weights: str = ""  # local VGG19 weights file; empty: the VGG term's weight goes to the UNet term (DESIGN.md)
    unet_features: str = ""  # a segmenter checkpoint for MS-FUL; empty: train one on the same slices
    feature_unet_steps: int = 300  # steps to train that UNet (radsynth's choice)
    augment: str = "strong"  # CoSinGAN: SA for the baselines and stage 1; jiang: Jiang IV-A's augmentation
    condition: str = "cosingan"  # cosingan: one grey channel bg / lung / infection (3.2.1); onehot: the 4 schema labels (Jiang's input)
    slice_ids: tuple[str, ...] = ()  # slices of the prepared set to learn from; empty: its train split
    amp: bool = True  # bf16 autocast on CUDA (no effect on CPU)
    seed: int = 0
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got '{self.variant}'")
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {tuple(AUGMENTS)}, got '{self.augment}'")
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got '{self.condition}'")
        if self.variant == "pix2pix" and (self.vgg_weights or self.unet_features):
            raise ValueError("vgg_weights and unet_features feed the feature losses of enhanced-pix2pix; plain pix2pix has none")
        if self.size < 16:
            raise ValueError(f"size must be >= 16, got {self.size}")
        downs = self.depth
        if self.size % 2**downs:
            raise ValueError(f"size {self.size} is not divisible by 2**num_downs = {2**downs}")
        check_range(vars(self), ("steps", "batch_size", "ngf", "ndf", "log_every", "sample_every", "checkpoint_every"), low=1)
        if not 0 <= self.decay_fraction <= 1:
            raise ValueError(f"decay_fraction must lie in [0, 1], got {self.decay_fraction}")
        if self.lr <= 0:
            raise ValueError("lr must be positive")

    @property
    def depth(self) -> int:
        return self.num_downs or cosingan_num_downs(self.size)

    @property
    def condition_channels(self) -> int:
        return NUM_LABELS if self.condition == "onehot" else 1


def encode_condition(label: torch.Tensor, config: Pix2PixConfig) -> torch.Tensor:
    """(N, H, W) schema labels -> the generator's condition: (N, 1, H, W) grey levels or (N, 4, H, W) one-hot."""
    return one_hot_condition(label) if config.condition == "onehot" else condition_tensor(label)


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    # CPU: 64 px, narrower nets, 400 steps (a few minutes on 2 cores)
    "quick": {"size": 64, "ngf": 32, "ndf": 32, "steps": 400, "sample_every": 100, "checkpoint_every": 100, "feature_unet_steps": 150},
}


class Pix2PixMethod:
    """One pix2pix training phase for the ``Trainer``."""

    def __init__(self, config: Pix2PixConfig, data: TrainingData, device: torch.device, feature_losses: dict[str, FeatureLoss]) -> None:
        self.config = config
        self.device = device
        self.images = data.images.to(device)
        self.labels = data.labels.to(device)
        torch.manual_seed(config.seed)  # weight initialisation is part of the run's reproducibility
        self.generator = build_generator(config).to(device)
        self.discriminator = PatchDiscriminator(config.condition_channels + 1, ndf=config.ndf, n_layers=config.d_layers, norm=config.norm).to(device)
        betas = (config.beta1, config.beta2)
        self._optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas),
        }
        schedule = LinearDecay(config.lr, round(config.decay_fraction * config.steps), config.steps)
        self._schedules = {"generator": schedule, "discriminator": schedule}
        self.adversarial = AdversarialLoss(config.gan_mode)
        self.wppl = WeightedPixelL1(config.wppl_weights)
        self.msssim = MSSSIMLoss() if config.variant == "enhanced" else None
        self.feature_losses = feature_losses
        self.augment = AUGMENTS[config.augment]
        self.sample_index = torch.arange(min(4, len(self.images)))

    def _autocast(self) -> torch.autocast:
        return amp_autocast(self.device, self.config.amp)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def kept_modules(self) -> tuple[str, ...]:
        """After training: the generator, all that synthesis reads."""
        return ("generator",)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def schedules(self) -> dict[str, LinearDecay]:
        return self._schedules

    def _batch(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(len(self.images), (self.config.batch_size,), generator=generator)
        real, label = augment_pair(self.images[index.to(self.device)], self.labels[index.to(self.device)], self.augment, generator)
        return distributed.rank_share(real, label)  # batch_size is the global batch; this rank's slice of it

    def reconstruction(self, fake: torch.Tensor, real: torch.Tensor, label: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted reconstruction terms (already multiplied by their lambdas)."""
        if self.config.variant == "pix2pix":
            return {"wppl": self.config.lambda_wppl * self.wppl(fake, real, label)}
        return mixed_reconstruction(self.config.enhanced_lambdas, self.wppl, self.msssim, self.feature_losses, fake, real, label)

    def train_step(self, step: int, generator: torch.Generator) -> dict[str, float]:
        self.generator.train()
        self.discriminator.train()
        real, label = self._batch(generator)
        condition = encode_condition(label, self.config)
        with self._autocast():
            fake = self.generator(condition)
            # discriminator: eq. 5
            self.discriminator.requires_grad_(True)
            d_fake = self.discriminator(torch.cat([condition, fake.detach()], 1))
            d_real = self.discriminator(torch.cat([condition, real], 1))
            loss_d = 0.5 * (self.adversarial(d_fake, False) + self.adversarial(d_real, True))
        self._optimizers["discriminator"].zero_grad(set_to_none=True)
        loss_d.backward()
        self._optimizers["discriminator"].step()
        # generator: eq. 4
        self.discriminator.requires_grad_(False)
        with self._autocast():
            loss_adv = self.adversarial(self.discriminator(torch.cat([condition, fake], 1)), True, for_discriminator=False)
            terms = self.reconstruction(fake.float(), real, label)
            loss_g = loss_adv + sum(terms.values())
        self._optimizers["generator"].zero_grad(set_to_none=True)
        loss_g.backward()
        self._optimizers["generator"].step()
        return {"d": loss_d.item(), "g_adv": loss_adv.item(), **{k: v.item() for k, v in terms.items()}}

    @torch.no_grad()
    def samples(self) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        self.generator.eval()
        fake = self.generator(encode_condition(self.labels[self.sample_index], self.config))
        images, labels = [], []
        for i in range(len(self.sample_index)):
            images += [self.images[i, 0].cpu().numpy(), fake[i, 0].cpu().numpy()]
            labels += [self.labels[i].cpu().numpy().astype(np.uint8), None]
        return images, labels


def build_generator(config: Pix2PixConfig) -> UNetGenerator:
    return UNetGenerator(config.condition_channels, 1, num_downs=config.depth, ngf=config.ngf, norm=config.norm, dropout=config.dropout)


class Pix2Pix(Synthesizer):
    """pix2pix / enhanced pix2pix, mask -> CT slice."""

    name = "pix2pix"

    def __init__(self, config: Pix2PixConfig, generator: UNetGenerator, checkpoint: Path, device: torch.device) -> None:
        self.config = config
        self.generator = generator
        self.checkpoint = checkpoint
        self.device = device

    @classmethod
    def fit(
        cls,
        data: Path,
        config: Pix2PixConfig,
        out_dir: Path,
        resume: bool = False,
        force: bool = False,
        device: str = "auto",
        console: Console | None = None,
        on_step=None,
        retention: Retention = Retention(),
    ) -> Pix2Pix:
        """Train (resumable). ``retention``: which checkpoints stay on disk (``--keep-checkpoints`` / ``--keep-last``), not part of the config."""
        torch_device = resolve_device(device)
        training = load_training_data(Path(data), config.size, config.slice_ids)
        spec = FeatureSpec(config.vgg_weights, config.unet_features, config.feature_unet_steps, config.seed)
        given = load_given_extractors(spec)  # bad files stop before anything is written (plain pix2pix names none)
        start_run(Path(out_dir), config.variant, config_to_dict(config), training, resume, force)
        feature_losses, descriptions = {}, {}
        if config.variant == "enhanced":
            feature_losses, descriptions = build_feature_losses(spec, training, torch_device, Path(out_dir), console, given=given)
        update_run(Path(out_dir), extractors=descriptions)
        method = Pix2PixMethod(config, training, torch_device, feature_losses)
        options = TrainerOptions(
            steps=config.steps, seed=config.seed, log_every=config.log_every,
            sample_every=config.sample_every, checkpoint_every=config.checkpoint_every, phase="train", retention=retention,
        )
        Trainer(method, Path(out_dir), options, console=console, on_step=on_step).fit(resume=resume)
        return cls.load(Path(out_dir), device)

    @classmethod
    def load(cls, run_dir: Path, device: str = "auto") -> Pix2Pix:
        record = read_run(run_dir)
        if record["method"] not in VARIANTS:
            raise InputError(run_dir, f"is a '{record['method']}' run, not pix2pix")
        config = config_from_dict(Pix2PixConfig, record["config"], f"{run_dir}/run.json")
        checkpoint = latest_checkpoint(Path(run_dir) / "train")
        if checkpoint is None:
            raise InputError(run_dir, "has no checkpoint yet; train it first")
        torch_device = resolve_device(device)
        generator = build_generator(config)
        load_module_weights(checkpoint, {"generator": generator})  # the discriminator is not needed to synthesize
        return cls(config, generator.to(torch_device).eval(), checkpoint, torch_device)

    @property
    def checkpoint_sha256(self) -> str:
        return file_sha256(self.checkpoint)

    @property
    def output_size(self) -> int:
        return self.config.size

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, seed: int, diversify: str = "none") -> torch.Tensor:
        if diversify not in DIVERSIFIERS:
            raise InputError("--diversify", f"pix2pix supports {', '.join(DIVERSIFIERS)}, not '{diversify}'")
        torch.manual_seed(seed)
        self.generator.eval()
        set_dropout_active(self.generator, diversify == "dropout")
        out = self.generator(encode_condition(labels.to(self.device), self.config))
        set_dropout_active(self.generator, False)
        return out.cpu()
