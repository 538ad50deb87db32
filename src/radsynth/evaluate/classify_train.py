"""Training a classifier on a pool with the shared ``Trainer``, and predicting with it.

``ClassifierMethod`` is one training phase for ``radsynth.training.trainer.Trainer`` (per-step
seeding, resume, atomic checkpoints, CSV log): each step takes the next mini-batch of the epoch's
order (``protocols.epoch_order``), augments it, and minimises BCE on one logit (binary; CoSinGAN
3.3.1, Zunair 4.5) or cross-entropy (K classes; Liang III-C).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from radsynth.data.augment import NONE, STRONG, WEAK, AugmentSpec, augment_pair
from radsynth.errors import InputError
from radsynth.evaluate.classify_config import ClassifyConfig
from radsynth.evaluate.classify_data import ClassPool
from radsynth.evaluate.protocols import epoch_order, steps_per_epoch
from radsynth.nets.classifiers import LAST_BLOCKS, Classifier, build_classifier
from radsynth.training.schedule import LinearDecay
from radsynth.training.trainer import amp_autocast

LIANG = AugmentSpec(crop=(1.0, 1.0), rotate_deg=5.0, hflip=0.5, vflip=0.0, elastic_alpha=0.0)  # Liang III-A
AUGMENT_SPECS = {"strong": STRONG, "weak": WEAK, "none": NONE, "liang": LIANG}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def choose_augment(choice: str, pool: ClassPool) -> str:
    """CoSinGAN 3.3.1: weak augmentation on OC-TS, strong on Sin-TS, Two-TS and synthetic sets."""
    if choice != "auto":
        return choice
    return "weak" if pool.spec in ("oc", "real") else "strong"


def network_input(images: torch.Tensor, channels: int, intensity: str) -> torch.Tensor:
    """(N, 1, H, W) in [-1, 1] -> (N, channels, H, W) in the network's range (the grey image repeated)."""
    x = images.expand(-1, channels, -1, -1) if channels > 1 else images
    if intensity == "symmetric":
        return x
    x = (x + 1) / 2  # [0, 1] (Zunair 4.2)
    if intensity == "imagenet":
        if channels != 3:
            raise InputError("intensity", "imagenet normalisation needs in_channels = 3")
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
    return x


def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE on one logit (binary) or cross-entropy (K > 1 logits)."""
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], targets.float())
    return F.cross_entropy(logits, targets)


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(N, 1) or (N, K) logits -> (N, K') class probabilities, K' = 2 for a binary net."""
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits[:, 0])
        return torch.stack([1 - p, p], dim=1)
    return logits.softmax(1)


@dataclass(frozen=True)
class ClassifierSchedule:
    """CoSinGAN's linear decay (``LinearDecay``), switching to ``finetune_lr`` from ``switch_step`` on (Liang)."""

    decay: LinearDecay
    switch_step: int
    finetune_lr: float

    def lr(self, step: int) -> float:
        return self.finetune_lr if step >= self.switch_step else self.decay.lr(step)

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        lr = self.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr


