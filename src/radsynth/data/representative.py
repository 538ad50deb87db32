"""Choosing the training slice(s) of one-slice methods: a representative slice with sizeable infection.

CoSinGAN trains on "two representative slices" (Zhang et al. 3.2) without saying how they were
chosen. A one-slice generator learns the whole layout of its slice (where the body ends, how much
air surrounds it) and reproduces it for every mask, so the slice's layout matters as much as its
infection. radsynth ranks the slices of a set:

1. *typical layout first*: the body's share of the image (``body_fraction``) within the set's
   inter-quartile range and a lung at least as large as the set's median lung (both within the
   slice's modality where the set names modalities: scanners frame the body differently);
2. then the most infection pixels.

Picking several slices (``pick_slices``: Two-TS, CoSinGAN's two models) takes them in that order,
each from another patient and, where the set names modalities, another modality (CoSinGAN 3.2: one
representative slice of each of its two modalities; the first from the modality with the most
candidate slices), and only slices that carry the disease:
infection of at least ``SIZEABLE`` x the median candidate's, visible: its contrast (mean infection
minus mean healthy lung of the slice) at least ``VISIBLE`` x the median candidate's of its modality,
and both GGO and consolidation where any candidate shows both (at least ``MIN_CLASS_PIXELS`` each).
Each rule gives way, last rule first, only where no slice meets them all: a fused model that never
saw the disease teaches none, and a model learned from faint lesions renders faint lesions.

Measured on ct-ma20 at 128 px (CoSinGAN's 32 px scale, 1500 + 500 steps, synthesized from 16
masks of held-out patients and compared with their real slices): the slice with the most infection
overall (000646, body 0.85 of the image against a median of 0.61) gives 12.7 dB and a body that
fills the frame (air outside -0.24, real -0.78); the first slice of this ranking (000167, body
0.58) gives 17.0 dB and a body inside dark air (-0.70). Without the visibility rule the second slice
was 000636 (radiopaedia, contrast 0.066 on [0, 1] where the set's train slices pooled give 0.132): its
CoSinGAN rendered infection at 0.5 x the real contrast and IF-STS, fused with it, at 0.53 x (issue 21);
with the rule B is 000647 (radiopaedia, 1469 infection px) and IF-STS carried 0.64 x (cpu preset, seed 0).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from radsynth.data.slices import SliceSet
from radsynth.errors import InputError

SIZEABLE = 0.5  # a picked slice's infection: at least this share of the median candidate's
MIN_CLASS_PIXELS = 16  # at 128 px, scaled by area: a class "shown" by a slice
VISIBLE = 0.75  # a picked slice's infection contrast: at least this share of its modality's median candidate's


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
    ggo: int = 0  # pixels labelled ground-glass opacity (2; every infection pixel of an untyped set)
    consolidation: int = 0  # pixels labelled consolidation (3)
    pixels: int = 128 * 128  # image size, for MIN_CLASS_PIXELS
    contrast: float = float("nan")  # mean infection minus mean healthy lung (label 1), on [-1, 1]; nan without healthy lung


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


def infection_contrast(image: torch.Tensor, label: torch.Tensor) -> float:
    """Mean infection (label >= 2) minus mean healthy lung (label 1) of one slice; image in [-1, 1] (so twice the
    offset on [0, 1] that ``radsynth.quality.fidelity`` reports); nan where either region is empty."""
    image = image.reshape(label.shape).float()
    infection, healthy = label >= 2, label == 1
    if not bool(infection.any()) or not bool(healthy.any()):
        return float("nan")
    return float(image[infection].mean() - image[healthy].mean())


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
            scores.append(SliceScore(i, meta["id"], meta["patient"], meta.get("modality", ""), infection, lung, body,
                                     ggo=int((label == 2).sum()), consolidation=int((label == 3).sum()), pixels=label.numel(),
                                     contrast=infection_contrast(image, label)))
    if has_lung:
        scores = [s for s in scores if s.lung > s.infection]  # a slice with infection but no lung: not a candidate
    if not has_lung or len(scores) < 4:
        return [SliceScore(**{**vars(s), "typical": True}) for s in scores]  # no body measure, or too few slices to say what is typical
    bounds = {}  # per modality (what is typical differs between scanners / sources): body IQR and median lung; None: too few
    for modality in {s.modality for s in scores}:
        group = [s for s in scores if s.modality == modality]
        if len(group) >= 4:
            low, _, high = statistics.quantiles([s.body_fraction for s in group], n=4)
            bounds[modality] = (low, high, statistics.median(s.lung for s in group))

    def typical(s: SliceScore) -> bool:
        if s.modality not in bounds:
            return True
        low, high, lung_median = bounds[s.modality]
        return low <= s.body_fraction <= high and s.lung >= lung_median

    return [SliceScore(**{**vars(s), "typical": typical(s)}) for s in scores]


def rank_slices(dataset: SliceSet) -> list[SliceScore]:
    """Candidate training slices, best first: typical layout before atypical, then most infection (ties by id)."""
    return sorted(score_slices(dataset), key=lambda s: (not s.typical, -s.infection, s.id))


def _shows_both(score: SliceScore) -> bool:
    least = MIN_CLASS_PIXELS * score.pixels / (128 * 128)
    return score.ggo >= least and score.consolidation >= least


def _visible(ranked: list[SliceScore]) -> list[SliceScore]:
    """The candidates whose infection contrast is at least VISIBLE x the median of their modality's candidates
    (a slice without healthy lung to compare with passes)."""
    medians = {}
    for modality in {s.modality for s in ranked}:
        contrasts = [s.contrast for s in ranked if s.modality == modality and not math.isnan(s.contrast)]
        if contrasts:
            medians[modality] = statistics.median(contrasts)

    def visible(s: SliceScore) -> bool:
        median = medians.get(s.modality)
        return math.isnan(s.contrast) or median is None or median <= 0 or s.contrast >= VISIBLE * median

    return [s for s in ranked if visible(s)]


def carries_disease(ranked: list[SliceScore]) -> list[SliceScore]:
    """The candidates (in ranking order) with infection >= SIZEABLE x the median candidate's, visible (``_visible``)
    and, where any candidate shows both GGO and consolidation, both; the last two give way in turn where none is left."""
    if not ranked:
        return []
    least = SIZEABLE * statistics.median(s.infection for s in ranked)
    sizeable = [s for s in ranked if s.infection >= least]
    visible = _visible(ranked)
    sizeable_visible = [s for s in sizeable if s in visible] or sizeable
    both = [s for s in sizeable_visible if _shows_both(s)]
    return both or sizeable_visible


def pick_slices(ranked: list[SliceScore], count: int) -> list[SliceScore]:
    """``count`` slices of a ranking (see the module docstring): slices that carry the disease, each from a
    new patient and a new modality (where named), in ranking order; the rules give way last first."""
    chosen: list[SliceScore] = []

    def new_patient(s: SliceScore) -> bool:
        return s.patient not in {c.patient for c in chosen}

    named = Counter(s.modality for s in ranked if s.modality)
    majority = named.most_common(1)[0][0] if named else ""

    def new_modality(s: SliceScore) -> bool:  # the first slice from the modality with the most candidates ("modality 1")
        if not chosen:
            return not majority or s.modality == majority
        return not s.modality or s.modality not in {c.modality for c in chosen if c.modality}

    disease = carries_disease(ranked)
    passes = [(disease, (new_patient, new_modality)), (disease, (new_patient,)), (ranked, (new_patient, new_modality)),
              (ranked, (new_patient,)), (ranked, ())]
    while len(chosen) < count:
        pick = next((s for pool, rules in passes for s in pool if s not in chosen and all(rule(s) for rule in rules)), None)
        if pick is None:
            break
        chosen.append(pick)
    return chosen


def auto_slice(prepared: Path) -> str:
    """``--slice auto``: the id of the first slice ``pick_slices`` takes from a prepared set's train split."""
    chosen = pick_slices(rank_slices(SliceSet(prepared, "train")), 1)
    if not chosen:
        raise InputError(prepared, "has no train slice with lung and infection to choose; give --slice ID")
    return chosen[0].id
