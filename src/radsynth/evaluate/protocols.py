"""Training sets of the papers' segmentation protocols, and the real test set they are scored on.

A protocol SPEC names the training set (the real set is the ``train`` split of a prepared set):

* ``oc``            OC-TS: every real training slice (CoSinGAN 3.3.1);
* ``sin:ID``        Sin-TS: one real slice (``sin:auto`` picks a representative slice with sizeable infection);
* ``two:ID1,ID2``   Two-TS: two real slices (``two:auto``: the best slices of two patients);
* ``synth:DIR``     a synthetic set written by ``radsynth synth`` (O-STS, RC-STS, IF-STS);
* ``replace:P:DIR`` Jiang IV-B-2 experiment 1: the real set with a proportion P replaced by synthetic images;
* ``add:P:DIR``     Jiang IV-B-2 experiment 2: the real set plus P times its size of synthetic images.

Every protocol sees the same number of samples (CoSinGAN 3.3.1: "each training set contains the
same number of training samples ... the parameters are updated the same number of times"): an
epoch is ``samples_per_epoch`` samples, by default the size of OC-TS, drawn as repeated shuffles
of the training pool (``epoch_order``), so steps x batch is equal for every protocol. The one
exception is ``add:P``: Jiang's second experiment trains on the larger set for the same epochs, so
its epochs grow with the pool (``epoch_scale`` = (1 + P) x; ``replace`` keeps the real set's size).
With ``epoch_order = grouped`` an ``add:P`` pool is drawn as OC-TS instead: each real slice and the
synthetic images made from it (their ``condition_id``) form a group, an epoch draws the groups exactly
as OC-TS draws its slices, and one member of each drawn group, chosen uniformly, stands for it
(``grouped_epoch_order``). Every real slice is then seen as often as in OC-TS, as itself or as an edit.

Test sets hold REAL held-out patients only: a synthetic set is refused as a test set, and a
training image (real, or synthetic through the condition it was made from) of a test patient is
refused with an ``InputError``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from radsynth.data.augment import resize_batch
from radsynth.data.labels import SCHEMES
from radsynth.data.representative import pick_slices, rank_slices
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.evaluate import SPEC_HELP
from radsynth.training.trainer import step_seed

KINDS = ("oc", "sin", "two", "synth", "replace", "add")


@dataclass(frozen=True)
class ProtocolSpec:
    """A parsed SPEC."""

    kind: str
    text: str
    slice_ids: tuple[str, ...] = ()
    fraction: float = 0.0
    path: Path | None = None

    @property
    def default_name(self) -> str:
        """Row label in the tables: the paper's set names, the synthetic folder's name, or the sweep step."""
        if self.kind == "synth":
            return Path(self.path).name
        if self.kind in ("replace", "add"):
            return f"{self.kind} {self.fraction:.0%} ({Path(self.path).name})"
        return {"oc": "OC-TS", "sin": "Sin-TS", "two": "Two-TS"}[self.kind]


def _fraction(text: str, spec: str, at_most_one: bool) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise InputError("--train", f"'{spec}': '{text}' is not a proportion such as 0.3 or 30%") from None
    if not math.isfinite(value) or value < 0 or (at_most_one and value > 1):
        raise InputError("--train", f"'{spec}': the proportion must lie in {'[0, 1]' if at_most_one else '[0, inf)'}, got {value}")
    return value


def parse_spec(text: str) -> ProtocolSpec:
    """'oc', 'sin:ID', 'two:ID1,ID2', 'synth:DIR', 'replace:P:DIR', 'add:P:DIR' -> ProtocolSpec."""
    kind, _, rest = text.partition(":")
    if kind not in KINDS:
        raise InputError("--train", f"unknown protocol '{text}'; expected {SPEC_HELP}")
    if kind == "oc":
        if rest:
            raise InputError("--train", f"'oc' takes no argument, got '{text}'")
        return ProtocolSpec("oc", text)
    if not rest:
        raise InputError("--train", f"'{kind}' needs an argument; expected {SPEC_HELP}")
    if kind in ("sin", "two"):
        ids = tuple(s.strip() for s in rest.split(",") if s.strip())
        wanted = 1 if kind == "sin" else 2
        if ids != ("auto",) and (len(ids) != wanted or len(set(ids)) != wanted):
            raise InputError("--train", f"'{text}': {kind} takes {wanted} distinct slice id(s) or 'auto'")
        return ProtocolSpec(kind, text, slice_ids=ids)
    if kind == "synth":
        return ProtocolSpec("synth", text, path=Path(rest))
    fraction, sep, path = rest.partition(":")
    if not sep or not path:
        raise InputError("--train", f"'{text}': expected {kind}:P:DIR")
    return ProtocolSpec(kind, text, fraction=_fraction(fraction, text, at_most_one=kind == "replace"), path=Path(path))


@dataclass(frozen=True)
class SetRecord:
    """One data folder as used: where, which split, how many slices, and a fingerprint of exactly those."""

    path: str
    split: str | None
    synthetic: bool
    slices: int
    fingerprint: str
    has_lung: bool
    infection_typed: bool


@dataclass
class TrainingSet:
    """The pool a segmenter is trained on. images (N, 1, S, S) float32 in [-1, 1]; labels (N, S, S) int64 schema."""

    name: str
    spec: str
    images: torch.Tensor
    labels: torch.Tensor
    ids: list[str]  # 'real:<id>' or 'synth:<id>'
    patients: list[str]
    real_images: int
    synthetic_images: int
    reference_size: int  # OC-TS size: the default samples per epoch of every protocol
    sources: list[SetRecord] = field(default_factory=list)
    epoch_scale: float = 1.0  # samples per epoch relative to the default: pool / real set for add:P (Jiang IV-B-2), else 1
    groups: np.ndarray | None = None  # add:P: (N,) the index of each item's real slice (real items 0..R-1 first); None when unknown
    groups_problem: str = ""  # why ``groups`` is None for an add:P pool (names the first synthetic image that names no real slice)

    @property
    def has_lung(self) -> bool:
        return all(s.has_lung for s in self.sources)

    @property
    def infection_typed(self) -> bool:
        return all(s.infection_typed for s in self.sources)


@dataclass
class TestSet:
    """Real held-out slices. ``images[k]`` / ``labels[k]`` hold set k; ``rows`` is flat, in the same order."""

    images: list[torch.Tensor]
    labels: list[torch.Tensor]
    rows: list[dict[str, str]]  # each with 'set', 'id', 'patient', 'unit' (patient key) and the manifest columns
    sources: list[SetRecord]

    @property
    def patients(self) -> set[str]:
        """Raw patient ids of every test slice (what training images are checked against)."""
        return {r["patient"] for r in self.rows}

    @property
    def has_lung(self) -> bool:
        return all(s.has_lung for s in self.sources)

    @property
    def infection_typed(self) -> bool:
        return all(s.infection_typed for s in self.sources)


def _condition_set_info(info: dict) -> dict | None:
    """dataset.json of the set a synthetic set was made from (its ``condition_set``), or None where it names none or
    that cannot be read."""
    condition_set = info.get("condition_set")
    if not condition_set:
        return None
    try:
        return json.loads((Path(condition_set) / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def set_flags(dataset: SliceSet) -> tuple[bool, bool]:
    """(has_lung, infection_typed) of a prepared or synthetic set.

    A synthetic set inherits the flags of the condition set it was made from; when that cannot be
    read, its scheme decides lung and infection counts as untyped (the safe reading).
    """
    info = dataset.info
    if "has_lung" in info and "infection_typed" in info:
        return bool(info["has_lung"]), bool(info["infection_typed"])
    parent = _condition_set_info(info)
    if parent is not None:
        return bool(parent.get("has_lung", True)), bool(parent.get("infection_typed", False))
    scheme = SCHEMES.get(info.get("scheme", "none"), SCHEMES["none"])
    return scheme.has_lung, False


def is_synthetic(dataset: SliceSet) -> bool:
    return bool(dataset.info.get("synthetic")) or any("checkpoint_sha256" in r for r in dataset.rows[:1])


def fingerprint(dataset: SliceSet, indices: list[int]) -> str:
    """SHA-256 over (id, image bytes hash, label bytes hash) of the rows used, in order."""
    digest = hashlib.sha256()
    for i in indices:
        row = dataset.rows[i]
        digest.update(row["id"].encode() + b"\0")
        for column in ("image", "label"):
            if row[column]:
                digest.update(hashlib.sha256((dataset.root / row[column]).read_bytes()).digest())
    return digest.hexdigest()


def _record(dataset: SliceSet, indices: list[int]) -> SetRecord:
    has_lung, typed = set_flags(dataset)
    return SetRecord(str(dataset.root.resolve()), dataset.split, is_synthetic(dataset), len(indices), fingerprint(dataset, indices), has_lung, typed)


def _require_labels(dataset: SliceSet) -> None:
    if dataset.info.get("scheme") == "none" or any(not r["label"] for r in dataset.rows):
        raise InputError(dataset.root, "has slices without label maps; segmentation needs a label map for every slice")


def _load(dataset: SliceSet, indices: list[int], size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows -> ((N, 1, S, S) images, (N, S, S) labels), resized to ``size`` (None: as stored, all the same size)."""
    images, labels = [], []
    for i in indices:
        image, label, _ = dataset[i]
        if size is not None:
            image, label = resize_batch(image[None], label[None], size)
            image, label = image[0], label[0]
        images.append(image)
        labels.append(label)
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:
        raise InputError(dataset.root, f"slices differ in size {sorted(shapes)}; prepare the set with one --size")
    return torch.stack(images), torch.stack(labels)


