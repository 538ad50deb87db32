"""Choosing the training slice(s) of one-slice methods: a representative slice with sizeable infection.

CoSinGAN trains on "two representative slices" (Zhang et al. 3.2) without saying how they were
chosen. A one-slice generator learns the whole layout of its slice (where the body ends, how much
air surrounds it) and reproduces it for every mask, so the slice's layout matters as much as its
infection. radsynth ranks the slices of a set:

1. *typical layout first*: the body's share of the image (``body_fraction``) within the set's
   inter-quartile range and a lung at least as large as the set's median lung;
2. then the most infection pixels.

Measured on ct-ma20 at 128 px (CoSinGAN's 32 px scale, 1500 + 500 steps, synthesized from 16
masks of held-out patients and compared with their real slices): the slice with the most infection
overall (000646, body 0.85 of the image against a median of 0.61) gives 12.7 dB and a body that
fills the frame (air outside -0.24, real -0.78); the first slice of this ranking (000167, body
0.58) gives 17.0 dB and a body inside dark air (-0.70).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from radsynth.data.slices import SliceSet
from radsynth.errors import InputError


@dataclass(frozen=True)
class SliceScore:
    """What the ranking looks at for one slice of a set."""

    index: int  # position in the SliceSet
    id: str
    patient: str
    modality: str
    infection: int  # pixels labelled infection (label >= 2)
    lung: int  # pixels labelled lung or infection (label >= 1)
    body_fraction: float  # share of the image that is body (not air); nan where the set labels no lung
    typical: bool = False


def body_fraction(image: torch.Tensor, label: torch.Tensor) -> float:
    """Share of the image inside the body: the lung (label >= 1) and every pixel brighter than the
    lung's median (soft tissue and bone are; the air around the body is not, in any CT window that
    shows the lung). image (1, H, W) or (H, W) in [-1, 1]; label (H, W) schema labels; nan without lung."""
    image = image.reshape(label.shape)
    lung = label >= 1
    if not bool(lung.any()):
        return float("nan")
    body = lung | (image > image[lung].median())
    return float(body.float().mean())


def score_slices(dataset: SliceSet) -> list[SliceScore]:
    """Every slice with infection, scored; ``typical`` marks layout 1. above.

    Where the set labels lung (any slice has label 1), a slice also needs lung beside its infection.
    Where it does not (infection-only masks), there is no lung to measure the body by: every slice
    counts as typical and the ranking is by infection alone.
    """
    scores, has_lung = [], False
    for i in range(len(dataset)):
        image, label, meta = dataset[i]
        infection, lung = int((label >= 2).sum()), int((label >= 1).sum())
        has_lung |= lung > infection
        if infection > 0:
            body = body_fraction(image, label) if lung > infection else float("nan")
            scores.append(SliceScore(i, meta["id"], meta["patient"], meta.get("modality", ""), infection, lung, body))
    if has_lung:
        scores = [s for s in scores if s.lung > s.infection]  # a slice with infection but no lung: not a candidate
    if not has_lung or len(scores) < 4:
        return [SliceScore(**{**vars(s), "typical": True}) for s in scores]  # no body measure, or too few slices to say what is typical
    low, _, high = statistics.quantiles([s.body_fraction for s in scores], n=4)
    lung_median = statistics.median(s.lung for s in scores)
    return [SliceScore(**{**vars(s), "typical": low <= s.body_fraction <= high and s.lung >= lung_median}) for s in scores]


def rank_slices(dataset: SliceSet) -> list[SliceScore]:
    """Candidate training slices, best first: typical layout before atypical, then most infection (ties by id)."""
    return sorted(score_slices(dataset), key=lambda s: (not s.typical, -s.infection, s.id))


def pick_slices(ranked: list[SliceScore], count: int) -> list[SliceScore]:
    """The first ``count`` of a ranking, each from a different patient while patients last."""
    chosen: list[SliceScore] = []
    for score in ranked:
        if len(chosen) < count and score.patient not in {c.patient for c in chosen}:
            chosen.append(score)
    chosen += [s for s in ranked if s not in chosen][: count - len(chosen)]
    return chosen


def auto_slice(prepared: Path) -> str:
    """``--slice auto``: the id of the best-ranked train slice of a prepared set."""
    ranked = rank_slices(SliceSet(prepared, "train"))
    if not ranked:
        raise InputError(prepared, "has no train slice with lung and infection to choose; give --slice ID")
    return ranked[0].id
