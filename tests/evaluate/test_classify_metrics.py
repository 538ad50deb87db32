"""Classification metrics against hand-computed confusion matrices; SPEC parsing; skew arithmetic."""

from __future__ import annotations

import math

import pytest

from radsynth.errors import InputError
from radsynth.evaluate.classify_data import _skew_cap, parse_classify_spec
from radsynth.evaluate.classify_metrics import confusion_matrix, scores_from_confusion, summarise_classification


def test_three_class_scores_match_a_hand_computed_confusion_matrix():
    classes = ("Normal", "Pneumonia", "COVID-19")
    # true:      N N N N P P P C C C C C
    # predicted: N N P C P P N C C C P C
    targets = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
    predicted = [0, 0, 1, 2, 1, 1, 0, 2, 2, 2, 1, 2]
    cm = confusion_matrix(targets, predicted, 3)
    assert cm.tolist() == [[2, 1, 1], [1, 2, 0], [0, 1, 4]]
    s = scores_from_confusion(cm, classes)
    assert s["accuracy"] == pytest.approx(8 / 12)
    n, p, c = (s["per_class"][k] for k in classes)
    # Normal: TP 2, FN 2, FP 1 (a pneumonia called normal), TN 7
    assert (n["tp"], n["fn"], n["fp"], n["tn"]) == (2, 2, 1, 7)
    assert n["sensitivity"] == n["recall"] == pytest.approx(0.5)
    assert n["specificity"] == pytest.approx(7 / 8)
    assert n["precision"] == pytest.approx(2 / 3)
    assert n["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    # Pneumonia: TP 2, FN 1, FP 2, TN 7
    assert (p["tp"], p["fn"], p["fp"], p["tn"]) == (2, 1, 2, 7)
    assert p["precision"] == pytest.approx(0.5) and p["recall"] == pytest.approx(2 / 3)
    # COVID-19: TP 4, FN 1, FP 1, TN 6
    assert (c["tp"], c["fn"], c["fp"], c["tn"]) == (4, 1, 1, 6)
    assert c["sensitivity"] == pytest.approx(0.8) and c["specificity"] == pytest.approx(6 / 7)
    assert c["precision"] == pytest.approx(0.8) and c["f1"] == pytest.approx(0.8)


def test_binary_intervals_over_patients_by_hand():
    classes = ("absent", "present")
    # patient a: 4 slices, 3 right; b: 4 slices, all right; c: 2 slices, 1 right
    targets = [1, 1, 0, 0, 1, 0, 1, 0, 1, 0]
    predicted = [1, 0, 0, 0, 1, 0, 1, 0, 1, 1]
    units = ["a"] * 4 + ["b"] * 4 + ["c"] * 2
    out = summarise_classification(targets, predicted, units, classes)
    assert out["confusion_matrix"] == [[4, 1], [1, 4]]
    assert out["pooled"]["accuracy"] == pytest.approx(0.8)
    assert out["pooled"]["per_class"]["present"]["fn"] == 1
    acc = out["intervals"]["accuracy"]
    values = [0.75, 1.0, 0.5]
    mean = sum(values) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2)
    assert acc["mean"] == pytest.approx(mean) and acc["lo"] == pytest.approx(mean - half) and acc["hi"] == pytest.approx(mean + half)
    sens = out["intervals"]["per_class"]["present"]["sensitivity"]
    assert sens["mean"] == pytest.approx((0.5 + 1.0 + 1.0) / 3) and sens["n"] == 3
    spec = out["intervals"]["per_class"]["present"]["specificity"]
    assert spec["mean"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    assert out["per_patient"]["c"] == {"images": 2, "accuracy": 0.5}


def test_skew_cap_follows_equation_6():
    # 90 negatives, 10 positives (skew 9): to reach skew 1 add 80 positives; to reach 3, add 20
    targets = [0] * 90 + [1] * 10
    assert _skew_cap(targets, 2, 1.0, 500) == 80
    assert _skew_cap(targets, 2, 3.0, 500) == 20
    assert _skew_cap(targets, 2, 1.0, 30) == 30  # fewer available: all of them
    assert _skew_cap(targets, 2, 0.0, 30) == 30  # 0: add every synthetic image
    assert _skew_cap(targets, 2, 20.0, 30) == 0  # already below the target


def test_classify_specs():
    assert parse_classify_spec("real").kind == "oc"
    add = parse_classify_spec("add:/a/G_NC,/b/G_PC")
    assert add.kind == "add" and add.fraction is None and [p.name for p in add.paths] == ["G_NC", "G_PC"]
    assert add.default_name == "Real + G_NC + G_PC"
    sweep = parse_classify_spec("add:30%:/a/G_NC")
    assert sweep.fraction == pytest.approx(0.3) and sweep.paths[0].name == "G_NC"
    only = parse_classify_spec("synth:/a/G_NC")
    assert only.kind == "synth" and only.default_name == "Only synthetic (G_NC)"
    assert parse_classify_spec("replace:0.5:/x").fraction == pytest.approx(0.5)
    with pytest.raises(InputError):
        parse_classify_spec("mixed:/x")
    with pytest.raises(InputError):
        parse_classify_spec("add:abc%:/x")