class ClassifierMethod:
    """One classifier training phase for the ``Trainer``; steps = epochs x ceil(samples_per_epoch / batch)."""

    def __init__(self, config: ClassifyConfig, pool: ClassPool, net: Classifier, device: torch.device, augment: str) -> None:
        self.config = config
        self.device = device
        self.images = pool.images.to(device)
        self.targets = pool.targets.to(device)
        self.samples_per_epoch = pool.reference_size if config.equal_samples else len(pool.targets)
        self.steps_per_epoch = steps_per_epoch(self.samples_per_epoch, config.batch_size)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.net = net.to(device)
        if config.optimizer == "adam":
            self._optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
        else:  # Keras' Adadelta (rho 0.95, epsilon 1e-7) at the paper's lr 1e-3 (Zunair 4.5)
            self._optimizer = torch.optim.Adadelta(self.net.parameters(), lr=config.lr, rho=0.95, eps=1e-7)
        decay = LinearDecay(config.lr, round(config.decay_start * config.epochs) * self.steps_per_epoch, self.total_steps)
        switch = config.frozen_epochs * self.steps_per_epoch if config.frozen_epochs else self.total_steps + 1
        self._schedule = ClassifierSchedule(decay, switch, config.finetune_lr)
        self.augment = AUGMENT_SPECS[augment]
        self._order: tuple[int, np.ndarray] | None = None

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"classifier": self.net}

    def kept_modules(self) -> tuple[str, ...]:
        """After training: the net (no optimizer state). Results come from the net in memory and
        classifier.safetensors; a resume after training but before the results restores it from here."""
        return ("classifier",)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"classifier": self._optimizer}

    def schedules(self) -> dict[str, ClassifierSchedule]:
        return {"classifier": self._schedule}

    def batch_indices(self, step: int) -> np.ndarray:
        epoch, within = divmod(step, self.steps_per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_order(len(self.images), self.samples_per_epoch, self.config.seed, epoch))
        batch = self.config.batch_size
        return self._order[1][within * batch : (within + 1) * batch]

    def _set_trainable(self, step: int) -> None:
        """Liang III-C: only the head while frozen, then the head and the last block."""
        if not self.config.frozen_epochs:
            return
        frozen = step < self.config.frozen_epochs * self.steps_per_epoch
        blocks = LAST_BLOCKS[self.net.name]
        for name, parameter in self.net.named_parameters():
            parameter.requires_grad = name.startswith("fc.") or (not frozen and name.startswith(blocks))
        for module in self.net.modules():  # frozen batch norms keep their ImageNet statistics (as Keras' frozen layers do)
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in module.parameters()):
                module.eval()

    def train_step(self, step: int, generator: torch.Generator) -> dict[str, float]:
        self.net.train()
        self._set_trainable(step)  # after train(): may put frozen batch norms back into eval mode
        index = torch.from_numpy(self.batch_indices(step)).to(self.device)
        images = self.images[index]
        if self.augment != NONE:
            images, _ = augment_pair(images, torch.zeros(images.shape[0], *images.shape[2:], dtype=torch.long, device=self.device), self.augment, generator)
        with amp_autocast(self.device, self.config.amp):
            logits = self.net(network_input(images, self.config.in_channels, self.config.intensity))
        loss = loss_fn(logits.float(), self.targets[index])
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._optimizer.step()
        return {"loss": loss.item(), "lr": self._optimizer.param_groups[0]["lr"]}

    def samples(self) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        chosen = torch.linspace(0, len(self.images) - 1, min(4, len(self.images))).round().long().unique()
        return [self.images[i, 0].cpu().numpy() for i in chosen.tolist()], [None] * len(chosen)


def new_classifier(config: ClassifyConfig, num_classes: int) -> Classifier:
    """A freshly initialised classifier (seeded by ``config.seed``); K = 2 classes -> one logit."""
    torch.manual_seed(config.seed)
    return build_classifier(config.model, config.in_channels, 1 if num_classes == 2 else num_classes)


@torch.no_grad()
def predict_proba(net: Classifier, images: torch.Tensor, config: ClassifyConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, S, S) images in [-1, 1] -> ((N, K) probabilities, (N, F) pooled features), on the CPU."""
    net.eval()
    device = next(net.parameters()).device
    probs, feats = [], []
    for start in range(0, len(images), config.eval_batch_size):
        x = network_input(images[start : start + config.eval_batch_size].to(device), config.in_channels, config.intensity)
        with amp_autocast(device, config.amp):
            features = net.embed(x)
            logits = net.fc(features)
        probs.append(probabilities(logits.float()).cpu())
        feats.append(features.float().cpu())
    return torch.cat(probs), torch.cat(feats)


def decide(probs: torch.Tensor, threshold: float) -> torch.Tensor:
    """(N, K) probabilities -> (N,) predicted class: p(positive) >= threshold for K = 2, else argmax."""
    if probs.shape[1] == 2:
        return (probs[:, 1] >= threshold).long()
    return probs.argmax(1)


@torch.no_grad()
def mean_loss(net: Classifier, images: torch.Tensor, targets: torch.Tensor, config: ClassifyConfig) -> float:
    """The loss over a whole set (the early-stopping monitor)."""
    probs, _ = predict_proba(net, images, config)
    p = probs.clamp(1e-7, 1 - 1e-7)
    return float(F.nll_loss(p.log(), targets))
