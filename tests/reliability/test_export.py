"""``radsynth data export``: a synthetic set as DICOM / NIfTI files with PHI fields empty, marked SYNTHETIC."""

from __future__ import annotations

import csv

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import SecondaryCaptureImageStorage

from radsynth.data.detect import open_source
from radsynth.data.intensity import from_unit
from radsynth.data.slices import SliceSet
from radsynth.synth.export_volumes import EMPTY_PHI
from tests.reliability.helpers import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def synthetic(trained_run, phantom_prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "synthetic"
    code, _, err = run_cli("synth", trained_run, "--conditions", phantom_prepared, "--out", out, "--limit", "3", "--device", "cpu")
    assert code == 0, err
    return out


def test_dicom_export_is_secondary_capture_without_phi_and_says_synthetic(synthetic, tmp_path):
    code, _, err = run_cli("data", "export", synthetic, "--format", "dicom", "--out", tmp_path / "dcm")
    assert code == 0, err
    dataset = SliceSet(synthetic)
    files = sorted((tmp_path / "dcm").glob("*.dcm"))
    assert [f.stem for f in files] == [r["id"] for r in dataset.rows]
    uids = set()
    for path, (image, _, meta) in zip(files, (dataset[i] for i in range(len(dataset)))):
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == SecondaryCaptureImageStorage and ds.ConversionType == "SYN"
        assert all(str(ds.get(k, "")) == "" for k in EMPTY_PHI) and ds.PatientIdentityRemoved == "YES"
        assert "SYNTHETIC" in ds.ImageComments and "SYNTHETIC" in ds.DerivationDescription and ds.BurnedInAnnotation == "NO"
        uids.add(ds.SOPInstanceUID)
        values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        expected = from_unit(image[0].numpy(), float(meta["value_lo"]), float(meta["value_hi"]))
        assert np.abs(values - expected).max() < 1e-3 * (float(meta["value_hi"]) - float(meta["value_lo"]))
    assert len(uids) == len(files) == 3


def test_nifti_export_says_synthetic_and_reads_back(synthetic, tmp_path):
    code, _, err = run_cli("data", "export", synthetic, "--format", "nifti", "--out", tmp_path / "nii")
    assert code == 0, err
    images = sorted((tmp_path / "nii").glob("*_image.nii.gz"))
    assert len(images) == 3 and all(nib.load(str(p)).header["descrip"].tobytes().rstrip(b"\0") == b"radsynth synthetic" for p in images)
    source = open_source(tmp_path / "nii")
    slices = [s for unit in source.units for s in unit.load()]
    rows = list(csv.DictReader(open(synthetic / "manifest.csv")))
    dataset = SliceSet(synthetic)
    assert len(slices) == 3 and source.scheme.name == "schema"
    for raw, (image, label, meta) in zip(slices, (dataset[i] for i in range(3))):
        assert np.array_equal(raw.label, label.numpy().astype(np.uint8))
        assert np.allclose(raw.image, from_unit(image[0].numpy(), float(meta["value_lo"]), float(meta["value_hi"])), atol=1e-3)
    assert {r["id"] for r in rows} == {p.name.split("_")[0] for p in images}


def test_real_sets_are_not_exported_as_synthetic(phantom_prepared, tmp_path):
    code, out, err = run_cli("data", "export", phantom_prepared, "--format", "dicom", "--out", tmp_path / "x")
    assert_one_line_error(code, out, err, str(phantom_prepared), "is not a synthetic set")
    assert not (tmp_path / "x").exists()


def test_synth_export_writes_the_set_and_its_dicom_copy_in_one_command(trained_run, phantom_prepared, tmp_path):
    out = tmp_path / "set"
    code, _, err = run_cli("synth", trained_run, "--conditions", phantom_prepared, "--out", out, "--limit", "2", "--device", "cpu",
                           "--export", "dicom")
    assert code == 0, err
    files = sorted((out / "export-dicom").glob("*.dcm"))
    assert [f.stem for f in files] == [r["id"] for r in SliceSet(out).rows]
    assert all(pydicom.dcmread(f).ConversionType == "SYN" for f in files)
