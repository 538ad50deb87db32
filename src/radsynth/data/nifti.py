"""NIfTI volumes (nibabel): image + optional label volume per patient.

Layout follows ../shared/data/ct-rp9-dev: arrays are (H, W, Z) and ``img[:, :, z]`` is slice z,
rows and columns as in the source DICOM. Volumes are not re-oriented; inside radsynth a volume is
(Z, H, W). Label volumes are in radsynth's schema (the 3-class NIfTI scheme: 0 bg, 1 lung,
2 GGO, 3 consolidation).
"""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np

from radsynth.data import labels as L
from radsynth.data.intensity import check_finite
from radsynth.data.source import RawSlice, Source, Unit
from radsynth.errors import InputError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
LABEL_SUFFIXES = ("_label", "_labels", "_seg", "_mask")
IMAGE_SUFFIX = "_image"
HU_AIR_THRESHOLD = -200.0  # a volume whose minimum is below this is taken to be in HU (air is -1000)


def is_nifti(path: Path) -> bool:
    return path.name.endswith(NIFTI_SUFFIXES)


def _stem(path: Path) -> str:
    name = path.name
    return next(name[: -len(s)] for s in NIFTI_SUFFIXES if name.endswith(s))


def load_volume(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Read a 3D NIfTI file -> ((Z, H, W) array in its stored dtype, (row, col, slice) spacing in mm)."""
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for truncated / corrupt files
        raise InputError(path, f"cannot read NIfTI ({type(exc).__name__}: {exc})") from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise InputError(path, f"expected a 3D volume, found shape {data.shape}")
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3]) + (1.0,) * max(0, 3 - len(img.header.get_zooms()))
    return np.moveaxis(data, -1, 0), (zooms[0], zooms[1], zooms[2])


def save_volume(path: Path, volume: np.ndarray, spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> None:
    """Write a (Z, H, W) array as NIfTI in the (H, W, Z) layout with the spacing in the affine."""
    affine = np.diag([spacing[0], spacing[1], spacing[2], 1.0])
    nib.save(nib.Nifti1Image(np.ascontiguousarray(np.moveaxis(volume, 0, -1)), affine), str(path))


def _label_for(image: Path) -> Path | None:
    stem = _stem(image)
    base = stem[: -len(IMAGE_SUFFIX)] if stem.endswith(IMAGE_SUFFIX) else stem
    for suffix in LABEL_SUFFIXES:
        for ext in NIFTI_SUFFIXES:
            candidate = image.with_name(base + suffix + ext)
            if candidate.exists():
                return candidate
    return None


def _is_label_file(path: Path) -> bool:
    return _stem(path).endswith(LABEL_SUFFIXES)


def _patient_name(image: Path) -> str:
    return re.sub(f"{IMAGE_SUFFIX}$", "", _stem(image))


def _load_unit(image_path: Path, label_path: Path | None) -> list[RawSlice]:
    image, _ = load_volume(image_path)
    check_finite(image, str(image_path))
    label = None
    if label_path is not None:
        raw_label, _ = load_volume(label_path)
        if raw_label.shape != image.shape:
            raise InputError(label_path, f"label shape {raw_label.shape[1:]}x{raw_label.shape[0]} slices differs from image {image.shape[1:]}x{image.shape[0]} slices")
        if not np.array_equal(raw_label, np.round(raw_label)):
            raise InputError(label_path, "label volume holds non-integer values")
        label = L.from_schema(raw_label.astype(np.int64), str(label_path))
    patient = _patient_name(image_path)
    return [
        RawSlice(image[z].astype(np.float32), None if label is None else label[z], patient, z, str(image_path))
        for z in range(image.shape[0])
    ]


def read_nifti(path: Path) -> Source:
    """A NIfTI file, or a folder of ``<name>_image.nii[.gz]`` (+ ``<name>_label.nii[.gz]``) pairs."""
    images = [path] if path.is_file() else sorted(p for p in path.iterdir() if is_nifti(p) and not _is_label_file(p))
    if not images:
        raise InputError(path, "no NIfTI image volumes found")
    pairs = [(img, _label_for(img)) for img in images]
    labelled = [lab is not None for _, lab in pairs]
    if any(labelled) and not all(labelled):
        missing = [img.name for img, lab in pairs if lab is None]
        raise InputError(path, f"some volumes have label files and some do not (no label for {', '.join(missing[:3])})")
    first, _ = load_volume(images[0])
    kind = "hu" if float(first.min()) < HU_AIR_THRESHOLD else "non-hu"
    units = [Unit(_patient_name(img), lambda i=img, lab=lab: _load_unit(i, lab)) for img, lab in pairs]
    scheme = L.SCHEMES["schema" if all(labelled) else "none"]
    notes = [] if kind == "hu" else [f"values are not Hounsfield units (minimum {first.min():.0f} >= {HU_AIR_THRESHOLD:.0f})"]
    return Source(path, "nifti", scheme, kind, units, notes)
