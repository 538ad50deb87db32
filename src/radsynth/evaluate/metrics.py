"""Segmentation metrics from streaming confusion counts: DSC, sensitivity, specificity per class.

``SegmentationStats`` is a torchmetrics ``Metric``: ``update(pred, target, index)`` turns each
image's predicted and true label maps into per-class (TP, FP, FN, TN) pixel counts and keeps only
those counts (4 numbers per class per image), never the maps; ``compute()`` returns them. The
counts are then summed per test patient (or fold, or subgroup) with ``sum_by`` and turned into
scores with ``scores``, so a patient's DSC is that of all its slices together (a volume DSC).

Classes are regions of radsynth's label schema (0 bg, 1 lung, 2 GGO, 3 consolidation):
``lung`` = 1 (the lung label of CoSinGAN's ternary mask: lung without infection), ``infection``
= 2 or 3, ``ggo`` = 2, ``consolidation`` = 3. Predictions are label maps in the same schema (a
3-class segmenter's infection class is written as 2, so only ``lung`` and ``infection`` are
meaningful for it).

DSC = 2TP / (2TP + FP + FN), sensitivity = TP / (TP + FN), specificity = TN / (TN + FP)
(Jiang et al. IV-B-2). A ratio whose denominator is 0 (a class absent from both truth and
prediction) is NaN and left out of means and intervals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

REGIONS: dict[str, tuple[int, ...]] = {
    "lung": (1,),
    "infection": (2, 3),
    "ggo": (2,),
    "consolidation": (3,),
}
REGION_TITLES = {"lung": "Lung", "infection": "Infection", "ggo": "GGO", "consolidation": "Consolidation"}
SCORES = ("dsc", "sensitivity", "specificity")
TP, FP, FN, TN = range(4)


def region_mask(label: torch.Tensor, region: str) -> torch.Tensor:
    """Boolean mask of ``region`` in a schema label map of any shape."""
    values = REGIONS[region]
    mask = label == values[0]
    for value in values[1:]:
        mask |= label == value
    return mask


def confusion_counts(pred: torch.Tensor, target: torch.Tensor, regions: Sequence[str]) -> torch.Tensor:
    """(N, H, W) predicted and true schema labels -> (N, R, 4) int64 counts (TP, FP, FN, TN) per region."""
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(f"pred and target must both be (N, H, W), got {tuple(pred.shape)} and {tuple(target.shape)}")
    out = []
    for region in regions:
        p, t = region_mask(pred, region).flatten(1), region_mask(target, region).flatten(1)
        tp = (p & t).sum(1)
        fp = (p & ~t).sum(1)
        fn = (~p & t).sum(1)
        tn = p.shape[1] - tp - fp - fn
        out.append(torch.stack([tp, fp, fn, tn], dim=1))
    return torch.stack(out, dim=1).long()


class SegmentationStats(Metric):
    """Streaming per-image confusion counts; ``compute()`` -> (index (M,), counts (M, R, 4)).

    ``index`` is whatever integer the caller gives each image (its row in the test set), so the
    counts can later be grouped by patient, fold or subgroup without keeping any prediction.
    """

    full_state_update = False

    def __init__(self, regions: Sequence[str]) -> None:
        super().__init__(sync_on_compute=False)  # one process scores the whole test set (rank 0 under torchrun); no gather
        unknown = [r for r in regions if r not in REGIONS]
        if unknown:
            raise ValueError(f"unknown region(s) {unknown}; known: {list(REGIONS)}")
        self.regions = tuple(regions)
        self.add_state("counts", default=[], dist_reduce_fx="cat")
        self.add_state("index", default=[], dist_reduce_fx="cat")

    def update(self, pred: torch.Tensor, target: torch.Tensor, index: torch.Tensor) -> None:
        self.counts.append(confusion_counts(pred, target, self.regions).cpu())
        self.index.append(torch.as_tensor(index).long().reshape(-1).cpu())

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.counts:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, len(self.regions), 4, dtype=torch.long)
        return dim_zero_cat(self.index), dim_zero_cat(self.counts)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def scores(counts: np.ndarray) -> dict[str, np.ndarray]:
    """(..., 4) counts (TP, FP, FN, TN) -> {'dsc', 'sensitivity', 'specificity'} arrays of shape (...)."""
    c = np.asarray(counts, dtype=np.float64)
    tp, fp, fn, tn = c[..., TP], c[..., FP], c[..., FN], c[..., TN]
    return {
        "dsc": _ratio(2 * tp, 2 * tp + fp + fn),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
    }


def sum_by(counts: np.ndarray, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Sum (M, R, 4) per-image counts over images that share a key -> {key: (R, 4)}, keys in first-seen order."""
    out: dict[str, np.ndarray] = {}
    for key, row in zip(keys, np.asarray(counts)):
        out[key] = out[key] + row if key in out else row.astype(np.int64).copy()
    return out
