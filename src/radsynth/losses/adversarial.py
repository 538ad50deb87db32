"""GAN adversarial losses on discriminator logits (single or multi-scale)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MODES = ("vanilla", "lsgan", "hinge")

# A logits tensor, one discriminator's feature list (logits last), or one such list per scale.
Predictions = Tensor | Sequence[Tensor] | Sequence[Sequence[Tensor]]


def _logits_per_scale(predictions: Predictions) -> list[Tensor]:
    if isinstance(predictions, Tensor):
        return [predictions]
    if not isinstance(predictions, Sequence) or len(predictions) == 0:
        raise ValueError("predictions must be a tensor, a non-empty list of tensors or a non-empty list of lists")
    if all(isinstance(p, Tensor) for p in predictions):
        return [predictions[-1]]  # type: ignore[list-item]
    scales: list[Tensor] = []
    for scale in predictions:
        if isinstance(scale, Tensor) or not isinstance(scale, Sequence) or len(scale) == 0:
            raise ValueError("multi-scale predictions must be a list of non-empty lists of tensors")
        last = scale[-1]
        if not isinstance(last, Tensor):
            raise ValueError("multi-scale predictions must be a list of non-empty lists of tensors")
        scales.append(last)
    return scales


class AdversarialLoss(nn.Module):
    """Adversarial loss on unbounded logits; returns a scalar.

    ``loss(predictions, target_is_real, for_discriminator=True)``, where ``predictions`` is a
    logits tensor of any shape (e.g. (N, 1, h, w) patch logits), a discriminator's feature list
    (only the last element, the logits, is used) or a list of such lists from a multi-scale
    discriminator (the loss is averaged over scales).

    - ``'vanilla'``: binary cross-entropy with logits against 1 (real) or 0 (fake) (pix2pix,
      CoSinGAN section 2.2 "the same adversarial loss as pix2pix"); the generator side is the
      non-saturating -log D(G(x)).
    - ``'lsgan'``: mean squared error to 1 or 0 (CycleGAN section 4).
    - ``'hinge'``: discriminator mean(relu(1 - x)) on real and mean(relu(1 + x)) on fake;
      generator -mean(x).

    The generator loss always targets "real": ``for_discriminator=False`` with
    ``target_is_real=False`` raises ValueError. MONAI's ``PatchAdversarialLoss`` was not reused: it
    applies its own activation first (sigmoid + BCE, LeakyReLU before least squares, tanh before
    hinge), so its values are not the standard losses on logits.
    """

    def __init__(self, mode: str = "vanilla") -> None:  # pix2pix: vanilla GAN loss (CoSinGAN section 2.2)
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode

    def _single(self, logits: Tensor, target_is_real: bool, for_discriminator: bool) -> Tensor:
        if self.mode == "vanilla":
            target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
            return F.binary_cross_entropy_with_logits(logits, target)
        if self.mode == "lsgan":
            target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
            return F.mse_loss(logits, target)
        if not for_discriminator:
            return -logits.mean()
        return F.relu(1.0 - logits).mean() if target_is_real else F.relu(1.0 + logits).mean()

    def forward(self, predictions: Predictions, target_is_real: bool, for_discriminator: bool = True) -> Tensor:
        """Scalar loss; see the class docstring for what ``predictions`` may be."""
        if not for_discriminator and not target_is_real:
            raise ValueError(
                "the generator loss always targets 'real': pass target_is_real=True with for_discriminator=False"
            )
        scales = _logits_per_scale(predictions)
        losses = [self._single(logits, target_is_real, for_discriminator) for logits in scales]
        return torch.stack(losses).mean()