def load_test_sets(paths: list[Path], split: str = "test") -> TestSet:
    """The ``split`` of each prepared set in ``paths``: real, labelled slices only."""
    images, labels, rows, sources = [], [], [], []
    tags = [Path(p).name for p in paths]
    if len(set(tags)) != len(tags):
        tags = [f"{i}:{t}" for i, t in enumerate(tags)]
    for path, tag in zip(paths, tags):
        dataset = SliceSet(path, split=split)
        if is_synthetic(dataset):
            raise InputError(path, "is a synthetic set; every protocol is tested on REAL held-out patients (give a prepared real set to --test)")
        _require_labels(dataset)
        indices = list(range(len(dataset)))
        image, label = _load(dataset, indices, None)
        images.append(image)
        labels.append(label)
        for row in dataset.rows:
            unit = row["patient"] if len(paths) == 1 else f"{tag}/{row['patient']}"
            rows.append({**row, "set": tag, "unit": unit})
        sources.append(_record(dataset, indices))
    return TestSet(images, labels, rows, sources)


def _refuse_test_patients(dataset: SliceSet, indices: list[int], test_patients: set[str], what: str) -> None:
    bad = [dataset.rows[i] for i in indices if dataset.rows[i]["patient"] in test_patients]
    if not bad:
        return
    patients = sorted({r["patient"] for r in bad})
    examples = ", ".join(r["id"] for r in bad[:5])
    hint = (
        "synthesize from the train split only (radsynth synth RUN --conditions DIR --split train)"
        if what == "synthetic"
        else "train on patients that are not in the test set"
    )
    raise InputError(
        dataset.root,
        f"{len(bad)} {what} training image(s) come from test patient(s) {', '.join(patients[:5])} (ids {examples}); "
        f"testing must use patients the training never saw: {hint}",
    )


def _pick_auto(dataset: SliceSet, count: int) -> list[int]:
    """The ``count`` best-ranked training slices (``radsynth.data.representative``: typical layout, then
    most infection), each from a different patient while there are patients (CoSinGAN's Two-TS joins
    two scans); when the training split has one patient only, its two best slices."""
    chosen = pick_slices(rank_slices(dataset), count)
    if len(chosen) < count:
        raise InputError(dataset.root, f"has fewer than {count} training slice(s) with lung and infection to pick from; give slice ids")
    return [s.index for s in chosen]


def _synthetic(path: Path, test_patients: set[str]) -> SliceSet:
    dataset = SliceSet(path)
    _require_labels(dataset)
    _refuse_test_patients(dataset, list(range(len(dataset))), test_patients, "synthetic")
    leaked = sorted(lesion_patients(dataset) & test_patients)
    if leaked:
        raise InputError(path, f"was made with a lesion model measured on slices of test patient(s) {', '.join(leaked)}; "
                         "learn the lesion model from training slices only")
    return dataset


def lesion_patients(dataset: SliceSet) -> set[str]:
    """Patients whose slices the lesion model behind a set was measured on: a set edited with it (``synth LESION_RUN
    --edit``, ``data layouts``) records them; a set rendered from such layouts (``synth RUN --conditions LAYOUTS``)
    inherits them from its condition set. Empty for every other set."""
    if "lesion_patients" in dataset.info:
        return set(dataset.info["lesion_patients"])
    return set((_condition_set_info(dataset.info) or {}).get("lesion_patients", []))


def _choose(rng: np.random.Generator, n: int, k: int, where: Path, what: str) -> list[int]:
    if k > n:
        raise InputError(where, f"needs {k} {what} images but has {n}")
    return sorted(rng.choice(n, size=k, replace=False).tolist())


def build_training_set(spec: ProtocolSpec, real_path: Path, test: TestSet, size: int, seed: int = 0, name: str | None = None) -> TrainingSet:
    """The training pool for ``spec`` at ``size`` px; the real data is the train split of ``real_path``."""
    real = SliceSet(real_path, split="train")
    if is_synthetic(real):
        raise InputError(real_path, "is a synthetic set; the real training data must be a prepared real set")
    _require_labels(real)
    test_patients = test.patients
    all_real = list(range(len(real)))
    _refuse_test_patients(real, all_real, test_patients, "real")
    reference = len(real)
    rng = np.random.default_rng(step_seed(seed, f"protocol-{spec.kind}", 0))
    parts: list[tuple[SliceSet, list[int], str]] = []
    if spec.kind == "oc":
        parts.append((real, all_real, "real"))
    elif spec.kind in ("sin", "two"):
        count = 1 if spec.kind == "sin" else 2
        if spec.slice_ids == ("auto",):
            chosen = _pick_auto(real, count)
        else:
            index = {r["id"]: i for i, r in enumerate(real.rows)}
            missing = [s for s in spec.slice_ids if s not in index]
            if missing:
                raise InputError(real_path, f"no slice with id {', '.join(missing)} in the train split (ids are the 'id' column of manifest.csv)")
            chosen = [index[s] for s in spec.slice_ids]
        parts.append((real, chosen, "real"))
    elif spec.kind == "synth":
        synth = _synthetic(spec.path, test_patients)
        parts.append((synth, list(range(len(synth))), "synth"))
    else:
        synth = _synthetic(spec.path, test_patients)
        n_synth = round(spec.fraction * reference)
        n_real = reference - n_synth if spec.kind == "replace" else reference
        real_rows = all_real if n_real == reference else _choose(rng, reference, n_real, real_path, "real")
        parts.append((real, real_rows, "real"))
        if n_synth:
            parts.append((synth, _choose(rng, len(synth), n_synth, spec.path, "synthetic"), "synth"))
    images, labels, ids, patients, sources = [], [], [], set(), []
    parts = [part for part in parts if part[1]]  # replace:1.0 keeps no real slice
    for dataset, indices, tag in parts:
        image, label = _load(dataset, indices, size)
        images.append(image)
        labels.append(label)
        ids += [f"{tag}:{dataset.rows[i]['id']}" for i in indices]
        patients |= {dataset.rows[i]["patient"] for i in indices}
        sources.append(_record(dataset, indices))
    n_real = sum(len(i) for _, i, t in parts if t == "real")
    groups, groups_problem = _groups(parts, real_path) if spec.kind == "add" else (None, "")
    return TrainingSet(
        name=name or spec.default_name, spec=spec.text, images=torch.cat(images), labels=torch.cat(labels), ids=ids,
        patients=sorted(patients), real_images=n_real, synthetic_images=len(ids) - n_real, reference_size=reference, sources=sources,
        epoch_scale=len(ids) / reference if spec.kind == "add" else 1.0, groups=groups, groups_problem=groups_problem,
    )


