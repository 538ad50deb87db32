"""Per-image confusion counts -> the numbers the papers print: means with 95 % t-intervals.

The unit of the interval is a test patient (CoSinGAN: the 5 test scans, each scan's slices pooled
into one volume DSC) or a fold (Jiang: the test images split in order into ``folds`` equal parts).
Each score is reported as ``mean`` (over units) with ``lo``/``hi``/``half`` (the t-interval,
n - 1 degrees of freedom), ``n`` units, and ``pooled`` (all the pixels of the set together).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from radsynth.errors import InputError
from radsynth.evaluate.metrics import SCORES, scores, sum_by
from radsynth.evaluate.stats import t_interval


def unit_keys(rows: Sequence[dict[str, str]], ci: str, folds: int) -> list[str]:
    """The CI unit of each test row: its patient key, or its fold (rows in order, ``folds`` near-equal parts)."""
    if ci == "patient":
        return [r["unit"] for r in rows]
    if folds > len(rows):
        raise InputError("folds", f"{folds} folds need at least {folds} test images, the test set has {len(rows)}")
    keys = [""] * len(rows)
    for fold, part in enumerate(np.array_split(np.arange(len(rows)), folds)):
        for i in part:
            keys[i] = f"fold{fold}"
    return keys


def group_keys(rows: Sequence[dict[str, str]], group_by: str) -> list[str] | None:
    """The subgroup of each row (a manifest column, or 'set' = which --test folder), None without grouping."""
    if not group_by:
        return None
    if group_by not in rows[0]:
        raise InputError("group_by", f"the test manifest has no column '{group_by}' (columns: {', '.join(sorted(rows[0]))})")
    return [r[group_by] or "(empty)" for r in rows]


def summarise_counts(counts: np.ndarray, units: Sequence[str], regions: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """(M, R, 4) per-image counts and their units -> {region: {score: interval dict + 'pooled'}}."""
    per_unit = sum_by(counts, units)
    unit_scores = scores(np.stack(list(per_unit.values())))  # each (U, R)
    pooled = scores(np.asarray(counts).sum(0))  # each (R,)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for r, region in enumerate(regions):
        out[region] = {}
        for name in SCORES:
            interval = t_interval(unit_scores[name][:, r].tolist()).as_dict()
            out[region][name] = {**interval, "pooled": float(pooled[name][r])}
    return out


def per_unit_scores(counts: np.ndarray, units: Sequence[str], regions: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """{unit: {region: {score: value, ...}, 'slices': n}} (NaN for an empty class)."""
    per_unit = sum_by(counts, units)
    sizes = {key: list(units).count(key) for key in per_unit}
    out = {}
    for key, total in per_unit.items():
        values = scores(total)
        out[key] = {region: {name: float(values[name][r]) for name in SCORES} for r, region in enumerate(regions)}
        out[key]["slices"] = sizes[key]
    return out


def summarise(counts: np.ndarray, rows: Sequence[dict[str, str]], regions: Sequence[str], ci: str, folds: int, group_by: str) -> dict:
    """Overall and per-subgroup intervals, and per-patient scores, of a test set's per-image counts."""
    counts = np.asarray(counts)
    units = unit_keys(rows, ci, folds)
    result = {
        "overall": summarise_counts(counts, units, regions),
        "groups": {},
        "per_patient": per_unit_scores(counts, [r["unit"] for r in rows], regions),
    }
    groups = group_keys(rows, group_by)
    if groups is not None:
        for group in dict.fromkeys(groups):
            chosen = [i for i, g in enumerate(groups) if g == group]
            result["groups"][group] = summarise_counts(counts[chosen], [f"{group}|{units[i]}" for i in chosen], regions)
    if ci == "fold":
        result["per_fold"] = per_unit_scores(counts, units, regions)
    return result
