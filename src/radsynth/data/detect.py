"""Open any supported data set: detect its format from what is on disk and call its reader."""

from __future__ import annotations

from pathlib import Path

from radsynth.data.cxr import looks_like_class_folders, read_class_folders
from radsynth.data.dicom import is_dicom_file, read_dicom
from radsynth.data.images import read_csv_rows
from radsynth.data.nifti import is_nifti, read_nifti
from radsynth.data.pngset import MANIFEST, read_png_manifest
from radsynth.data.source import Source
from radsynth.errors import InputError

FORMATS = ("nifti", "dicom", "png-manifest", "class-folders")


def detect_format(path: Path) -> str:
    """Which reader fits ``path``; raises InputError when none does."""
    if not path.exists():
        raise InputError(path, "does not exist")
    if path.is_file():
        if is_nifti(path):
            return "nifti"
        if path.suffix.lower() == ".csv":
            return "png-manifest"
        if is_dicom_file(path):
            raise InputError(path, "is a single DICOM file; give the folder that holds the series")
        raise InputError(path, "is not a NIfTI volume, a manifest CSV or a data folder")
    manifest = path / MANIFEST
    if manifest.exists():
        columns = set(read_csv_rows(manifest)[0].keys())
        if "image" in columns:
            return "png-manifest"
        if {"path", "label"} <= columns:
            return "class-folders"
        raise InputError(manifest, f"has neither an 'image' column (slice set) nor 'path' + 'label' (class folders): {sorted(columns)}")
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    if not entries:
        raise InputError(path, "folder is empty")
    if any(is_nifti(p) for p in entries):
        return "nifti"
    if looks_like_class_folders(path):
        return "class-folders"
    if any(p.is_file() and is_dicom_file(p) for p in path.rglob("*")):
        return "dicom"
    if any(p.is_dir() for p in entries) and not any(p.is_file() for p in entries):
        raise InputError(path, "sub-folders hold no images (a class folder with no images?)")
    raise InputError(path, "no supported data found (NIfTI, DICOM series, manifest.csv, or class folders of images)")


def open_source(path: Path | str, fmt: str = "auto") -> Source:
    """Read the data set at ``path`` (format auto-detected unless given)."""
    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    readers = {"nifti": read_nifti, "dicom": read_dicom, "png-manifest": read_png_manifest, "class-folders": read_class_folders}
    if fmt not in readers:
        raise InputError("--format", f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    if not path.exists():
        raise InputError(path, "does not exist")
    return readers[fmt](path)