def _groups(parts: list[tuple[SliceSet, list[int], str]], real_path: Path) -> tuple[np.ndarray | None, str]:
    """Each pool item's group: the index of its real slice among the pool's real items (real items first,
    in pool order); a synthetic item joins the real slice it names as its condition (``condition_set``, compared
    as resolved paths, and ``condition_id``). (None, why) when a synthetic item names no real slice of this pool."""
    real_rows = [dataset.rows[i] for dataset, indices, tag in parts if tag == "real" for i in indices]
    position = {row["id"]: k for k, row in enumerate(real_rows)}
    source = Path(real_path).resolve()
    groups = list(range(len(real_rows)))
    for dataset, indices, tag in parts:
        if tag == "real":
            continue
        for i in indices:
            row = dataset.rows[i]
            named = row.get("condition_set") or ""
            if not named or Path(named).resolve() != source:
                return None, f"synthetic image {row['id']} names condition_set '{named}', not the real set {source}"
            if row.get("condition_id") not in position:
                return None, f"synthetic image {row['id']} names condition_id '{row.get('condition_id', '')}', not a real training slice of this pool"
            groups.append(position[row["condition_id"]])
    return np.asarray(groups, dtype=np.int64), ""


def steps_per_epoch(samples_per_epoch: int, batch: int) -> int:
    """Mini-batches per epoch; the last one of an epoch takes the remainder, so samples seen = epochs x samples_per_epoch."""
    return math.ceil(samples_per_epoch / batch)


def epoch_order(pool_size: int, samples_per_epoch: int, seed: int, epoch: int) -> np.ndarray:
    """The pool indices of one epoch: shuffles of the whole pool, concatenated and cut to ``samples_per_epoch``.

    Every pool item appears floor or ceil(samples_per_epoch / pool_size) times per epoch; the
    order depends only on (seed, epoch), so a resumed run repeats it.
    """
    rng = np.random.default_rng(step_seed(seed, "epoch", epoch))
    repeats = math.ceil(samples_per_epoch / pool_size)
    return np.concatenate([rng.permutation(pool_size) for _ in range(repeats)])[:samples_per_epoch]


def grouped_epoch_order(groups: np.ndarray, samples_per_epoch: int, seed: int, epoch: int) -> np.ndarray:
    """The pool indices of one epoch when the pool is grouped (``TrainingSet.groups``, values 0..G-1).

    The groups are drawn exactly as ``epoch_order(G, ...)`` draws a pool of G items (so with G real
    slices, the same order as OC-TS), and each drawn group is replaced by one of its members, chosen
    uniformly from a second stream of (seed, epoch). Every group appears floor or ceil(samples / G) times.
    """
    members = np.argsort(groups, kind="stable")  # each group's items together, its real slice first
    counts = np.bincount(groups)
    if counts.min() == 0:
        raise ValueError("groups must number 0..G-1 with no gap (every group holds its real slice)")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    order = epoch_order(len(counts), samples_per_epoch, seed, epoch)
    rng = np.random.default_rng(step_seed(seed, "epoch-member", epoch))
    pick = (rng.random(len(order)) * counts[order]).astype(np.int64)
    return members[starts[order] + pick]
