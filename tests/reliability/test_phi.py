"""No patient identifiers from DICOM headers reach prepared sets, synthetic sets, their DICOM / NIfTI
exports or the CLI's output.

A DICOM series is written with identifying header fields, prepared, given masks (as if drawn by a
reader), used as the conditions of a synthesis; then every byte of every file written is searched
for each identifier.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

from radsynth.data.dicom import write_dicom_series
from tests.reliability.helpers import run_cli

PHI = {
    "PatientName": "DOE^JANE",
    "PatientID": "MRN884422",
    "PatientBirthDate": "19600101",
    "StudyDate": "20200315",
    "InstitutionName": "St Example Hospital",
    "AccessionNumber": "ACC77731",
    "ReferringPhysicianName": "HOUSE^GREGORY",
    "OtherPatientIDs": "ALT55501",
}


def _series_with_phi(folder: Path) -> None:
    rng = np.random.default_rng(0)
    volume = rng.integers(-1000, 400, (4, 48, 48)).astype(np.float32)
    for path in write_dicom_series(folder, volume, patient_id=PHI["PatientID"]):
        ds = pydicom.dcmread(path)
        for key, value in PHI.items():
            setattr(ds, key, value)
        ds.save_as(path)
    assert pydicom.dcmread(next(folder.iterdir())).PatientName == PHI["PatientName"]  # the input really holds them


def _leaks(root: Path) -> dict[str, list[str]]:
    """identifier -> files under ``root`` whose bytes contain it (in any case)."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes().lower()
        for key, value in PHI.items():
            for form in {value, value.replace("^", " "), value.split("^")[0]}:
                if form.lower().encode() in data:
                    found.setdefault(key, []).append(str(path.relative_to(root)))
    return found


def _add_masks(prepared: Path) -> None:
    """Give every slice a lung label map, as a reader drawing masks on the prepared images would."""
    rows = list(csv.DictReader(open(prepared / "manifest.csv")))
    (prepared / "labels").mkdir()
    for row in rows:
        label = np.zeros((32, 32), np.uint8)
        label[8:24, 4:14] = 1
        label[8:24, 18:28] = 1
        Image.fromarray(label).save(prepared / "labels" / f"{row['id']}.png")
        row["label"] = f"labels/{row['id']}.png"
    with open(prepared / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    info = json.loads((prepared / "dataset.json").read_text())
    (prepared / "dataset.json").write_text(json.dumps({**info, "scheme": "schema"}))


def test_dicom_identifiers_never_reach_prepared_or_synthetic_sets(trained_run, tmp_path):
    _series_with_phi(tmp_path / "dicom" / "series1")
    code, inspected, err = run_cli("data", "inspect", tmp_path / "dicom", "--json")
    assert code == 0, err
    prepared = tmp_path / "prepared"
    code, printed, err = run_cli("data", "prepare", tmp_path / "dicom", "--out", prepared, "--size", "32")
    assert code == 0, err
    assert [k for k in PHI if PHI[k].lower() in (inspected + printed + err).lower()] == []
    assert _leaks(prepared) == {}
    patients = {r["patient"] for r in csv.DictReader(open(prepared / "manifest.csv"))}
    assert len(patients) == 1 and patients.pop().startswith("dcm-")  # a one-way pseudonym

    _add_masks(prepared)
    synthetic = tmp_path / "synthetic"
    code, printed, err = run_cli("synth", trained_run, "--conditions", prepared, "--out", synthetic, "--device", "cpu")
    assert code == 0, err
    rows = list(csv.DictReader(open(synthetic / "manifest.csv")))
    assert len(rows) == 4 and all(r["patient"].startswith("dcm-") for r in rows)
    assert json.loads((synthetic / "dataset.json").read_text())["synthetic"] is True
    assert _leaks(synthetic) == {}
    for fmt in ("dicom", "nifti"):  # and the synthetic set exported as DICOM / NIfTI
        code, _, err = run_cli("data", "export", synthetic, "--format", fmt, "--out", tmp_path / f"export-{fmt}")
        assert code == 0, err
        assert _leaks(tmp_path / f"export-{fmt}") == {}
    assert pydicom.dcmread(next((tmp_path / "export-dicom").glob("*.dcm"))).PatientName == ""
    assert _leaks(tmp_path / "dicom")["PatientName"]  # control: the search does find them where they are
