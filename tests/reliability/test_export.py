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


@pytest.fixture(scope="module")
def synthetic_train(trained_run, phantom_prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "synthetic-train"
    code, _, err = run_cli("synth", trained_run, "--conditions", phantom_prepared, "--out", out, "--split", "train", "--device", "cpu")
    assert code == 0, err
    return out


def test_nnunet_export_of_real_and_synthetic_sets_reads_back(synthetic_train, phantom_prepared, tmp_path):
    """Every real train / val slice and every synthetic slice is a training case with its label; the real test
    split goes to imagesTs; values and labels are the sets' own; dataset.json is what nnU-Net v2 reads."""
    import json

    code, out, err = run_cli("data", "export", f"{phantom_prepared},{synthetic_train}", "--format", "nnunet", "--out", tmp_path / "nnunet",
                             "--dataset-id", "501", "--name", "PhantomCovid")
    assert code == 0, err
    folder = tmp_path / "nnunet" / "Dataset501_PhantomCovid"
    info = json.loads((folder / "dataset.json").read_text())
    real, synthetic = SliceSet(phantom_prepared), SliceSet(synthetic_train)
    real_train = [i for i, r in enumerate(real.rows) if r["split"] in ("train", "val")]
    real_test = [i for i, r in enumerate(real.rows) if r["split"] == "test"]
    assert info["channel_names"] == {"0": "CT"} and info["file_ending"] == ".nii.gz"
    assert info["labels"] == {"background": 0, "lung": 1, "ggo": 2, "consolidation": 3}
    assert info["numTraining"] == len(real_train) + len(synthetic) and len(synthetic) == len(real_train)
    images = sorted(p.name for p in (folder / "imagesTr").iterdir())
    labels = sorted(p.name for p in (folder / "labelsTr").iterdir())
    assert [n.replace("_0000.nii.gz", ".nii.gz") for n in images] == labels and len(labels) == info["numTraining"]
    assert sum(n.startswith("syn_") for n in labels) == len(synthetic) and sum(n.startswith("real_") for n in labels) == len(real_train)
    assert len(list((folder / "imagesTs").iterdir())) == len(real_test)
    cases = info["radsynth"]["cases"]
    for dataset, kind in ((real, "real"), (synthetic, "synthetic")):
        for index, row in enumerate(dataset.rows):
            case = next(c for c, v in cases.items() if v["id"] == row["id"] and v["kind"] == kind)
            image, label, meta = dataset[index]
            sub = "imagesTs" if row["split"] == "test" else "imagesTr"
            nifti = nib.load(folder / sub / f"{case}_0000.nii.gz")
            assert nifti.shape == (32, 32, 1) and tuple(nifti.header.get_zooms()) == (1.0, 1.0, 999.0)
            source = meta if kind == "real" else next(r for r in real.rows if r["id"] == meta["condition_id"])  # HU of the condition
            expected = from_unit(image[0].numpy(), float(source["value_lo"]), float(source["value_hi"]))
            assert np.allclose(nifti.get_fdata()[..., 0], expected, atol=1e-3)
            if sub == "imagesTr":
                assert np.array_equal(nib.load(folder / "labelsTr" / f"{case}.nii.gz").get_fdata()[..., 0], label.numpy())
    assert "501" in out and "training cases" in out


def test_nnunet_export_refuses_synthetic_images_of_test_patients_and_bad_names(synthetic, phantom_prepared, tmp_path):
    code, out, err = run_cli("data", "export", f"{phantom_prepared},{synthetic}", "--format", "nnunet", "--out", tmp_path / "n",
                             "--dataset-id", "501", "--name", "X")
    assert_one_line_error(code, out, err, "synthetic", "made from test patients")
    assert not (tmp_path / "n").exists()
    code, out, err = run_cli("data", "export", str(phantom_prepared), "--format", "nnunet", "--out", tmp_path / "n", "--dataset-id", "5", "--name", "a_b")
    assert_one_line_error(code, out, err, "--name", "letters, digits and '-'")
    code, out, err = run_cli("data", "export", str(phantom_prepared), "--format", "nnunet", "--out", tmp_path / "n")
    assert_one_line_error(code, out, err, "--format nnunet", "--dataset-id")


def test_nnunet_labels_are_consecutive_for_every_scheme():
    from radsynth.data.export_nnunet import nnunet_labels

    assert nnunet_labels(True, False) == ({"background": 0, "lung": 1, "infection": 2}, {0: 0, 1: 1, 2: 2, 3: 2})
    assert nnunet_labels(False, True) == ({"background": 0, "ggo": 1, "consolidation": 2}, {0: 0, 2: 1, 3: 2})
    assert nnunet_labels(False, False) == ({"background": 0, "infection": 1}, {0: 0, 2: 1, 3: 1})


def test_nnunet_export_passes_nnunets_own_integrity_check(synthetic_train, phantom_prepared, tmp_path):
    """Where nnU-Net v2 is installed: its dataset integrity verification accepts the export."""
    verify = pytest.importorskip("nnunetv2.experiment_planning.verify_dataset_integrity")
    code, _, err = run_cli("data", "export", f"{phantom_prepared},{synthetic_train}", "--format", "nnunet", "--out", tmp_path,
                           "--dataset-id", "502", "--name", "Check")
    assert code == 0, err
    verify.verify_dataset_integrity(str(tmp_path / "Dataset502_Check"), num_processes=1)
