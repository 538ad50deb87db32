"""DICOM series (pydicom): read a folder of slices as volumes, write a volume as a series.

Reading applies RescaleSlope / RescaleIntercept when present (CT -> HU), groups files by
SeriesInstanceUID (one unit per series) and sorts slices by their position along the slice
normal (ImagePositionPatient · (row × column direction)), falling back to InstanceNumber.
Patient identifiers never leave the reader: a series is named by a one-way hash of its
PatientID and SeriesInstanceUID (``dcm-<10 hex>``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from radsynth.data import labels as L
from radsynth.data.intensity import check_finite
from radsynth.data.source import RawSlice, Source, Unit
from radsynth.errors import InputError


def is_dicom_file(path: Path) -> bool:
    """A .dcm file, or any file with the 'DICM' magic at byte 128."""
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _read_header(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception as exc:
        raise InputError(path, f"cannot read DICOM header ({type(exc).__name__}: {exc})") from None


def _position(ds: Dataset) -> float:
    """Position of a slice along the slice normal; InstanceNumber when geometry is missing."""
    if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
        orientation = np.asarray(ds.ImageOrientationPatient, dtype=float)
        normal = np.cross(orientation[:3], orientation[3:])
        return float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float)))
    return float(ds.get("InstanceNumber", 0))


def _pseudonym(ds: Dataset) -> str:
    key = f"{ds.get('PatientID', '')}|{ds.get('SeriesInstanceUID', '')}".encode()
    return "dcm-" + hashlib.sha256(key).hexdigest()[:10]


def _pixels(path: Path) -> np.ndarray:
    try:
        ds = pydicom.dcmread(str(path))
        pixels = ds.pixel_array.astype(np.float32)
    except Exception as exc:
        raise InputError(path, f"cannot read DICOM pixels ({type(exc).__name__}: {exc})") from None
    if pixels.ndim != 2:
        raise InputError(path, f"expected a single-frame greyscale slice, pixel array has shape {pixels.shape}")
    slope = float(ds.get("RescaleSlope", 1.0))
    intercept = float(ds.get("RescaleIntercept", 0.0))
    return pixels * slope + intercept


def _load_series(files: list[Path], patient: str) -> list[RawSlice]:
    slices = []
    shape = None
    for index, path in enumerate(files):
        image = _pixels(path)
        if shape is not None and image.shape != shape:
            raise InputError(path, f"slice shape {image.shape} differs from the series' {shape}")
        shape = image.shape
        check_finite(image, str(path))
        slices.append(RawSlice(image, None, patient, index, str(path)))
    return slices


def read_dicom(path: Path) -> Source:
    """A folder (searched recursively) holding one or more DICOM series; images only."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and is_dicom_file(p))
    if not files:
        raise InputError(path, "no DICOM files found")
    series: dict[str, list[tuple[float, Path, Dataset]]] = {}
    for file in files:
        header = _read_header(file)
        try:
            position = _position(header)
        except (ValueError, TypeError, IndexError) as exc:
            raise InputError(file, f"unusable ImagePositionPatient / ImageOrientationPatient / InstanceNumber ({type(exc).__name__}: {exc})") from None
        series.setdefault(_pseudonym(header), []).append((position, file, header))
    units, kind = [], "non-hu"
    for name, members in sorted(series.items()):
        members.sort(key=lambda m: (m[0], m[1].name))
        if any("RescaleIntercept" in h and h.get("Modality", "CT") == "CT" for _, _, h in members):
            kind = "hu"
        ordered = [f for _, f, _ in members]
        units.append(Unit(name, lambda f=ordered, n=name: _load_series(f, n)))
    return Source(path, "dicom", L.SCHEMES["none"], kind, units, ["patient ids are one-way hashes of PatientID + series"])


def write_dicom_series(
    out_dir: Path,
    volume_hu: np.ndarray,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    patient_id: str = "ANONYMOUS",
    file_order: list[int] | None = None,
) -> list[Path]:
    """Write a (Z, H, W) HU volume as a CT series (int16 + RescaleIntercept -1024), one file per slice.

    No personal data is written: PatientName is empty and PatientID is what the caller passes.
    ``file_order`` permutes the file names (slice z is written as file ``file_order[z]``), which
    tests use to prove that reading sorts by position, not by name.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    series_uid, study_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    order = file_order if file_order is not None else list(range(volume_hu.shape[0]))
    stored = np.clip(np.round(volume_hu + 1024.0), -32768, 32767).astype(np.int16)
    paths = []
    for z in range(volume_hu.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientName, ds.PatientID = "CT", "", patient_id
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.InstanceNumber = z + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, float(z) * spacing[2]]
        ds.PixelSpacing = [spacing[0], spacing[1]]
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = stored.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.PixelData = stored[z].tobytes()
        path = out_dir / f"slice_{order[z]:04d}.dcm"
        ds.save_as(str(path), enforce_file_format=True)
        paths.append(path)
    return paths
