"""Patient-level splits: deterministic for a seed, never one patient on two sides."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from radsynth.errors import InputError

SPLIT_NAMES = ("train", "val", "test")
DEFAULT_FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}


def parse_fractions(text: str) -> dict[str, float]:
    """'0.7,0.1,0.2' or 'train=0.7,val=0.1,test=0.2' -> {'train': .7, 'val': .1, 'test': .2} (sums to 1)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if all("=" in p for p in parts):
            fractions = {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
        else:
            if len(parts) != 3:
                raise ValueError
            fractions = dict(zip(SPLIT_NAMES, (float(p) for p in parts)))
    except ValueError:
        raise InputError("--split", f"'{text}' is not 'TRAIN,VAL,TEST' fractions or 'name=fraction,...'") from None
    unknown = set(fractions) - set(SPLIT_NAMES)
    if unknown:
        raise InputError("--split", f"unknown split names {sorted(unknown)} (use {', '.join(SPLIT_NAMES)})")
    if any(v < 0 for v in fractions.values()) or not np.isclose(sum(fractions.values()), 1.0, atol=1e-6):
        raise InputError("--split", f"fractions must be non-negative and sum to 1, got {fractions}")
    return {name: fractions.get(name, 0.0) for name in SPLIT_NAMES}


def _allocate(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder allocation of n items; every split asked for gets at least one when n allows."""
    names = [k for k in SPLIT_NAMES if fractions.get(k, 0) > 0]
    exact = {k: n * fractions[k] for k in names}
    counts = {k: int(np.floor(v)) for k, v in exact.items()}
    by_remainder = sorted(names, key=lambda k: (-(exact[k] - counts[k]), SPLIT_NAMES.index(k)))
    for k in by_remainder[: n - sum(counts.values())]:
        counts[k] += 1
    for k in names:
        if counts[k] == 0:
            donor = max(names, key=lambda d: counts[d])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[k] += 1
    return counts


def split_patients(
    patients: Sequence[str],
    fractions: Mapping[str, float],
    seed: int = 0,
    strata: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Assign each patient id to 'train' / 'val' / 'test'.

    The assignment depends only on the set of patient ids, the fractions and the seed (not on the
    order the ids come in). With ``strata`` (patient -> class), each class is split on its own so
    that every split keeps the class balance.
    """
    unique = sorted(set(patients))
    groups: dict[str, list[str]] = {}
    for patient in unique:
        groups.setdefault(strata.get(patient, "") if strata else "", []).append(patient)
    assignment: dict[str, str] = {}
    for offset, (_, members) in enumerate(sorted(groups.items())):
        rng = np.random.default_rng([seed, offset])
        order = [members[i] for i in rng.permutation(len(members))]
        start = 0
        for name, count in _allocate(len(order), fractions).items():
            for patient in order[start : start + count]:
                assignment[patient] = name
            start += count
    return assignment


def holdout_fractions(n_patients: int, test_share: float) -> dict[str, float]:
    """Train / test fractions (no val) holding out ceil(``test_share`` x n) patients for testing, at least one,
    and keeping at least one for training; e.g. a quarter of 20 -> 15 / 5 (CoSinGAN 3.2), of 14 -> 10 / 4."""
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must lie in (0, 1), got {test_share}")
    if n_patients < 2:
        return {"train": 0.5, "val": 0.0, "test": 0.5}  # one patient: split_patients puts it in train
    test = min(n_patients - 1, max(1, math.ceil(test_share * n_patients - 1e-9)))
    return {"train": (n_patients - test) / n_patients, "val": 0.0, "test": test / n_patients}
