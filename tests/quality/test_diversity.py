"""Diversity: pair selection and the two pair measures on known images."""

from __future__ import annotations

import pytest
import torch

from radsynth.quality.diversity import candidate_pairs, diversity, draw_pairs, pair_scores


def test_candidate_pairs_within_and_across_conditions():
    keys = ["a", "a", "b", "a"]
    assert candidate_pairs(keys, same=True).tolist() == [[0, 1], [0, 3], [1, 3]]
    assert candidate_pairs(keys, same=False).tolist() == [[0, 2], [1, 2], [2, 3]]


def test_draw_pairs_caps_and_is_seeded():
    pairs = candidate_pairs([str(i) for i in range(10)], same=False)  # 45 pairs
    assert len(draw_pairs(pairs, 100, 0)) == 45
    drawn = draw_pairs(pairs, 7, 0)
    assert len(drawn) == 7 and len({tuple(p) for p in drawn.tolist()}) == 7
    assert torch.equal(drawn, draw_pairs(pairs, 7, 0)) and not torch.equal(drawn, draw_pairs(pairs, 7, 1))


def test_pair_scores_of_known_images():
    base = torch.rand(1, 1, 48, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    images = torch.cat([base, base, torch.full_like(base, 0.0), torch.full_like(base, 0.5)])
    scores = pair_scores(images, torch.tensor([[0, 1], [2, 3]]))
    assert scores["ms_ssim"][0].item() == pytest.approx(1.0, abs=1e-5)  # identical images
    assert scores["l1"][0].item() == 0.0
    assert scores["l1"][1].item() == pytest.approx(0.25)  # |0.75 - 0.5| on [0, 1]
    assert scores["ms_ssim"][1].item() < 1.0


def test_diversity_within_is_absent_when_each_condition_is_used_once():
    images = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    once = diversity(images, ["a", "b", "c", "d"])
    assert once["within"] is None and once["across"]["pairs"] == 6
    copies = torch.cat([images[:2], images[:2]])  # two conditions, each synthesized twice, identical copies
    twice = diversity(copies, ["a", "b", "a", "b"])
    assert twice["within"]["pairs"] == 2
    assert twice["within"]["l1"]["mean"] == 0.0 and twice["within"]["ms_ssim"]["mean"] == pytest.approx(1.0, abs=1e-5)
    assert twice["across"]["l1"]["mean"] > 0.1
