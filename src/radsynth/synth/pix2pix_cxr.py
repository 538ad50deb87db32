"""pix2pix for chest X-rays, Normal -> COVID-19 (Liang et al. 2021, sections II-III).

A conditional GAN G: x -> y with a U-Net generator (encoder Conv-BatchNorm-LeakyReLU, decoder
ConvTranspose-BatchNorm-Dropout(first 3 blocks)-ReLU, skip connections; ``UNetGenerator`` with
``order='post'``) and a discriminator of Conv-BatchNorm-ReLU blocks (``PatchDiscriminator`` with
``negative_slope=0``) that sees (input, image) pairs. Losses (section II-B): the discriminator sums
the sigmoid cross-entropy of a real pair against ones and of a generated pair against zeros; the
generator minimises the sigmoid cross-entropy of its pair against ones plus lambda = 100 times
the L1 distance between G(x) and a real COVID-19 image.

Pairing. The data hold no COVID-19 image of the same patient as a normal one, so the paper's
pairs are necessarily arbitrary; radsynth's reading: every training step takes the next
mini-batch of Normal train images (a fresh seeded permutation per epoch) and pairs each with a
COVID-19 train image drawn uniformly at random with replacement, independently at every step.
The target of the L1 term and the "real" pair of the discriminator is that drawn image; input and
target are augmented independently (random horizontal flip and up to 5 degrees rotation, III-A).

Images are grey, 224 x 224 (III-A; the paper used 3 identical channels for transfer learning,
radsynth exports 3 channels only on request). One epoch is one pass over the Normal train images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

from radsynth import distributed
from radsynth.config import check_range, config_from_dict, config_to_dict
from radsynth.data.augment import AugmentSpec
from radsynth.errors import InputError
from radsynth.losses import AdversarialLoss
from radsynth.nets import PatchDiscriminator, UNetGenerator, set_dropout_active
from radsynth.synth.base import read_run, start_run, update_run
from radsynth.training.checkpoint import Retention, file_sha256, latest_checkpoint, load_module_weights
from radsynth.synth.domains import DomainData, augment_images, epoch_batch, load_domains, random_batch, steps_per_epoch
from radsynth.training.schedule import LinearDecay
from radsynth.training.trainer import Trainer, TrainerOptions, amp_autocast, resolve_device
from radsynth.synth.translator import Translator

METHOD = "pix2pix-cxr"
MAX_DOWNS = 8  # pix2pix's 256 px U-Net halves 8 times (to 1 x 1)
# Liang III-A: "a random horizontal flip and a random 5-degree rotation"
AUGMENT = AugmentSpec(crop=(1.0, 1.0), rotate_deg=5.0, hflip=0.5, vflip=0.0, elastic_alpha=0.0)
NO_AUGMENT = AugmentSpec(crop=(1.0, 1.0), rotate_deg=0.0, hflip=0.0, vflip=0.0, elastic_alpha=0.0)
DIVERSIFIERS = ("none", "dropout")


def auto_num_downs(size: int) -> int:
    """The most halvings (at most 8) that divide ``size``: 5 at 224 (a 7 x 7 bottleneck), 8 at 256, 6 at 64."""
    downs = 0
    while downs < MAX_DOWNS and size % 2 ** (downs + 1) == 0:
        downs += 1
    return downs


@dataclass(frozen=True)
class Pix2PixCXRConfig:
    """pix2pix Normal -> COVID-19. Defaults: Liang et al. 2021 II-III; where silent, pix2pix (Isola et al. 2017)."""

    source: str = "Normal"  # Liang II-B: normal X-rays are the generator's input
    target: str = "COVID-19"  # the L1 target / real images
    size: int = 224  # Liang III-A: 224 x 224
    ngf: int = 64  # pix2pix appendix 6.1.1
    ndf: int = 64
    num_downs: int = 0  # 0: auto_num_downs(size) (Liang gives no depth; 224 allows 5 halvings)
    d_layers: int = 3  # pix2pix 70 x 70 PatchGAN
    d_negative_slope: float = 0.0  # Liang III-B: discriminator Conv-BatchNorm-ReLU
    conditional_d: bool = True  # a cGAN discriminator sees (input, image) (Liang II-B, eq. 2-3)
    norm: str = "batch"  # Liang III-B: batch normalisation
    dropout: float = 0.5  # pix2pix: 50 %
    dropout_blocks: int = 3  # Liang III-B: dropout in the first 3 decoder blocks
    gan_mode: str = "vanilla"  # Liang II-B: sigmoid cross-entropy
    lambda_l1: float = 100.0  # Liang II-B: lambda = 100
    batch_size: int = 1  # not given by Liang; pix2pix (and the TensorFlow pix2pix Liang's blocks follow): 1
    epochs: int = 100  # Liang III-B: 100 epochs
    steps: int = 0  # 0: epochs x ceil(|Normal train| / batch_size)
    lr: float = 2e-4  # not given by Liang; pix2pix appendix 6.2
    beta1: float = 0.5  # pix2pix appendix 6.2
    beta2: float = 0.999
    decay_fraction: float = 1.0  # Liang gives no schedule: constant learning rate (1.0 = no decay)
    augment: bool = True  # Liang III-A: random horizontal flip and 5-degree rotation
    amp: bool = True  # bf16 autocast on CUDA (no effect on CPU)
    seed: int = 0
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if self.source == self.target:
            raise ValueError(f"source and target must differ, both are '{self.source}'")
        if self.size < 16:
            raise ValueError(f"size must be >= 16, got {self.size}")
        if self.depth < 2:
            raise ValueError(f"size {self.size} allows only {self.depth} halvings; use a size divisible by 4 or more")
        if self.size % 2**self.depth:
            raise ValueError(f"size {self.size} is not divisible by 2**num_downs = {2**self.depth}")
        if not 0 <= self.dropout_blocks <= self.depth - 1:
            raise ValueError(f"dropout_blocks must be between 0 and {self.depth - 1} at this depth")
        check_range(vars(self), ("ngf", "ndf", "epochs", "batch_size", "log_every", "sample_every", "checkpoint_every", "d_layers"), low=1)
        if self.steps < 0 or self.lambda_l1 < 0 or self.d_negative_slope < 0:
            raise ValueError("steps, lambda_l1 and d_negative_slope must be >= 0")
        if not 0 <= self.decay_fraction <= 1:
            raise ValueError(f"decay_fraction must lie in [0, 1], got {self.decay_fraction}")
        if self.lr <= 0:
            raise ValueError("lr must be positive")

    @property
    def depth(self) -> int:
        return self.num_downs or auto_num_downs(self.size)


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    # CPU: 128 px (7 halvings), narrower nets, batch 4, 1500 steps (~105 epochs of 57 images; about 10 min on one CPU thread)
    "quick": {"size": 128, "ngf": 32, "ndf": 32, "batch_size": 4, "steps": 1500, "sample_every": 250, "checkpoint_every": 250},
}


def build_generator(config: Pix2PixCXRConfig) -> UNetGenerator:
    return UNetGenerator(
        1, 1, num_downs=config.depth, ngf=config.ngf, norm=config.norm, dropout=config.dropout,
        dropout_blocks=config.dropout_blocks, order="post",
    )


def build_discriminator(config: Pix2PixCXRConfig) -> PatchDiscriminator:
    channels = 2 if config.conditional_d else 1
    return PatchDiscriminator(channels, ndf=config.ndf, n_layers=config.d_layers, norm=config.norm, negative_slope=config.d_negative_slope)


def total_steps(config: Pix2PixCXRConfig, data: DomainData) -> int:
    """``config.steps``, or Liang's epochs in steps (one epoch = one pass over the Normal images)."""
    return config.steps or config.epochs * steps_per_epoch(len(data.a.ids), config.batch_size)


