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
