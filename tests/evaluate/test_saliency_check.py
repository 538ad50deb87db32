"""Saliency localisation: hand-computed lesion mass and pointing game, the choice of images, and a CT
test set's infection labels turned into the lesion masks a run scores its explanations against."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from radsynth.data.slices import SliceSet
from radsynth.evaluate.classify import saliency_localisation
from radsynth.evaluate.classify_config import ClassifyConfig
from radsynth.evaluate.classify_data import CT_CLASSES, load_class_test_set
from radsynth.evaluate.classify_tables import localisation_table
from radsynth.evaluate.saliency_check import choose_for_localisation, localisation_scores, mass_in_lesion, peak_in_lesion
from radsynth.nets.classifiers import build_classifier


def test_mass_in_lesion_and_peak_match_hand_computed_values():
    saliency = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    lesion = torch.tensor([[False, True], [True, False]])
    assert mass_in_lesion(saliency, lesion) == pytest.approx(1.5 / 2.0)
    assert peak_in_lesion(saliency, lesion) is True
    assert peak_in_lesion(saliency, ~lesion) is False
    assert mass_in_lesion(torch.zeros(2, 2), lesion) == 0.0 and peak_in_lesion(torch.zeros(2, 2), lesion) is False
    with pytest.raises(ValueError, match="differ in shape"):
        mass_in_lesion(saliency, lesion[:1])
    with pytest.raises(ValueError, match=">= 0"):
        mass_in_lesion(-saliency, lesion)


def test_images_for_localisation_are_correct_positives_with_a_lesion_drawn_with_the_seed():
    correct_positive = np.array([True, True, False, True, True, True, True])
    lesion_pixels = np.array([5, 0, 9, 3, 1, 7, 2])
    eligible = {0, 3, 4, 5, 6}
    assert choose_for_localisation(correct_positive, lesion_pixels, 10, seed=0) == sorted(eligible)
    picked = choose_for_localisation(correct_positive, lesion_pixels, 3, seed=0)
    assert len(picked) == 3 and set(picked) <= eligible and picked == sorted(picked)
    assert picked == choose_for_localisation(correct_positive, lesion_pixels, 3, seed=0)
    assert choose_for_localisation(correct_positive, lesion_pixels, 0, seed=0) == []


def test_ct_test_set_lesions_are_its_infection_labels_and_a_run_scores_both_explanations(phantom_prepared64):
    config = ClassifyConfig(size=64, localisation_images=3, eval_batch_size=64)
    test = load_class_test_set(phantom_prepared64, CT_CLASSES, "test", 64)
    labels = torch.stack([SliceSet(phantom_prepared64, split="test")[i][1] for i in range(len(test.rows))])
    assert test.lesions is not None and torch.equal(test.lesions, labels >= 2)
    assert torch.equal(test.targets, (test.lesions.flatten(1).sum(1) > 0).long())  # present = some infection label
    net = build_classifier("resnet18", 3, 1).eval()
    # pretend every prediction is right: the positives with infection are the candidates
    result = saliency_localisation(net, test, test.targets.clone(), config)
    assert result is not None and result["images"] == 3 and result["class"] == 1
    by_id = {r["id"]: i for i, r in enumerate(test.rows)}
    assert all(test.targets[by_id[i]] == 1 for i in result["ids"])
    area = float(np.mean([float(test.lesions[by_id[i]].float().mean()) for i in result["ids"]]))
    assert result["lesion_area"] == pytest.approx(area)
    for name in ("gradcam", "occlusion"):
        entry = result[name]
        assert len(entry["per_image"]) == 3 and all(0 <= m <= 1 for m in entry["per_image"])
        assert entry["mass_in_lesion"] == pytest.approx(np.mean(entry["per_image"]), abs=1e-4)
        assert entry["mass_over_area"] == pytest.approx(entry["mass_in_lesion"] / area)
        assert 0 <= entry["pointing_game"] <= 1 and not math.isnan(entry["interval"][0])
    table = localisation_table(result)
    assert "Grad-CAM (body.layer2)" in table and "Occlusion (8 px squares)" in table
    missed = {**result, "gradcam": {**result["gradcam"], "pointing_game": 0.25}, "occlusion": {**result["occlusion"], "pointing_game": 0.0}}
    hit = {**missed, "occlusion": {**result["occlusion"], "pointing_game": 0.5}}
    assert "Neither explanation peaks inside the lesion" in localisation_table(missed)
    assert "Neither explanation" not in localisation_table(hit)
    # no image predicted positive: nothing to score; an X-ray set has no lesion masks
    assert saliency_localisation(net, test, torch.zeros_like(test.targets), config) is None


def test_localisation_refuses_masks_that_do_not_fit_the_images():
    net = build_classifier("resnet18", 3, 1)
    with pytest.raises(ValueError, match="lesions"):
        localisation_scores(net, torch.zeros(2, 1, 32, 32), torch.zeros(2, 16, 16, dtype=torch.bool), 1, ClassifyConfig(size=32))


def test_saliency_figure_outlines_the_lesions(tmp_path):
    """The same figure with and without a lesion on the first image differs only by a white outline on the
    first image's map (lower left panel); the second image has no lesion, so nothing is drawn there."""
    import numpy as np
    from PIL import Image

    from radsynth.evaluate.classify_figures import gradcam_figure

    images = torch.zeros(2, 1, 32, 32)
    maps = torch.zeros(2, 32, 32)  # dark blue under the outline: white stands out
    lesions = torch.zeros(2, 32, 32, dtype=torch.bool)
    lesions[0, 8:16, 8:16] = True
    gradcam_figure(tmp_path / "with.png", images, maps, ["a", "b"], "t", lesions)
    gradcam_figure(tmp_path / "without.png", images, maps, ["a", "b"], "t", torch.zeros_like(lesions))
    drawn, plain = (np.asarray(Image.open(tmp_path / f"{n}.png").convert("RGB")).astype(int) for n in ("with", "without"))
    assert drawn.shape == plain.shape
    changed = np.abs(drawn - plain).sum(-1) > 60
    rows, cols = np.nonzero(changed)
    assert len(rows) > 20  # an outline of an 8 x 8 square, scaled up
    height, width = changed.shape
    assert rows.min() > height / 2 and cols.max() < width / 2  # all in the first image's map
    assert drawn[changed].min(axis=-1).mean() > 150 > plain[changed].max(axis=-1).mean()  # whitish on dark blue
