"""``radsynth data prepare``: normalise, resize and split a source into a prepared slice set."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from radsynth.atomic import atomic_output_dir
from radsynth.data import labels as L
from radsynth.data.geometry import FITS, fit_to_size
from radsynth.data.intensity import IntensitySpec, to_unit, value_range
from radsynth.data.inspect import PREPARE_INTENSITY
from radsynth.data.prepared import FORMAT, MANIFEST_COLUMNS, OPTIONAL_COLUMNS, write_image, write_label
from radsynth.data.source import RawSlice, Source, Unit
from radsynth.data.splits import DEFAULT_FRACTIONS, SPLIT_NAMES, split_patients
from radsynth.errors import InputError
from radsynth.progress import reporting
from radsynth.provenance import provenance

KEEP = ("all", "lung", "infection")
DTYPE_MAX = {"uint8": 255, "uint16": 65535, "radsynth": 65535}


@dataclass(frozen=True)
class PrepareOptions:
    """How to prepare. ``fractions=None`` keeps the source's own split when every unit has one; ``test_patients``
    names the held-out patients (the others are split train / val by ``fractions``' ratio)."""

    size: int = 256
    fractions: dict[str, float] | None = None
    test_patients: tuple[str, ...] = ()
    seed: int = 0
    fit: str = "pad"
    intensity: IntensitySpec | None = None
    keep: str = "all"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 8 <= self.size <= 4096:
            raise InputError("--size", f"{self.size} is out of range (8..4096)")
        if self.fit not in FITS:
            raise InputError("--fit", f"unknown fit '{self.fit}' (choose from {', '.join(FITS)})")
        if self.keep not in KEEP:
            raise InputError("--keep", f"unknown choice '{self.keep}' (choose from {', '.join(KEEP)})")


def assign_splits(source: Source, options: PrepareOptions) -> tuple[dict[str, str], str]:
    """patient -> split, and a sentence saying how it was decided."""
    if options.test_patients:
        return named_test_split(source.patients, options.test_patients, options.fractions, options.seed)
    given = {u.patient: u.split for u in source.units}
    if options.fractions is None and all(s in SPLIT_NAMES for s in given.values()):
        return dict(given), "split given by the source"
    fractions = options.fractions or DEFAULT_FRACTIONS
    strata = {u.patient: u.klass for u in source.units if u.klass is not None} or None
    how = f"patient-level split {fractions} with seed {options.seed}" + (", stratified by class" if strata else "")
    return split_patients(source.patients, fractions, options.seed, strata), how


def named_test_split(patients: list[str], test: tuple[str, ...], fractions: dict[str, float] | None, seed: int) -> tuple[dict[str, str], str]:
    """patient -> split with the ``test`` patients held out and the others split train / val in ``fractions``' ratio
    (default all train); refuses an unknown name or a split that leaves no training patient."""
    known = sorted(set(patients))
    unknown = [name for name in test if name not in known]
    if unknown:
        raise InputError("--test-patients", f"no patient {', '.join(unknown)} in the source (its patients: {', '.join(known)})")
    rest = [p for p in known if p not in test]
    if not rest:
        raise InputError("--test-patients", f"every patient ({', '.join(known)}) is held out: none is left to train on")
    fractions = fractions or {"train": 1.0}
    train, val = fractions.get("train", 0.0), fractions.get("val", 0.0)
    if train <= 0:
        raise InputError("--split", "with --test-patients the split needs a train fraction above 0")
    assignment = split_patients(rest, {"train": train / (train + val), "val": val / (train + val), "test": 0.0}, seed)
    assignment.update({name: "test" for name in test})
    how = f"test patients named ({', '.join(test)}); the others " + (f"split train / val {train:g} : {val:g} with seed {seed}" if val else "train")
    return assignment, how


def _keep(raw: RawSlice, keep: str) -> bool:
    if keep == "all" or raw.label is None:
        return True
    return bool((raw.label >= (L.LUNG if keep == "lung" else L.GGO)).any())


def _normalised(unit_slices: list[RawSlice], spec: IntensitySpec, dtype_max: float | None) -> tuple[list[np.ndarray], float, float]:
    """Normalise a unit's images to [-1, 1] with one (lo, hi) for the whole unit."""
    values = np.concatenate([s.image.reshape(-1) for s in unit_slices])
    lo, hi = value_range(values, spec, dtype_max)
    return [to_unit(s.image, lo, hi) for s in unit_slices], lo, hi


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return Path(path).name


def prepare(
    source: Source,
    out: Path,
    options: PrepareOptions,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write the prepared set to ``out`` (atomically) and return its dataset.json content."""
    spec = options.intensity or IntensitySpec(mode=PREPARE_INTENSITY[source.intensity_kind])
    if spec.mode == "range" and source.intensity_kind not in DTYPE_MAX:
        raise InputError("--intensity", f"'range' needs integer images; this source is '{source.intensity_kind}'")
    if options.keep != "all" and source.scheme.name == "none":
        raise InputError("--keep", f"'{options.keep}' needs masks, and {source.path} has none")
    assignment, split_how = assign_splits(source, options)
    rows: list[dict] = []
    with atomic_output_dir(out, force) as tmp:
        (tmp / "images").mkdir()
        if source.scheme.name != "none":
            (tmp / "labels").mkdir()
        with reporting(progress, "preparing", len(source.units)) as update:
            for done, unit in enumerate(source.units, start=1):
                rows.extend(_prepare_unit(unit, source, spec, options, assignment[unit.patient], tmp, len(rows)))
                update(done)
        if not rows:
            raise InputError(source.path, f"no slices left after --keep {options.keep}")
        with open(tmp / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS + OPTIONAL_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        info = _dataset_info(source, options, spec, split_how, rows)
        (tmp / "dataset.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def _prepare_unit(
    unit: Unit, source: Source, spec: IntensitySpec, options: PrepareOptions, split: str, tmp: Path, start: int
) -> list[dict]:
    slices = [s for s in unit.load() if _keep(s, options.keep)]
    if not slices:
        return []
    images, lo, hi = _normalised(slices, spec, DTYPE_MAX.get(source.intensity_kind))
    rows = []
    for offset, (raw, image) in enumerate(zip(slices, images)):
        slice_id = f"{start + offset:06d}"
        resized, label = fit_to_size(image, raw.label, options.size, options.fit)
        if options.fit == "pad":  # padding uses the image minimum, which after clipping is -1 at most
            resized = np.clip(resized, -1.0, 1.0)
        write_image(tmp / "images" / f"{slice_id}.png", resized)
        if label is not None:
            write_label(tmp / "labels" / f"{slice_id}.png", label)
        rows.append(
            {
                "id": slice_id,
                "image": f"images/{slice_id}.png",
                "label": f"labels/{slice_id}.png" if label is not None else "",
                "patient": raw.patient,
                "split": split,
                "slice_index": raw.index,
                "klass": raw.klass or "",
                "has_infection": "" if label is None else int(L.has_infection(label)),
                "intensity": spec.mode,
                "value_lo": f"{lo:.6g}",
                "value_hi": f"{hi:.6g}",
                "source_file": _relative(raw.source_file, source.path),
                "modality": raw.modality,
            }
        )
    return rows


def _dataset_info(source: Source, options: PrepareOptions, spec: IntensitySpec, split_how: str, rows: list[dict]) -> dict:
    counts = Counter(r["split"] for r in rows)
    patients = {name: len({r["patient"] for r in rows if r["split"] == name}) for name in counts}
    classes = Counter((r["split"], r["klass"]) for r in rows if r["klass"])
    config = {
        "size": options.size,
        "fit": options.fit,
        "keep": options.keep,
        "intensity": asdict(spec),
        "fractions": options.fractions,
        "test_patients": list(options.test_patients),
        **options.extra,
    }
    return {
        "format": FORMAT,
        "source": {"path": str(source.path), "format": source.format, "intensity_kind": source.intensity_kind, "notes": source.notes},
        "scheme": source.scheme.name,
        "has_lung": source.scheme.has_lung,
        "infection_typed": source.scheme.infection_typed,
        "size": options.size,
        "intensity": spec.mode,
        "split": split_how,
        "slices": dict(counts),
        "patients": patients,
        "classes": {f"{s}/{k}": n for (s, k), n in sorted(classes.items())},
        "provenance": provenance(options.seed, config),
    }
