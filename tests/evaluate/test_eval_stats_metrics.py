"""Metrics and intervals against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from radsynth.evaluate.metrics import SegmentationStats, confusion_counts, scores, sum_by
from radsynth.evaluate.stats import t_interval, t_quantile
from radsynth.evaluate.summary import summarise, unit_keys


def test_t_quantiles_match_the_tables():
    assert t_quantile(4) == pytest.approx(2.776445, abs=1e-6)  # CoSinGAN: 5 test scans, 4 dof
    assert t_quantile(9) == pytest.approx(2.262157, abs=1e-6)  # Jiang: 10 folds, 9 dof
    assert t_quantile(1) == pytest.approx(12.706205, abs=1e-6)


def test_t_interval_by_hand():
    # mean 0.8, sd (ddof 1) 0.1, half = 4.302653 * 0.1 / sqrt(3) = 0.248414
    interval = t_interval([0.8, 0.9, 0.7])
    assert interval.mean == pytest.approx(0.8)
    assert interval.sd == pytest.approx(0.1)
    assert interval.half == pytest.approx(0.248414, abs=1e-6)
    assert (interval.lo, interval.hi) == pytest.approx((0.551586, 1.048414), abs=1e-6)  # may leave [0, 1], as in the papers
    assert interval.n == 3


def test_t_interval_edge_cases():
    assert t_interval([0.5, float("nan"), 0.7]).n == 2  # an undefined score is left out
    single = t_interval([0.4])
    assert single.mean == 0.4 and math.isnan(single.lo) and math.isnan(single.hi)
    constant = t_interval([0.3, 0.3, 0.3])
    assert constant.lo == pytest.approx(0.3) and constant.hi == pytest.approx(0.3)
    assert math.isnan(t_interval([]).mean)


def test_confusion_counts_and_scores_by_hand():
    # schema labels: 1 lung, 2 GGO, 3 consolidation
    target = torch.tensor([[[0, 1, 1, 0], [1, 1, 2, 2], [0, 3, 3, 0], [0, 0, 0, 0]]])
    pred = torch.tensor([[[0, 1, 0, 0], [1, 1, 2, 3], [1, 3, 2, 0], [0, 0, 0, 0]]])
    counts = confusion_counts(pred, target, ("lung", "infection", "ggo", "consolidation"))
    # lung: pred {(0,1),(1,0),(1,1),(2,0)}, truth {(0,1),(0,2),(1,0),(1,1)} -> TP 3, FP 1, FN 1, TN 11
    # infection (2|3): pred {(1,2),(1,3),(2,1),(2,2)}, truth {(1,2),(1,3),(2,1),(2,2)} -> TP 4
    # ggo: pred {(1,2),(2,2)}, truth {(1,2),(1,3)} -> TP 1, FP 1, FN 1
    # consolidation: pred {(1,3),(2,1)}, truth {(2,1),(2,2)} -> TP 1, FP 1, FN 1
    assert counts.tolist() == [[[3, 1, 1, 11], [4, 0, 0, 12], [1, 1, 1, 13], [1, 1, 1, 13]]]
    values = scores(counts.numpy())
    assert values["dsc"][0].tolist() == pytest.approx([0.75, 1.0, 0.5, 0.5])
    assert values["sensitivity"][0].tolist() == pytest.approx([0.75, 1.0, 0.5, 0.5])
    assert values["specificity"][0].tolist() == pytest.approx([11 / 12, 1.0, 13 / 14, 13 / 14])


def test_empty_class_is_nan_not_perfect():
    empty = np.array([0, 0, 0, 16])
    assert math.isnan(scores(empty)["dsc"]) and math.isnan(scores(empty)["sensitivity"])
    assert scores(empty)["specificity"] == 1.0
    assert scores(np.array([0, 3, 0, 13]))["dsc"] == 0.0  # predicted where there is none: DSC 0


def test_streaming_equals_one_update():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 4, (6, 8, 8), generator=gen)
    target = torch.randint(0, 4, (6, 8, 8), generator=gen)
    whole = SegmentationStats(("lung", "infection"))
    whole.update(pred, target, torch.arange(6))
    parts = SegmentationStats(("lung", "infection"))
    parts.update(pred[3:], target[3:], torch.arange(3, 6))
    parts.update(pred[:3], target[:3], torch.arange(3))
    index, counts = parts.compute()
    order = torch.argsort(index)
    assert torch.equal(counts[order], whole.compute()[1])
    assert int(counts[..., :].sum(-1).unique()) == 64  # every pixel counted once per region


def test_patient_intervals_by_hand():
    # patient A: two slices, pooled (4, 1, 1, 26): DSC 0.8, sens 0.8, spec 26/27; patient B: (2, 2, 2, 10): DSC 0.5
    counts = np.array([[[3, 1, 0, 12]], [[1, 0, 1, 14]], [[2, 2, 2, 10]]])
    rows = [{"unit": "A", "site": "x"}, {"unit": "A", "site": "x"}, {"unit": "B", "site": "y"}]
    result = summarise(counts, rows, ["lung"], "patient", 10, "site")
    dsc = result["overall"]["lung"]["dsc"]
    assert dsc["mean"] == pytest.approx(0.65)
    assert dsc["half"] == pytest.approx(12.706205 * 0.15, abs=1e-5)  # sd = 0.212132, / sqrt(2) = 0.15
    assert dsc["pooled"] == pytest.approx(12 / 18)
    assert result["overall"]["lung"]["specificity"]["mean"] == pytest.approx((26 / 27 + 10 / 12) / 2)
    assert result["per_patient"]["A"]["lung"]["dsc"] == pytest.approx(0.8) and result["per_patient"]["A"]["slices"] == 2
    assert result["groups"]["x"]["lung"]["dsc"]["mean"] == pytest.approx(0.8) and result["groups"]["x"]["lung"]["dsc"]["n"] == 1
    assert sum_by(counts, ["A", "A", "B"])["A"].tolist() == [[4, 1, 1, 26]]


def test_folds_are_contiguous_and_near_equal():
    keys = unit_keys([{"unit": "p"}] * 10, "fold", 3)
    assert keys == ["fold0"] * 4 + ["fold1"] * 3 + ["fold2"] * 3
