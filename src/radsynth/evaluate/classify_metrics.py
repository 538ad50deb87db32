"""Classification metrics from a confusion matrix, pooled and per test patient with 95 % t-intervals.

For each class c (one-vs-rest): TP, FP, FN, TN; sensitivity = recall = TP / (TP + FN) (Zunair
eq. 7), specificity = TN / (TN + FP), precision = TP / (TP + FP), F1 = 2 P R / (P + R) (Liang
Table I); accuracy = trace / total. A binary task's headline numbers are those of the positive
(last) class, with its false negatives (Zunair Tables 1-2). A ratio with a zero denominator is NaN.

Intervals (CoSinGAN Tables 2-3): each score computed per test patient (all its images pooled),
then the mean and Student-t 95 % interval over patients (``stats.t_interval``; NaN units left out).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_confusion_matrix

from radsynth.evaluate.stats import t_interval

CLASS_SCORES = ("sensitivity", "specificity", "precision", "recall", "f1")


def confusion_matrix(targets: Sequence[int], predictions: Sequence[int], num_classes: int) -> np.ndarray:
    """(K, K) int64 counts, rows = true class, columns = predicted class."""
    t = torch.as_tensor(list(targets), dtype=torch.long)
    p = torch.as_tensor(list(predictions), dtype=torch.long)
    if len(t) == 0:
        return np.zeros((num_classes, num_classes), np.int64)
    return multiclass_confusion_matrix(p, t, num_classes=num_classes).numpy().astype(np.int64)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def scores_from_confusion(cm: np.ndarray, classes: Sequence[str]) -> dict:
    """(K, K) confusion matrix -> {'accuracy', 'per_class': {class: {tp, fp, fn, tn, sensitivity, ...}}}."""
    cm = np.asarray(cm, dtype=np.int64)
    total = int(cm.sum())
    out = {"accuracy": _ratio(float(np.trace(cm)), total), "images": total, "per_class": {}}
    for k, name in enumerate(classes):
        tp = int(cm[k, k])
        fn = int(cm[k].sum() - tp)
        fp = int(cm[:, k].sum() - tp)
        tn = total - tp - fn - fp
        sensitivity = _ratio(tp, tp + fn)
        precision = _ratio(tp, tp + fp)
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)  # = 2PR / (P + R)
        out["per_class"][name] = {
            "tp": tp, "fp": fp, "fn": fn, "tn": tn, "support": tp + fn,
            "sensitivity": sensitivity, "specificity": _ratio(tn, tn + fp), "precision": precision, "recall": sensitivity, "f1": f1,
        }
    return out


def summarise_classification(targets: Sequence[int], predictions: Sequence[int], units: Sequence[str], classes: Sequence[str]) -> dict:
    """Pooled scores, per-patient scores and their t-intervals (accuracy and every class score)."""
    k = len(classes)
    pooled = scores_from_confusion(confusion_matrix(targets, predictions, k), classes)
    per_unit: dict[str, dict] = {}
    for unit in dict.fromkeys(units):
        chosen = [i for i, u in enumerate(units) if u == unit]
        per_unit[unit] = scores_from_confusion(confusion_matrix([targets[i] for i in chosen], [predictions[i] for i in chosen], k), classes)
    intervals = {"accuracy": t_interval([s["accuracy"] for s in per_unit.values()]).as_dict(), "per_class": {}}
    for name in classes:
        intervals["per_class"][name] = {
            score: t_interval([s["per_class"][name][score] for s in per_unit.values()]).as_dict() for score in ("sensitivity", "specificity", "precision", "f1")
        }
    return {
        "confusion_matrix": confusion_matrix(targets, predictions, k).tolist(),
        "pooled": pooled,
        "intervals": intervals,
        "per_patient": {u: {"images": s["images"], "accuracy": s["accuracy"]} for u, s in per_unit.items()},
        "units": len(per_unit),
    }
