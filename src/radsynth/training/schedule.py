"""Learning-rate schedules as pure functions of the step (nothing to save or restore)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LinearDecay:
    """Constant ``base_lr`` until ``decay_start``, then linear to 0 at ``decay_end``.

    Covers every schedule in the four papers, e.g. CoSinGAN stage 1: 4000 epochs, lr 2e-4,
    decayed by 0.05 % of it per epoch after 2000 (reaches 0 at 4000); pix2pix / CycleGAN: constant
    for n epochs then linear to 0 over n more.
    """

    base_lr: float
    decay_start: int
    decay_end: int

    def __post_init__(self) -> None:
        if self.base_lr <= 0:
            raise ValueError(f"learning rate must be positive, got {self.base_lr}")
        if not 0 <= self.decay_start <= self.decay_end:
            raise ValueError(f"need 0 <= decay_start <= decay_end, got {self.decay_start}, {self.decay_end}")

    def lr(self, step: int) -> float:
        if step < self.decay_start or self.decay_end == self.decay_start:
            return self.base_lr
        return self.base_lr * max(0.0, 1.0 - (step - self.decay_start) / (self.decay_end - self.decay_start))

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        lr = self.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr
