import pytest

from radsynth.data.splits import parse_fractions, split_patients
from radsynth.errors import InputError

PATIENTS = [f"p{i:02d}" for i in range(20)]
FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}


def test_deterministic_and_order_independent():
    a = split_patients(PATIENTS, FRACTIONS, seed=3)
    b = split_patients(list(reversed(PATIENTS)) + PATIENTS[:3], FRACTIONS, seed=3)
    assert a == b
    assert a != split_patients(PATIENTS, FRACTIONS, seed=4)


def test_counts_follow_fractions():
    split = split_patients(PATIENTS, FRACTIONS, seed=0)
    counts = {name: sum(v == name for v in split.values()) for name in FRACTIONS}
    assert counts == {"train": 14, "val": 2, "test": 4}
    assert set(split) == set(PATIENTS)  # each patient on exactly one side


def test_every_requested_split_gets_a_patient_when_possible():
    split = split_patients(["a", "b", "c"], FRACTIONS, seed=0)
    assert sorted(split.values()) == ["test", "train", "val"]


def test_stratified_keeps_each_class_in_each_split():
    strata = {p: ("covid" if i % 2 else "normal") for i, p in enumerate(PATIENTS)}
    split = split_patients(PATIENTS, {"train": 0.5, "val": 0.0, "test": 0.5}, seed=0, strata=strata)
    for klass in ("covid", "normal"):
        sides = [split[p] for p in PATIENTS if strata[p] == klass]
        assert sides.count("train") == sides.count("test") == 5


@pytest.mark.parametrize("text, expected", [("0.6,0.2,0.2", {"train": 0.6, "val": 0.2, "test": 0.2}), ("train=0.5,test=0.5", {"train": 0.5, "val": 0.0, "test": 0.5})])
def test_parse_fractions(text, expected):
    assert parse_fractions(text) == expected


@pytest.mark.parametrize("text", ["0.5,0.5", "0.6,0.6,0.2", "train=0.5,dev=0.5", "a,b,c"])
def test_parse_fractions_rejects(text):
    with pytest.raises(InputError, match="--split"):
        parse_fractions(text)


def test_named_test_patients_are_held_out_and_the_rest_split_by_ratio():
    from radsynth.data.prepare import named_test_split

    patients = [f"P{i}" for i in range(6)]
    assignment, how = named_test_split(patients, ("P4",), None, seed=0)
    assert assignment["P4"] == "test" and all(assignment[p] == "train" for p in patients if p != "P4")
    assert "P4" in how
    assignment, _ = named_test_split(patients, ("P1", "P2"), {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    assert [p for p in patients if assignment[p] == "test"] == ["P1", "P2"]
    assert sorted(assignment[p] for p in patients if p not in ("P1", "P2")) == ["train", "train", "train", "val"]  # 3 : 1


@pytest.mark.parametrize("test, message", [(("P9",), "no patient P9"), (("P0", "P1"), "none is left to train on")])
def test_named_test_patients_refuse_unknown_or_all(test, message):
    from radsynth.data.prepare import named_test_split

    with pytest.raises(InputError, match=message):
        named_test_split(["P0", "P1"], test, None, seed=0)


def test_prepare_cli_holds_out_the_named_patient(nifti_pair_dir, tmp_path, cli):
    import csv
    import json

    result = cli("data", "prepare", str(nifti_pair_dir), "--out", str(tmp_path / "set"), "--size", "16", "--test-patients", "PB")
    assert result.code == 0 and "test patients named (PB)" in result.out
    rows = list(csv.DictReader(open(tmp_path / "set" / "manifest.csv")))
    assert {(r["patient"], r["split"]) for r in rows} == {("PA", "train"), ("PB", "test")}
    record = json.loads((tmp_path / "set" / "dataset.json").read_text())
    assert record["provenance"]["config"]["test_patients"] == ["PB"] and "PB" in record["split"]
    result = cli("data", "prepare", str(nifti_pair_dir), "--out", str(tmp_path / "bad"), "--test-patients", "PZ")
    assert result.code != 0 and "no patient PZ" in result.err and not (tmp_path / "bad").exists()
