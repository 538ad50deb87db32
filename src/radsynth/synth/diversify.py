"""CoSinGAN's diversification methods (section 3.2.4) that work on any mask-conditional synthesizer.

* AD (applying dropout at test time) lives in each synthesizer (``diversify='dropout'``).
* RC, randomizing the input condition (eq. 10): the grey level of each category is drawn per image
  (and, in a pyramid, per scale): background in [0, δb], lung in [128 - δl, 128 + δl], infection in
  [255 - δi, 255], with (δb, δl, δi) = (16, 16, 32) in the paper. One value per category and image,
  so the condition stays piecewise constant like the training conditions.
* IF, image fusion (eq. 11): I_f = ζ I_1 + (1 - ζ) I_2 for the images two synthesizers (trained on
  two different slices) make from the same condition, ζ ~ U(0, 1) per image (``fusion='blend'``, the paper's).
  The two images' fine texture (vessels, airways) is not paired pixel by pixel, so the blend averages it
  away: two uncorrelated textures mixed by ζ keep sqrt(ζ² + (1 - ζ)²) of their amplitude, 0.81 on average.
  ``fusion='detail'`` (radsynth's variant) blends only the images' low frequencies by ζ (the modality:
  intensity levels, contrast) and takes the detail above a Gaussian of σ = size / 64 from one of the two,
  the first with probability ζ, so the fused image keeps one model's texture at full strength.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from monai.networks.layers import GaussianFilter

from radsynth.data.labels import CONDITION_GREY_LEVELS, TYPED_CONDITION_GREY_LEVELS, to_categories
from radsynth.errors import InputError
from radsynth.synth import FUSIONS
from radsynth.synth.base import Synthesizer

RC_DELTAS = (16.0, 16.0, 32.0)  # CoSinGAN section 3.2.4: δb, δl, δi


def detail_fusion(first: torch.Tensor, second: torch.Tensor, zeta: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) images in [-1, 1], ζ and ``pick`` (N, 1, 1, 1) in [0, 1) -> fused (N, 1, H, W).

    Below a Gaussian of σ = W / 64 px the images are blended by ζ (eq. 11); above it the detail is the
    first image's where ``pick`` < ζ, else the second's. Computed on [0, 1] so the filter's zero padding is
    the dark background."""
    smooth = GaussianFilter(2, sigma=first.shape[-1] / 64.0)
    a, b = (first + 1) / 2, (second + 1) / 2
    low_a, low_b = smooth(a), smooth(b)
    detail = torch.where(pick < zeta, a - low_a, b - low_b)
    return (zeta * low_a + (1 - zeta) * low_b + detail) * 2 - 1


def random_condition(label: torch.Tensor, generator: torch.Generator, deltas: tuple[float, float, float] = RC_DELTAS, typed: bool = False) -> torch.Tensor:
    """(N, H, W) schema labels -> (N, 1, H, W) condition in [-1, 1] with randomized grey levels (eq. 10).

    ``typed`` (GGO 192 and consolidation 255 apart): each infection class is drawn below its own
    level as eq. 10 draws infection, [192 - δi, 192] and [255 - δi, 255], one draw per image shared by both.
    """
    n = label.shape[0]
    u = torch.rand((n, 3), generator=generator)
    background = u[:, 0] * deltas[0]
    lung = CONDITION_GREY_LEVELS[1] - deltas[1] + 2 * deltas[1] * u[:, 1]
    if typed:
        ggo = TYPED_CONDITION_GREY_LEVELS[2] - deltas[2] * u[:, 2]
        consolidation = TYPED_CONDITION_GREY_LEVELS[3] - deltas[2] * u[:, 2]
        levels = torch.stack([background, lung, ggo, consolidation], dim=1).to(label.device)  # (N, 4) grey values
        index = label.long().clamp(0, 3)
    else:
        infection = CONDITION_GREY_LEVELS[2] - deltas[2] * u[:, 2]
        levels = torch.stack([background, lung, infection], dim=1).to(label.device)  # (N, 3) grey values
        index = to_categories(label).long()
    grey = torch.gather(levels, 1, index.reshape(n, -1)).reshape(label.shape)
    return (grey / 127.5 - 1.0)[:, None]


class FusedSynthesizer(Synthesizer):
    """IF: fuse the outputs of two synthesizers for the same condition with ζ ~ U(0, 1) per image
    (``mode``: 'blend', eq. 11, or 'detail', see :func:`detail_fusion`)."""

    name = "fusion"

    def __init__(self, first: Synthesizer, second: Synthesizer, mode: str = "blend") -> None:
        if mode not in FUSIONS:
            raise InputError("--fusion", f"unknown fusion '{mode}' (choose from {', '.join(FUSIONS)})")
        self.mode = mode
        if first.output_size != second.output_size:
            raise InputError("--fuse-with", f"the two runs make {first.output_size} and {second.output_size} px images; fusion needs one size")
        self.first = first
        self.second = second

    @property
    def output_size(self) -> int:
        return self.first.output_size

    @property
    def set_name(self) -> str:
        """The model name synthetic sets record: 'fusion' (eq. 11's blend) or 'fusion-MODE'."""
        return self.name if self.mode == "blend" else f"{self.name}-{self.mode}"

    @classmethod
    def fit(cls, *args, **kwargs):  # pragma: no cover - a fusion is built from two trained runs
        raise InputError("fusion", "is not trained; train two runs and synthesize with --diversify fusion --fuse-with RUN2")

    @classmethod
    def load(cls, *args, **kwargs):  # pragma: no cover
        raise InputError("fusion", "load the two runs and pass them to FusedSynthesizer")

    @property
    def checkpoint_sha256(self) -> str:
        return hashlib.sha256((self.first.checkpoint_sha256 + self.second.checkpoint_sha256).encode()).hexdigest()

    def check_conditions(self, conditions: Path, typed: bool) -> None:
        self.first.check_conditions(conditions, typed)
        self.second.check_conditions(conditions, typed)

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, seed: int, diversify: str = "fusion") -> torch.Tensor:
        """(N, H, W) labels -> (N, 1, H, W) fused images in [-1, 1]; each run uses no other diversifier."""
        a = self.first.generate(labels, seed, "none")
        b = self.second.generate(labels, seed, "none")
        generator = torch.Generator().manual_seed(seed)
        zeta = torch.rand((labels.shape[0], 1, 1, 1), generator=generator)  # drawn first: 'blend' is what it always was
        if self.mode == "detail":
            return detail_fusion(a, b, zeta, torch.rand((labels.shape[0], 1, 1, 1), generator=generator))
        return zeta * a + (1 - zeta) * b