class Pix2PixCXRMethod:
    """One pix2pix-cxr training phase for the ``Trainer``."""

    def __init__(self, config: Pix2PixCXRConfig, data: DomainData, device: torch.device, steps: int) -> None:
        self.config = config
        self.device = device
        self.inputs = data.a.images.to(device)
        self.targets = data.b.images.to(device)
        torch.manual_seed(config.seed)  # weight initialisation is part of the run's reproducibility
        self.generator = build_generator(config).to(device)
        self.discriminator = build_discriminator(config).to(device)
        betas = (config.beta1, config.beta2)
        self._optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas),
        }
        schedule = LinearDecay(config.lr, round(config.decay_fraction * steps), steps)
        self._schedules = {"generator": schedule, "discriminator": schedule}
        self.adversarial = AdversarialLoss(config.gan_mode)
        self.augment = AUGMENT if config.augment else NO_AUGMENT

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def kept_modules(self) -> tuple[str, ...]:
        """After training: the generator, all that translation reads."""
        return ("generator",)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def schedules(self) -> dict[str, LinearDecay]:
        return self._schedules

    def pairs(self, step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices (into the Normal and COVID-19 train images) of step ``step``'s (input, target) pairs."""
        index_x = epoch_batch(len(self.inputs), self.config.batch_size, step, self.config.seed)
        return index_x, random_batch(len(self.targets), len(index_x), generator)

    def _pair(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, y], 1) if self.config.conditional_d else y

    def train_step(self, step: int, generator: torch.Generator) -> dict[str, float]:
        self.generator.train()
        self.discriminator.train()
        index_x, index_y = self.pairs(step, generator)
        x = augment_images(self.inputs[index_x.to(self.device)], self.augment, generator)
        y = augment_images(self.targets[index_y.to(self.device)], self.augment, generator)
        x, y = distributed.rank_share(x, y)  # batch_size is the global batch; this rank's slice of it
        with amp_autocast(self.device, self.config.amp):
            fake = self.generator(x)
            # discriminator: real-pair loss + generated-pair loss (II-B, summed)
            self.discriminator.requires_grad_(True)
            loss_d = self.adversarial(self.discriminator(self._pair(x, y)), True) + self.adversarial(
                self.discriminator(self._pair(x, fake.detach())), False
            )
        self._optimizers["discriminator"].zero_grad(set_to_none=True)
        loss_d.backward()
        self._optimizers["discriminator"].step()
        self.discriminator.requires_grad_(False)
        with amp_autocast(self.device, self.config.amp):
            loss_adv = self.adversarial(self.discriminator(self._pair(x, fake)), True, for_discriminator=False)
            l1 = F.l1_loss(fake.float(), y)
            loss_g = loss_adv + self.config.lambda_l1 * l1
        self._optimizers["generator"].zero_grad(set_to_none=True)
        loss_g.backward()
        self._optimizers["generator"].step()
        return {"d": loss_d.item(), "g_adv": loss_adv.item(), "l1": l1.item()}

    @torch.no_grad()
    def samples(self) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        """Rows of 4: Normal inputs, their translations (no dropout), COVID-19 train images."""
        self.generator.eval()
        x = self.inputs[:4]
        rows = [x, self.generator(x), self.targets[:4]]
        self.generator.train()
        images = [image[0].float().cpu().numpy() for row in rows for image in row]
        return images, [None] * len(images)


