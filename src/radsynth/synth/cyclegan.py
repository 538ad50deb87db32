"""CycleGAN for chest X-rays, Normal (or Pneumonia) -> COVID-19 (Zunair & Hamza 2021, section 3).

Two ResNet generators G_A: A -> B and G_B: B -> A, two PatchGAN discriminators (D_B judges
domain B, D_A domain A), the adversarial losses of eqs. 2-3, the cycle loss of eq. 4 weighted by
lambda (default 10), the optional identity loss, a pool of 50 generated images per discriminator
and a learning rate that is constant for the first half of training and then decays linearly to 0.
Domains are class folders of a prepared set's train split; by default the larger domain is
under-sampled to the size of the smaller one before training (section 3.3). After training,
``radsynth synth RUN --images SET`` applies G_A to every source-class training image (the
paper's G_NC / G_PC sets).

The paper trains "the same way as Zunair and Hamza (2020)", i.e. with the CycleGAN reference
implementation (Zhu et al. 2017); where the paper gives no value, the reference code's default is
used and named below. Images are grey (1 channel in, 1 out).
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
from radsynth.nets import PatchDiscriminator, ResnetGenerator
from radsynth.synth.base import read_run, start_run, update_run
from radsynth.training.checkpoint import Retention, file_sha256, latest_checkpoint, load_module_weights
from radsynth.synth.domains import BALANCES, DomainData, augment_images, epoch_batch, load_domains, random_batch, steps_per_epoch
from radsynth.synth.image_pool import POOL_SIZE, ImagePool
from radsynth.training.schedule import LinearDecay
from radsynth.training.trainer import Trainer, TrainerOptions, amp_autocast, resolve_device
from radsynth.synth.translator import Translator

METHOD = "cyclegan"
# CycleGAN reference code (unaligned dataset, --preprocess resize_and_crop): load at 286, random
# 256 crop, random horizontal flip. As one warp: a fixed 256/286 crop at a random place, flip 1/2.
CROP = 256 / 286
AUGMENT = AugmentSpec(crop=(CROP, CROP), rotate_deg=0.0, hflip=0.5, vflip=0.0, elastic_alpha=0.0)
NO_AUGMENT = AugmentSpec(crop=(1.0, 1.0), rotate_deg=0.0, hflip=0.0, vflip=0.0, elastic_alpha=0.0)


@dataclass(frozen=True)
class CycleGANConfig:
    """CycleGAN for X-ray class translation. Defaults: Zunair & Hamza 2021 section 3, else the CycleGAN code."""

    source: str = "Normal"  # domain A (section 3.1: Normal or Pneumonia)
    target: str = "COVID-19"  # domain B
    balance: str = "undersample"  # section 3.3: under-sample the majority domain before training
    size: int = 256  # section 4.2: images resized to 256 x 256 (CycleGAN's 256 crop)
    ngf: int = 64  # CycleGAN appendix 7.2: c7s1-64
    ndf: int = 64  # CycleGAN appendix 7.2: C64-C128-C256-C512
    n_blocks: int = 9  # CycleGAN appendix 7.2: 9 residual blocks at 256 x 256
    n_downsampling: int = 2  # CycleGAN appendix 7.2: d128, d256
    d_layers: int = 3  # CycleGAN: 70 x 70 PatchGAN
    norm: str = "instance"  # CycleGAN section 4: instance normalisation
    gan_mode: str = "lsgan"  # eqs. 2-3 are log-likelihood ("vanilla"); the CycleGAN code (section 4) trains them as least squares
    lambda_cycle: float = 10.0  # eq. 4 lambda (CycleGAN section 4: 10)
    lambda_identity: float = 0.5  # CycleGAN code --lambda_identity 0.5: identity L1 weighted 0.5 * lambda_cycle; 0 turns it off
    pool_size: int = POOL_SIZE  # CycleGAN section 4: history of 50 generated images
    batch_size: int = 1  # CycleGAN section 4: batch size 1
    epochs: int = 200  # CycleGAN section 4: 100 epochs at lr 2e-4, then 100 decaying linearly to 0
    decay_fraction: float = 0.5  # the decay starts after this fraction of the steps
    steps: int = 0  # 0: epochs x ceil(max(|A|, |B|) / batch_size) (the CycleGAN code's epoch)
    lr: float = 2e-4  # CycleGAN section 4
    beta1: float = 0.5  # CycleGAN code: Adam(0.5, 0.999)
    beta2: float = 0.999
    augment: bool = True  # CycleGAN code: random 256/286 crop and horizontal flip
    amp: bool = True  # bf16 autocast on CUDA (no effect on CPU)
    seed: int = 0
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if self.balance not in BALANCES:
            raise ValueError(f"balance must be one of {BALANCES}, got '{self.balance}'")
        if self.source == self.target:
            raise ValueError(f"source and target must differ, both are '{self.source}'")
        if self.size < 16 or self.size % 2**self.n_downsampling:
            raise ValueError(f"size must be >= 16 and divisible by 2**n_downsampling = {2**self.n_downsampling}, got {self.size}")
        check_range(vars(self), ("ngf", "ndf", "epochs", "batch_size", "log_every", "sample_every", "checkpoint_every", "d_layers"), low=1)
        check_range(vars(self), ("steps", "n_blocks", "n_downsampling", "pool_size"), low=0)
        if self.lambda_cycle < 0 or self.lambda_identity < 0:
            raise ValueError("lambda_cycle and lambda_identity must be >= 0")
        if not 0 <= self.decay_fraction <= 1:
            raise ValueError(f"decay_fraction must lie in [0, 1], got {self.decay_fraction}")
        if self.lr <= 0:
            raise ValueError("lr must be positive")


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    # CPU: 128 px, narrower and shallower nets, 1200 steps (about 13 min on one CPU thread)
    "quick": {
        "size": 128, "ngf": 32, "ndf": 32, "n_blocks": 6, "steps": 1200, "batch_size": 1,
        "sample_every": 200, "checkpoint_every": 200,
    },
}


def total_steps(config: CycleGANConfig, data: DomainData) -> int:
    """``config.steps``, or the paper schedule in steps: epochs x batches per epoch."""
    longest = max(len(data.a.ids), len(data.b.ids))
    return config.steps or config.epochs * steps_per_epoch(longest, config.batch_size)


def build_generators(config: CycleGANConfig) -> tuple[ResnetGenerator, ResnetGenerator]:
    """G_A: A -> B and G_B: B -> A, grey in and out."""
    make = lambda: ResnetGenerator(1, 1, ngf=config.ngf, n_blocks=config.n_blocks, n_downsampling=config.n_downsampling, norm=config.norm)  # noqa: E731
    return make(), make()


def build_discriminators(config: CycleGANConfig) -> tuple[PatchDiscriminator, PatchDiscriminator]:
    """D_A (judges domain A) and D_B (judges domain B)."""
    make = lambda: PatchDiscriminator(1, ndf=config.ndf, n_layers=config.d_layers, norm=config.norm)  # noqa: E731
    return make(), make()


def cycle_l1(reconstruction: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Eq. 4's term ||G_B(G_A(a)) - a||_1 as the mean absolute difference per pixel."""
    return F.l1_loss(reconstruction, real)


class CycleGANMethod:
    """One CycleGAN training phase for the ``Trainer``."""

    def __init__(self, config: CycleGANConfig, data: DomainData, device: torch.device, steps: int) -> None:
        self.config = config
        self.device = device
        self.images_a = data.a.images.to(device)
        self.images_b = data.b.images.to(device)
        torch.manual_seed(config.seed)  # weight initialisation is part of the run's reproducibility
        self.g_a, self.g_b = (g.to(device) for g in build_generators(config))
        self.d_a, self.d_b = (d.to(device) for d in build_discriminators(config))
        shape = (1, config.size, config.size)
        self.pool_a = ImagePool(config.pool_size, shape).to(device)  # fakes of A, for D_A
        self.pool_b = ImagePool(config.pool_size, shape).to(device)  # fakes of B, for D_B
        betas = (config.beta1, config.beta2)
        self._optimizers = {
            "generators": torch.optim.Adam([*self.g_a.parameters(), *self.g_b.parameters()], lr=config.lr, betas=betas),
            "discriminators": torch.optim.Adam([*self.d_a.parameters(), *self.d_b.parameters()], lr=config.lr, betas=betas),
        }
        schedule = LinearDecay(config.lr, round(config.decay_fraction * steps), steps)
        self._schedules = {"generators": schedule, "discriminators": schedule}
        self.adversarial = AdversarialLoss(config.gan_mode)
        self.augment = AUGMENT if config.augment else NO_AUGMENT
        self.sample_a = self.images_a[:4]
        self.sample_b = self.images_b[:4]

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G_A": self.g_a, "G_B": self.g_b, "D_A": self.d_a, "D_B": self.d_b, "pool_A": self.pool_a, "pool_B": self.pool_b}

    def kept_modules(self) -> tuple[str, ...]:
        """After training: both generators (``translate`` is G_A, ``reconstruct`` G_B after G_A); not D_A, D_B or the pools."""
        return ("G_A", "G_B")

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def schedules(self) -> dict[str, LinearDecay]:
        return self._schedules

    def _batch(self, step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        index_a = epoch_batch(len(self.images_a), self.config.batch_size, step, self.config.seed)
        index_b = random_batch(len(self.images_b), len(index_a), generator)
        real_a = augment_images(self.images_a[index_a.to(self.device)], self.augment, generator)
        real_b = augment_images(self.images_b[index_b.to(self.device)], self.augment, generator)
        return distributed.rank_share(real_a, real_b)  # batch_size is the global batch; this rank's slice of it

    def train_step(self, step: int, generator: torch.Generator) -> dict[str, float]:
        config = self.config
        real_a, real_b = self._batch(step, generator)
        for net in (self.g_a, self.g_b, self.d_a, self.d_b):
            net.train()
        # generators: eqs. 2-4 (+ identity)
        self.d_a.requires_grad_(False)
        self.d_b.requires_grad_(False)
        with amp_autocast(self.device, config.amp):
            fake_b = self.g_a(real_a)
            rec_a = self.g_b(fake_b)
            fake_a = self.g_b(real_b)
            rec_b = self.g_a(fake_a)
            g_a = self.adversarial(self.d_b(fake_b), True, for_discriminator=False)
            g_b = self.adversarial(self.d_a(fake_a), True, for_discriminator=False)
            cycle_a, cycle_b = cycle_l1(rec_a.float(), real_a), cycle_l1(rec_b.float(), real_b)
            loss_g = g_a + g_b + config.lambda_cycle * (cycle_a + cycle_b)
            idt = {}
            if config.lambda_identity > 0:
                idt = {"idt_l1_a": F.l1_loss(self.g_a(real_b).float(), real_b), "idt_l1_b": F.l1_loss(self.g_b(real_a).float(), real_a)}
                loss_g = loss_g + config.lambda_identity * config.lambda_cycle * (idt["idt_l1_a"] + idt["idt_l1_b"])
        self._optimizers["generators"].zero_grad(set_to_none=True)
        loss_g.backward()
        self._optimizers["generators"].step()
        # discriminators: each on a real image and a generated one from its pool
        self.d_a.requires_grad_(True)
        self.d_b.requires_grad_(True)
        pooled_b = self.pool_b.query(fake_b.float(), generator)
        pooled_a = self.pool_a.query(fake_a.float(), generator)
        with amp_autocast(self.device, config.amp):
            d_b = 0.5 * (self.adversarial(self.d_b(real_b), True) + self.adversarial(self.d_b(pooled_b), False))
            d_a = 0.5 * (self.adversarial(self.d_a(real_a), True) + self.adversarial(self.d_a(pooled_a), False))
        self._optimizers["discriminators"].zero_grad(set_to_none=True)
        (d_a + d_b).backward()
        self._optimizers["discriminators"].step()
        losses = {"d_a": d_a, "d_b": d_b, "g_a": g_a, "g_b": g_b, "cycle_l1_a": cycle_a, "cycle_l1_b": cycle_b, **idt}
        return {k: v.item() for k, v in losses.items()}

    @torch.no_grad()
    def samples(self) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        """Rows of 4: real A, G_A(A), G_B(G_A(A)), real B, G_B(B), G_A(G_B(B))."""
        fake_b = self.g_a(self.sample_a)
        fake_a = self.g_b(self.sample_b)
        rows = [self.sample_a, fake_b, self.g_b(fake_b), self.sample_b, fake_a, self.g_a(fake_a)]
        images = [image[0].float().cpu().numpy() for row in rows for image in row]
        return images, [None] * len(images)


class CycleGAN(Translator):
    """CycleGAN X-ray translator; ``translate`` applies G_A (source -> target)."""

    name = METHOD

    def __init__(self, config: CycleGANConfig, g_a: ResnetGenerator, g_b: ResnetGenerator, checkpoint: Path, device: torch.device) -> None:
        self.config = config
        self.g_a = g_a
        self.g_b = g_b
        self.checkpoint = checkpoint
        self.device = device
        self.source_class = config.source
        self.target_class = config.target

    @classmethod
    def fit(
        cls,
        data: Path,
        config: CycleGANConfig,
        out_dir: Path,
        resume: bool = False,
        force: bool = False,
        device: str = "auto",
        console: Console | None = None,
        on_step=None,
        retention: Retention = Retention(),
    ) -> CycleGAN:
        """Train (resumable). ``retention``: which checkpoints stay on disk (``--keep-checkpoints`` / ``--keep-last``), not part of the config."""
        torch_device = resolve_device(device)
        domains = load_domains(Path(data), config.source, config.target, config.size, config.balance, config.seed)
        steps = total_steps(config, domains)
        start_run(Path(out_dir), METHOD, config_to_dict(config), domains, resume, force, extra={"domains": domains.describe()})  # type: ignore[arg-type]
        update_run(Path(out_dir), steps=steps)
        method = CycleGANMethod(config, domains, torch_device, steps)
        options = TrainerOptions(
            steps=steps, seed=config.seed, log_every=config.log_every,
            sample_every=config.sample_every, checkpoint_every=config.checkpoint_every, phase="train", retention=retention,
        )
        Trainer(method, Path(out_dir), options, console=console, on_step=on_step).fit(resume=resume)
        return cls.load(Path(out_dir), device)

    @classmethod
    def load(cls, run_dir: Path, device: str = "auto") -> CycleGAN:
        record = read_run(run_dir)
        if record["method"] != METHOD:
            raise InputError(run_dir, f"is a '{record['method']}' run, not {METHOD}")
        config = config_from_dict(CycleGANConfig, record["config"], f"{run_dir}/run.json")
        checkpoint = latest_checkpoint(Path(run_dir) / "train")
        if checkpoint is None:
            raise InputError(run_dir, "has no checkpoint yet; train it first")
        torch_device = resolve_device(device)
        g_a, g_b = build_generators(config)
        load_module_weights(checkpoint, {"G_A": g_a, "G_B": g_b})
        return cls(config, g_a.to(torch_device).eval(), g_b.to(torch_device).eval(), checkpoint, torch_device)

    @property
    def checkpoint_sha256(self) -> str:
        return file_sha256(self.checkpoint)

    @property
    def output_size(self) -> int:
        return self.config.size

    @torch.no_grad()
    def translate(self, images: torch.Tensor, seed: int, diversify: str = "none") -> torch.Tensor:
        if diversify != "none":
            raise InputError("--diversify", f"the CycleGAN generator has no dropout or noise; use --diversify none, not '{diversify}'")
        return self.g_a(images.to(self.device)).float().cpu()

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """G_B(G_A(a)): the cycle reconstruction of source-class images (N, 1, S, S) in [-1, 1]."""
        return self.g_b(self.g_a(images.to(self.device))).float().cpu()
