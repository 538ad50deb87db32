"""2D slices listed in a ``manifest.csv``: an ``image`` column and mask columns.

The mask columns say the scheme:
* ``lung_mask`` + ``infection_mask`` (binary PNGs, e.g. ct-ma20-png) -> 'lung-infection';
* ``mask`` (MedSeg indices 0 bg, 1 GGO, 2 consolidation, e.g. ct-medseg100) -> 'medseg';
* ``label`` (radsynth's own 0..3 schema, e.g. a prepared set re-read) -> 'schema';
* none of them -> images only.
A ``volume`` / ``patient`` / ``patient_id`` column groups slices by patient (otherwise every
image is its own patient), ``slice_index`` orders them, and ``split`` and ``modality`` (an
acquisition group, e.g. ct-ma20-png's coronacases | radiopaedia) are kept as given.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from radsynth.data import labels as L
from radsynth.data.images import read_csv_rows, read_grey, read_index_png, resolve_inside
from radsynth.data.intensity import check_finite
from radsynth.data.prepared import FORMAT
from radsynth.data.source import RawSlice, Source, Unit
from radsynth.errors import InputError

MANIFEST = "manifest.csv"
PATIENT_COLUMNS = ("patient", "patient_id", "volume")


def _scheme(columns: set[str]) -> str:
    if {"lung_mask", "infection_mask"} <= columns:
        return "lung-infection"
    if "mask" in columns:
        return "medseg"
    if "label" in columns:
        return "schema"
    return "none"


def _label(row: dict[str, str], scheme: str, root: Path, manifest: Path, shape: tuple[int, int]) -> np.ndarray | None:
    if scheme == "none":
        return None
    if scheme == "lung-infection":
        lung_path = resolve_inside(root, row["lung_mask"], manifest)
        inf_path = resolve_inside(root, row["infection_mask"], manifest)
        lung, infection = read_index_png(lung_path), read_index_png(inf_path)
        for path, mask in ((lung_path, lung), (inf_path, infection)):
            if mask.shape != shape:
                raise InputError(path, f"mask shape {mask.shape} differs from image shape {shape}")
        return L.from_lung_infection(lung, infection, str(inf_path))
    column = "mask" if scheme == "medseg" else "label"
    path = resolve_inside(root, row[column], manifest)
    mask = read_index_png(path)
    if mask.shape != shape:
        raise InputError(path, f"mask shape {mask.shape} differs from image shape {shape}")
    return L.from_medseg(mask, str(path)) if scheme == "medseg" else L.from_schema(mask, str(path))


def _load_rows(rows: list[dict[str, str]], scheme: str, root: Path, manifest: Path, patient: str) -> list[RawSlice]:
    slices = []
    for position, row in enumerate(rows):
        image_path = resolve_inside(root, row["image"], manifest)
        image, _ = read_grey(image_path)
        check_finite(image, str(image_path))
        label = _label(row, scheme, root, manifest, image.shape)
        index = _slice_index(row, manifest) if row.get("slice_index", "").strip() else position
        slices.append(RawSlice(image, label, patient, index, str(image_path), split=row.get("split") or None,
                               modality=(row.get("modality") or "").strip()))
    return slices


def read_png_manifest(path: Path) -> Source:
    """A folder with ``manifest.csv`` (or the CSV file itself) listing 2D slices and masks."""
    manifest = path / MANIFEST if path.is_dir() else path
    root = manifest.parent
    rows = read_csv_rows(manifest, required=("image",))
    columns = set(rows[0].keys())
    scheme = _scheme(columns)
    patient_column = next((c for c in PATIENT_COLUMNS if c in columns), None)
    groups: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        resolve_inside(root, row["image"], manifest)  # fail early on a missing or escaping path
        patient = row[patient_column] if patient_column else Path(row["image"]).stem
        groups.setdefault(patient, []).append(row)
    for members in groups.values():
        if all(m.get("slice_index", "").strip() for m in members):
            members.sort(key=lambda m: _slice_index(m, manifest))
    _, dtype_max = read_grey(resolve_inside(root, rows[0]["image"], manifest))
    kind = "uint8" if dtype_max == 255 else "uint16"
    notes = []
    if _is_radsynth_set(root):  # a prepared or synthetic set: 16-bit PNG holding [-1, 1] exactly
        kind = "radsynth"
        notes.append("a radsynth slice set: images map back to [-1, 1] by their full 16-bit range")
    units = [
        Unit(patient, lambda r=members, p=patient: _load_rows(r, scheme, root, manifest, p), split=_common_split(members, manifest))
        for patient, members in groups.items()
    ]
    if patient_column is None:
        notes.append("no patient column: every image is treated as its own patient")
    if not L.SCHEMES[scheme].has_lung and scheme != "none":
        notes.append("no lung masks in this scheme")
    if scheme == "lung-infection":
        notes.append("infection is binary (type unknown); stored as label 2")
    return Source(root, "png-manifest", L.SCHEMES[scheme], kind, units, notes)


def _slice_index(row: dict[str, str], manifest: Path) -> int:
    """The row's ``slice_index`` as an integer; anything else is the manifest's fault."""
    try:
        return int(row["slice_index"])
    except ValueError:
        raise InputError(manifest, f"slice_index '{row['slice_index']}' of '{row['image']}' is not an integer") from None


def _is_radsynth_set(root: Path) -> bool:
    info = root / "dataset.json"
    try:
        return info.exists() and json.loads(info.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, json.JSONDecodeError):
        return False


def _common_split(rows: list[dict[str, str]], manifest: Path) -> str | None:
    splits = {r.get("split") or None for r in rows}
    if len(splits) > 1:
        raise InputError(manifest, f"the slices of one patient carry different splits {sorted(map(str, splits))}")
    return splits.pop()
