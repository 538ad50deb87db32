"""Training pools and real test sets of the classification protocols.

Class of an image: for a CT set with label maps, infection ``present`` / ``absent`` (any label
>= 2 in the slice; CoSinGAN 3.3.1); for an X-ray set, its ``klass`` column. ``classes`` lists the
classes used, positive last (e.g. ``Normal,COVID-19``); images of other classes are left out, so
Normal vs COVID-19, Pneumonia vs COVID-19 and 3-class tasks come from the same prepared set.

A classification SPEC (``radsynth evaluate classify --train``):

* ``oc`` / ``real``            the real train split (Zunair's "Real", CoSinGAN's OC-TS); with config
                               ``positive_copies`` K > 1 each positive-class image K times (Liang's
                               "original imbalanced" set: COVID-19 duplicated 8 times);
* ``sin:ID``, ``two:ID1,ID2``  one / two real images (CoSinGAN's Sin-TS, Two-TS; ``auto`` on CT sets);
* ``synth:DIR[,DIR2]``         "synthetic only": the classes the synthetic sets hold come only from
                               them, the other classes from the real set (Zunair Tables 1-2, last
                               column; a CT synthetic set holds both classes, so O-STS is all synthetic);
* ``add:DIR[,DIR2]``           real + synthetic ("Real + G_NC", "Real + G_NC + G_PC"); with config
                               ``skew`` > 0 only as many synthetic positives as bring the skew
                               (negatives / positives, Zunair eq. 6) down to it (over-sampling);
* ``add:P:DIR``, ``replace:P:DIR`` the segmentation sweeps (``radsynth.evaluate.protocols``).

Test sets hold real held-out patients only; training images of a test patient (real, or synthetic
through the image they were made from) are refused (``protocols._refuse_test_patients``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.evaluate.protocols import (
    KINDS,
    SetRecord,
    _choose,
    _fraction,
    _load,
    _pick_auto,
    _record,
    _refuse_test_patients,
    is_synthetic,
    parse_spec,
)
from radsynth.training.trainer import step_seed

CT_CLASSES = ("absent", "present")  # infection in the slice (CoSinGAN 3.3.1: 0 no infection, 1 COVID-19)
CLASSIFY_SPEC_HELP = "oc | real | sin:ID | two:ID1,ID2 | synth:DIR[,DIR2] | add:DIR[,DIR2] | add:P:DIR | replace:P:DIR"


@dataclass(frozen=True)
class ClassifySpec:
    """A parsed classification SPEC; ``fraction`` None = every synthetic image (or up to the skew target)."""

    kind: str
    text: str
    slice_ids: tuple[str, ...] = ()
    fraction: float | None = None
    paths: tuple[Path, ...] = ()

    @property
    def default_name(self) -> str:
        names = " + ".join(p.name for p in self.paths)
        if self.kind == "oc":
            return "Real"
        if self.kind == "synth":
            return f"Only synthetic ({names})"
        if self.kind == "add" and self.fraction is None:
            return f"Real + {names}"
        if self.kind in ("add", "replace"):
            return f"{self.kind} {self.fraction:.0%} ({names})"
        return {"sin": "Sin-TS", "two": "Two-TS"}[self.kind]


def parse_classify_spec(text: str) -> ClassifySpec:
    """SPEC text -> ClassifySpec (see the module docstring)."""
    kind, _, rest = text.partition(":")
    if text == "real":
        return ClassifySpec("oc", text)
    if kind not in KINDS:
        raise InputError("--train", f"unknown protocol '{text}'; expected {CLASSIFY_SPEC_HELP}")
    if kind in ("synth", "add") and rest:
        head, sep, _ = rest.partition(":")
        numeric = bool(sep) and kind == "add"
        if numeric:
            _fraction(head, text, at_most_one=False)  # raises on a bad proportion
        else:
            paths = tuple(Path(p) for p in rest.split(",") if p)
            if not paths:
                raise InputError("--train", f"'{text}': name at least one synthetic set")
            return ClassifySpec(kind, text, paths=paths)
    spec = parse_spec(text)
    return ClassifySpec(spec.kind, spec.text, spec.slice_ids, spec.fraction if spec.kind in ("add", "replace") else None,
                        (spec.path,) if spec.path is not None else ())


def has_label_maps(dataset: SliceSet) -> bool:
    return dataset.info.get("scheme", "none") != "none" and all(r["label"] for r in dataset.rows)


def image_class(dataset: SliceSet, index: int) -> str:
    """'present' / 'absent' for a slice with a label map (infection = any label >= 2), else its klass."""
    row = dataset.rows[index]
    if has_label_maps(dataset):
        if row.get("has_infection") in ("0", "1"):
            return CT_CLASSES[int(row["has_infection"])]
        return CT_CLASSES[int(bool((dataset[index][1] >= 2).any()))]
    return row["klass"]


def resolve_classes(dataset: SliceSet, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The task's classes, positive last: ``wanted`` if given, else absent/present (CT) or the set's sorted classes."""
    if wanted:
        if len(wanted) < 2 or len(set(wanted)) != len(wanted):
            raise InputError("classes", f"need at least two distinct classes, got {','.join(wanted)}")
        return wanted
    if has_label_maps(dataset):
        return CT_CLASSES
    classes = tuple(sorted({r["klass"] for r in dataset.rows if r["klass"]}))
    if len(classes) < 2:
        raise InputError(dataset.root, "has fewer than two classes in its klass column; give --classes")
    return classes


