"""``radsynth data inspect`` on the four shared real data sets, against the counts in DATA.md."""

import json

import pytest

pytestmark = pytest.mark.shared_data


def _inspect(cli, path):
    result = cli("data", "inspect", path, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_rp9_counts(cli, shared_data):
    s = _inspect(cli, shared_data / "ct-rp9-dev")
    assert (s["format"], s["scheme"], s["intensity_kind"]) == ("nifti", "schema", "non-hu")
    assert s["patients"] == 3 and s["slices"] == 45 + 39 + 45
    assert s["image_sizes"] == {"630x630": 129}
    assert (s["intensity_min"], s["intensity_max"]) == (0.0, 4095.0)
    # DATA.md table, summed over DCM1, DCM4, DCM8
    assert s["label_histogram"] == {
        "background": 15781388 + 13517362 + 15464148,
        "lung": 1745484 + 1690328 + 2361161,
        "ground-glass": 253662 + 259436 + 35006,
        "consolidation": 79966 + 11974 + 185,
    }
    assert 0 < s["slices_with_infection"] < 129


def test_ma20_counts(cli, shared_data):
    s = _inspect(cli, shared_data / "ct-ma20-png")
    assert (s["format"], s["scheme"], s["intensity_kind"]) == ("png-manifest", "lung-infection", "uint8")
    assert s["patients"] == 14 and s["slices"] == 696 and s["image_sizes"] == {"256x256": 696}
    assert s["slices_with_infection"] == 696  # upstream dropped slices without infection
    assert s["label_histogram"]["consolidation"] == 0  # binary infection is stored as label 2


def test_medseg_counts(cli, shared_data):
    s = _inspect(cli, shared_data / "ct-medseg100")
    assert (s["format"], s["scheme"]) == ("png-manifest", "medseg")
    assert s["slices"] == 98 and s["splits"] == {"train": 50, "test": 48}
    assert s["label_histogram"]["lung"] == 0 and s["label_histogram"]["consolidation"] > 0


def test_cxr_counts(cli, shared_data):
    s = _inspect(cli, shared_data / "cxr-dev")
    assert s["format"] == "class-folders" and s["slices"] == 239
    assert s["classes"] == {"COVID-19": 98, "Normal": 81, "Pneumonia": 60}
    assert s["label_histogram"] is None


def test_text_output_names_the_facts(cli, shared_data):
    result = cli("data", "inspect", shared_data / "ct-ma20-png")
    assert result.code == 0
    for fact in ("format: png-manifest", "patients: 14", "slices: 696", "256x256", "slices with infection: 696 of 696"):
        assert fact in result.out


def test_prepare_medseg_keeps_source_split_and_cxr_splits_by_patient(cli, shared_data, tmp_path):
    assert cli("data", "prepare", shared_data / "ct-medseg100", "--out", tmp_path / "m", "--size", "64").code == 0
    info = json.loads((tmp_path / "m" / "dataset.json").read_text())
    assert info["slices"] == {"train": 50, "test": 48} and info["has_lung"] is False
    assert cli("data", "prepare", shared_data / "cxr-dev", "--out", tmp_path / "x", "--size", "32").code == 0
    import csv

    rows = list(csv.DictReader(open(tmp_path / "x" / "manifest.csv")))
    sides = {}
    for r in rows:
        sides.setdefault(r["patient"], set()).add(r["split"])
    assert len(rows) == 239 and all(len(s) == 1 for s in sides.values())
