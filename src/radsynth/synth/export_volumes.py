"""Export a synthetic set as DICOM or NIfTI files that carry no patient data and say they are synthetic.

``radsynth data export SET --format dicom|nifti --out DIR`` writes one file per slice:

* ``dicom``: ``<id>.dcm``, a Secondary Capture image (new Study / Series / SOP Instance UIDs,
  ConversionType ``SYN``, ImageType DERIVED / SECONDARY, BurnedInAnnotation ``NO``), every patient,
  study and institution field present but empty, PatientIdentityRemoved ``YES``, and ImageComments /
  DerivationDescription / SeriesDescription saying ``SYNTHETIC``. Pixels are the set's 16-bit values;
  RescaleSlope / RescaleIntercept map them back to the set's value range (HU for CT-derived sets).
  Label maps are not converted (DICOM SEG is out of scope); the set's ``labels/`` stay the masks.
* ``nifti``: ``<id>_image.nii.gz`` (float32, the same value range) and, for labelled sets,
  ``<id>_label.nii.gz`` (uint8 schema labels), each (H, W, 1) with ``descrip`` = ``radsynth synthetic``;
  ``radsynth data inspect`` / ``prepare`` read the folder back.

Only synthetic sets (dataset.json ``"synthetic": true``) are exported: the files say they are
synthetic, which would be false for real images. The output folder appears atomically and is never
replaced without ``force``.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from radsynth.atomic import atomic_output_dir
from radsynth.data.intensity import from_unit
from radsynth.data.prepared import unit_to_uint16
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError

FORMATS = ("dicom", "nifti")
NIFTI_DESCRIP = "radsynth synthetic"
# patient / study / institution attributes written empty (type 2: present, no value)
EMPTY_PHI = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "OtherPatientIDs",
    "StudyDate", "StudyTime", "SeriesDate", "ContentDate", "AccessionNumber", "ReferringPhysicianName",
    "StudyID", "InstitutionName", "InstitutionAddress", "OperatorsName", "PerformingPhysicianName",
)


def export_synthetic_set(set_dir: Path, out: Path, fmt: str, force: bool = False) -> list[Path]:
    """Write every slice of the synthetic set ``set_dir`` to ``out`` as ``fmt`` files; returns their paths."""
    if fmt not in FORMATS:
        raise InputError("--format", f"unknown export format '{fmt}' (choose from {', '.join(FORMATS)})")
    dataset = SliceSet(set_dir, cache=False)
    if dataset.info.get("synthetic") is not True:
        raise InputError(set_dir, "is not a synthetic set (dataset.json has no \"synthetic\": true); only synthetic sets are exported")
    model = str(dataset.info.get("model", "unknown model"))
    study_uid, series_uid = generate_uid(), generate_uid()
    written = []
    with atomic_output_dir(Path(out), force) as tmp:
        for index in range(len(dataset)):
            image, label, meta = dataset[index]
            values = from_unit(image[0].numpy(), float(meta["value_lo"]), float(meta["value_hi"]))
            if fmt == "dicom":
                name = f"{meta['id']}.dcm"
                _write_dicom(tmp / name, image[0].numpy(), float(meta["value_lo"]), float(meta["value_hi"]), model, study_uid, series_uid, index + 1)
            else:
                name = f"{meta['id']}_image.nii.gz"
                _write_nifti(tmp / name, values.astype(np.float32))
                if meta["has_label"] == "1":
                    _write_nifti(tmp / f"{meta['id']}_label.nii.gz", label.numpy().astype(np.uint8))
            written.append(Path(out) / name)
        (tmp / "export.json").write_text(json.dumps({
            "synthetic": True, "format": fmt, "source_set": str(Path(set_dir).resolve()), "model": model,
            "checkpoint_sha256": dataset.info.get("checkpoint_sha256"), "files": len(written),
        }, indent=2), encoding="utf-8")
    return written


def _write_nifti(path: Path, slice_2d: np.ndarray) -> None:
    """(H, W) -> an (H, W, 1) NIfTI whose header says it is synthetic."""
    img = nib.Nifti1Image(np.ascontiguousarray(slice_2d[..., None]), np.eye(4))
    img.header["descrip"] = NIFTI_DESCRIP.encode()
    nib.save(img, str(path))


def _write_dicom(path: Path, unit: np.ndarray, lo: float, hi: float, model: str, study_uid: str, series_uid: str, number: int) -> None:
    """(H, W) image in [-1, 1] -> a Secondary Capture file; stored 0..65535 maps back to [lo, hi]."""
    stored = unit_to_uint16(unit)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    for keyword in EMPTY_PHI:
        setattr(ds, keyword, "")
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "radsynth synthetic export: no patient data was ever written"
    ds.Modality, ds.ConversionType = "OT", "SYN"  # ConversionType SYN: synthetic image (DICOM PS3.3 C.8.6.1)
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "NO"
    ds.SeriesDescription = "SYNTHETIC (radsynth)"
    ds.ImageComments = f"SYNTHETIC image generated by radsynth ({model}); not from a patient"
    ds.DerivationDescription = f"SYNTHETIC: generated by radsynth model {model}"
    ds.SeriesNumber, ds.InstanceNumber = 1, number
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = f"{(hi - lo) / 65535.0:.10g}", f"{lo:.10g}"
    ds.PixelData = stored.tobytes()
    ds.save_as(str(path), enforce_file_format=True)