class Pix2PixCXR(Translator):
    """pix2pix X-ray translator (Liang et al. 2021)."""

    name = METHOD

    def __init__(self, config: Pix2PixCXRConfig, generator: UNetGenerator, checkpoint: Path, device: torch.device) -> None:
        self.config = config
        self.generator = generator
        self.checkpoint = checkpoint
        self.device = device
        self.source_class = config.source
        self.target_class = config.target

    @classmethod
    def fit(
        cls,
        data: Path,
        config: Pix2PixCXRConfig,
        out_dir: Path,
        resume: bool = False,
        force: bool = False,
        device: str = "auto",
        console: Console | None = None,
        on_step=None,
        retention: Retention = Retention(),
    ) -> Pix2PixCXR:
        """Train (resumable). ``retention``: which checkpoints stay on disk (``--keep-checkpoints`` / ``--keep-last``), not part of the config."""
        torch_device = resolve_device(device)
        domains = load_domains(Path(data), config.source, config.target, config.size, "none", config.seed)
        steps = total_steps(config, domains)
        start_run(Path(out_dir), METHOD, config_to_dict(config), domains, resume, force, extra={"domains": domains.describe()})  # type: ignore[arg-type]
        update_run(Path(out_dir), steps=steps, pairing="each step: next Normal mini-batch of a per-epoch permutation, "
                   "each paired with a COVID-19 train image drawn uniformly with replacement")
        method = Pix2PixCXRMethod(config, domains, torch_device, steps)
        options = TrainerOptions(
            steps=steps, seed=config.seed, log_every=config.log_every,
            sample_every=config.sample_every, checkpoint_every=config.checkpoint_every, phase="train", retention=retention,
        )
        Trainer(method, Path(out_dir), options, console=console, on_step=on_step).fit(resume=resume)
        return cls.load(Path(out_dir), device)

    @classmethod
    def load(cls, run_dir: Path, device: str = "auto") -> Pix2PixCXR:
        record = read_run(run_dir)
        if record["method"] != METHOD:
            raise InputError(run_dir, f"is a '{record['method']}' run, not {METHOD}")
        config = config_from_dict(Pix2PixCXRConfig, record["config"], f"{run_dir}/run.json")
        checkpoint = latest_checkpoint(Path(run_dir) / "train")
        if checkpoint is None:
            raise InputError(run_dir, "has no checkpoint yet; train it first")
        torch_device = resolve_device(device)
        generator = build_generator(config)
        load_module_weights(checkpoint, {"generator": generator})
        return cls(config, generator.to(torch_device).eval(), checkpoint, torch_device)

    @property
    def checkpoint_sha256(self) -> str:
        return file_sha256(self.checkpoint)

    @property
    def output_size(self) -> int:
        return self.config.size

    @torch.no_grad()
    def translate(self, images: torch.Tensor, seed: int, diversify: str = "none") -> torch.Tensor:
        """G(x) with batch norm's running statistics; ``dropout`` samples dropout (pix2pix's noise z)."""
        if diversify not in DIVERSIFIERS:
            raise InputError("--diversify", f"pix2pix-cxr supports {', '.join(DIVERSIFIERS)}, not '{diversify}'")
        torch.manual_seed(seed)
        self.generator.eval()
        set_dropout_active(self.generator, diversify == "dropout")
        out = self.generator(images.to(self.device)).float().cpu()
        set_dropout_active(self.generator, False)
        return out