@dataclass
class ClassSet:
    """Images and class indices. images (N, 1, S, S) float32 in [-1, 1]; targets (N,) int64 into ``classes``."""

    images: torch.Tensor
    targets: torch.Tensor
    rows: list[dict[str, str]]  # manifest rows plus 'set', 'source' (real / synth), 'unit' (patient key)
    classes: tuple[str, ...]
    sources: list[SetRecord] = field(default_factory=list)
    lesions: torch.Tensor | None = None  # (N, S, S) bool infection (labels >= 2) of a CT test set; None without label maps

    def counts(self) -> dict[str, int]:
        return {c: int((self.targets == k).sum()) for k, c in enumerate(self.classes)}

    @property
    def skew(self) -> float:
        """Negatives / positives (Zunair eq. 6), the positive class being the last; inf without positives."""
        positives = int((self.targets == len(self.classes) - 1).sum())
        return (len(self.targets) - positives) / positives if positives else math.inf

    @property
    def patients(self) -> set[str]:
        return {r["patient"] for r in self.rows}


def _indices_of(dataset: SliceSet, classes: tuple[str, ...], where: str) -> tuple[list[int], list[int]]:
    """Rows of ``dataset`` whose class is in ``classes`` -> (indices, class indices)."""
    indices, targets = [], []
    for i in range(len(dataset)):
        klass = image_class(dataset, i)
        if klass in classes:
            indices.append(i)
            targets.append(classes.index(klass))
    if not indices:
        raise InputError(dataset.root, f"has no {where} image of the classes {', '.join(classes)}")
    return indices, targets


def _gather(parts: list[tuple[SliceSet, list[int], list[int], str]], classes: tuple[str, ...], size: int | None, with_lesions: bool = False) -> ClassSet:
    images, labels, targets, rows, sources = [], [], [], [], []
    for dataset, indices, klass, tag in parts:
        if not indices:
            continue
        image, label = _load(dataset, indices, size)
        images.append(image)
        labels.append(label)
        targets += klass
        rows += [{**dataset.rows[i], "set": dataset.root.name, "source": tag, "unit": dataset.rows[i]["patient"]} for i in indices]
        sources.append(_record(dataset, indices))
    lesions = torch.cat(labels) >= 2 if with_lesions else None
    return ClassSet(torch.cat(images), torch.tensor(targets, dtype=torch.long), rows, classes, sources, lesions)


def load_class_test_set(path: Path, classes: tuple[str, ...], split: str = "test", size: int | None = None) -> ClassSet:
    """The real ``split`` of a prepared set, restricted to ``classes``; with lesion masks where it has label maps."""
    dataset = SliceSet(path, split=split)
    if is_synthetic(dataset):
        raise InputError(path, "is a synthetic set; classifiers are tested on REAL held-out patients (give a prepared real set to --test)")
    indices, targets = _indices_of(dataset, classes, f"'{split}'")
    return _gather([(dataset, indices, targets, "real")], classes, size, with_lesions=has_label_maps(dataset))


@dataclass
class ClassPool(ClassSet):
    """A training pool: a ``ClassSet`` plus what the protocol did."""

    name: str = ""
    spec: str = ""
    reference_size: int = 0  # real training images of the task: samples per epoch with equal_samples
    skew_target: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def real_images(self) -> int:
        return sum(r["source"] == "real" for r in self.rows)

    @property
    def synthetic_images(self) -> int:
        return len(self.rows) - self.real_images


def _synthetic_parts(spec: ClassifySpec, classes: tuple[str, ...], test_patients: set[str]) -> list[tuple[SliceSet, list[int], list[int]]]:
    parts = []
    for path in spec.paths:
        dataset = SliceSet(path)
        if not is_synthetic(dataset):
            raise InputError(path, "is not a synthetic set (written by `radsynth synth`); use it as the real set instead")
        indices, targets = _indices_of(dataset, classes, "synthetic")
        _refuse_test_patients(dataset, indices, test_patients, "synthetic")
        parts.append((dataset, indices, targets))
    return parts


def _skew_cap(real_targets: list[int], n_classes: int, target: float, available: int) -> int:
    """Synthetic positives to add so that negatives / positives <= ``target`` (all of them when 0)."""
    if target <= 0:
        return available
    positive = n_classes - 1
    negatives = sum(t != positive for t in real_targets)
    positives = len(real_targets) - negatives
    return min(available, max(0, math.ceil(negatives / target) - positives))


