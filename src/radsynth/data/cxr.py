"""Chest X-rays in class folders: ``<root>/<class>/*.png|jpg`` (any class names).

When ``<root>/manifest.csv`` has ``path`` and ``label`` columns (as ../shared/data/cxr-dev does),
it is used for patient ids (``patient_id``) and provenance; every listed file must exist inside
the root. Otherwise each sub-folder holding images is a class and each image its own patient.
"""

from __future__ import annotations

from pathlib import Path

from radsynth.data import labels as L
from radsynth.data.images import is_image_file, read_csv_rows, read_grey, resolve_inside
from radsynth.data.intensity import check_finite
from radsynth.data.source import RawSlice, Source, Unit
from radsynth.errors import InputError

MANIFEST = "manifest.csv"


def _load_one(path: Path, patient: str, klass: str) -> list[RawSlice]:
    image, _ = read_grey(path)
    check_finite(image, str(path))
    return [RawSlice(image, None, patient, 0, str(path), klass=klass)]


def class_folders(root: Path) -> list[Path]:
    """Sub-folders of ``root`` (not hidden) in name order."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def looks_like_class_folders(root: Path) -> bool:
    return any(any(is_image_file(f) for f in folder.iterdir()) for folder in class_folders(root))


def read_class_folders(root: Path) -> Source:
    """Read every image of every class folder (lazily) into one unit per image."""
    manifest = root / MANIFEST
    entries: list[tuple[Path, str, str]] = []
    notes = []
    if manifest.exists():
        for row in read_csv_rows(manifest, required=("path", "label")):
            path = resolve_inside(root, row["path"], manifest)
            entries.append((path, row["label"], row.get("patient_id") or path.stem))
        notes.append("patient ids and classes from manifest.csv")
    else:
        folders = class_folders(root)
        if not folders:
            raise InputError(root, "no class folders found (expected <root>/<class>/*.png)")
        for folder in folders:
            images = sorted(p for p in folder.iterdir() if is_image_file(p))
            if not images:
                raise InputError(folder, "class folder has no images")
            entries.extend((p, folder.name, f"{folder.name}/{p.stem}") for p in images)
        notes.append("no manifest.csv: each image is its own patient")
    _, dtype_max = read_grey(entries[0][0])
    units = [Unit(patient, lambda p=path, q=patient, k=klass: _load_one(p, q, k), klass=klass) for path, klass, patient in entries]
    return Source(root, "class-folders", L.SCHEMES["none"], "uint8" if dtype_max == 255 else "uint16", units, notes)