def build_class_pool(
    spec: ClassifySpec, real_path: Path, test: ClassSet, size: int, seed: int = 0, skew: float = 0.0, name: str | None = None,
    positive_copies: int = 1,
) -> ClassPool:
    """The training pool of ``spec`` at ``size`` px; the real data is the train split of ``real_path``.

    ``positive_copies`` K > 1 (``oc`` only): each real positive-class image appears K times (over-sampling by duplication).
    """
    if skew > 0 and not (spec.kind == "add" and spec.fraction is None):
        raise InputError("skew", f"a target skew applies to add:DIR[,DIR2] (over-sampling with synthetic images), not to '{spec.text}'")
    if positive_copies > 1 and spec.kind != "oc":
        raise InputError("positive_copies", f"duplicating the positive class applies to the real set (real / oc), not to '{spec.text}'")
    real = SliceSet(real_path, split="train")
    if is_synthetic(real):
        raise InputError(real_path, "is a synthetic set; the real training data must be a prepared real set")
    classes = test.classes
    all_real, real_targets = _indices_of(real, classes, "real training")
    _refuse_test_patients(real, all_real, test.patients, "real")
    rng = np.random.default_rng(step_seed(seed, f"classify-{spec.kind}", 0))
    parts: list[tuple[SliceSet, list[int], list[int], str]] = []
    notes: list[str] = []
    target_of = dict(zip(all_real, real_targets))
    if spec.kind == "oc":
        positive = len(classes) - 1
        repeat = [positive_copies if t == positive else 1 for t in real_targets]
        indices = [i for i, k in zip(all_real, repeat) for _ in range(k)]
        parts.append((real, indices, [target_of[i] for i in indices], "real"))
        if positive_copies > 1:
            notes.append(f"each of the {repeat.count(positive_copies)} real {classes[positive]} images used {positive_copies} times")
    elif spec.kind in ("sin", "two"):
        count = 1 if spec.kind == "sin" else 2
        if spec.slice_ids == ("auto",):
            if not has_label_maps(real):
                raise InputError(real_path, f"{spec.kind}:auto needs label maps (a CT set); give image ids")
            chosen = _pick_auto(real, count)
        else:
            index = {r["id"]: i for i, r in enumerate(real.rows)}
            missing = [s for s in spec.slice_ids if s not in index or index[s] not in target_of]
            if missing:
                raise InputError(real_path, f"no training image of the classes {', '.join(classes)} with id {', '.join(missing)}")
            chosen = [index[s] for s in spec.slice_ids]
        parts.append((real, chosen, [target_of[i] for i in chosen], "real"))
    else:
        synthetic = _synthetic_parts(spec, classes, test.patients)
        if spec.kind == "synth":
            covered = {t for _, _, targets in synthetic for t in targets}
            keep = [i for i in all_real if target_of[i] not in covered]
            parts.append((real, keep, [target_of[i] for i in keep], "real"))
            parts += [(d, i, t, "synth") for d, i, t in synthetic]
        elif spec.fraction is None:  # add:DIR[,DIR2]: every synthetic image, or up to the skew target
            parts.append((real, all_real, real_targets, "real"))
            pool = [(d, i, t) for d, indices, targets in synthetic for i, t in zip(indices, targets)]
            positive = len(classes) - 1
            if skew > 0 and any(t != positive for _, _, t in pool):
                raise InputError("skew", "over-sampling to a skew adds positive-class images only; the synthetic sets also hold other classes")
            wanted = _skew_cap(real_targets, len(classes), skew, len(pool))
            chosen = sorted(rng.choice(len(pool), size=wanted, replace=False).tolist()) if wanted < len(pool) else list(range(len(pool)))
            if skew > 0 and wanted == len(pool):
                notes.append(f"all {len(pool)} synthetic images added; the skew target {skew} may not be reached")
            for dataset, _, _ in synthetic:
                mine = [pool[k] for k in chosen if pool[k][0] is dataset]
                parts.append((dataset, [i for _, i, _ in mine], [t for _, _, t in mine], "synth"))
        else:  # add:P:DIR / replace:P:DIR with the segmentation sweeps' counts
            dataset, indices, targets = synthetic[0]
            reference = len(all_real)
            n_synth = round(spec.fraction * reference)
            n_real = reference - n_synth if spec.kind == "replace" else reference
            keep = all_real if n_real == reference else [all_real[k] for k in _choose(rng, reference, n_real, real_path, "real")]
            parts.append((real, keep, [target_of[i] for i in keep], "real"))
            picked = _choose(rng, len(indices), n_synth, spec.paths[0], "synthetic")
            parts.append((dataset, [indices[k] for k in picked], [targets[k] for k in picked], "synth"))
    pool = _gather(parts, classes, size)
    missing = [c for c, n in pool.counts().items() if n == 0]
    if missing and spec.kind not in ("sin", "two"):
        raise InputError("--train", f"'{spec.text}' leaves no training image of class {', '.join(missing)}")
    return ClassPool(
        pool.images, pool.targets, pool.rows, classes, pool.sources, name=name or spec.default_name, spec=spec.text,
        reference_size=len(all_real), skew_target=skew, notes=notes,
    )
