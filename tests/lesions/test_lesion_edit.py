"""Lesion editing on one slice: what changes, what does not, and what the label map becomes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from radsynth.data.slices import SliceSet
from radsynth.lesions.edit import DEFAULT_MARGIN, add_lesions, lesion_crops, paste_lesions, remove_lesions
from radsynth.lesions.layout import lesion_centres, sample_layout
from radsynth.lesions.model import Appearance, LesionModel, Prior, depth_map, height_map, learn, lung_sides, rings


def _model(typed: bool = True, ggo: Appearance | None = None, cons: Appearance | None = None) -> LesionModel:
    appearance = {2: ggo or Appearance(0.15, 1.0, 100), 3: cons or Appearance(0.40, 0.0, 100)}
    return LesionModel(typed=typed, appearance=appearance, areas=(0.05,), elongations=(1.5,), depths=(0.1,), heights=(0.8,),
                       counts=(2, 2), consolidation_share=0.3 if typed else 0.0, rim_share=1.0, slices=("x",), prior_weight=0.5)


def _slices(prepared, n=6):
    data = SliceSet(prepared)
    items = [data[i] for i in range(len(data))]
    return [(image[0].numpy(), label.numpy()) for image, label, _ in items if (label >= 1).sum() > 200][:n]


def _far_from(region: np.ndarray, margin: int) -> np.ndarray:
    return ndimage.distance_transform_edt(~region) > margin


def test_add_changes_nothing_beyond_the_lesion_and_margin_and_labels_the_union(phantom_prepared64):
    model = _model()
    changed_inside = []
    for k, (image, label) in enumerate(_slices(phantom_prepared64)):
        rng = np.random.default_rng(k)
        layout = sample_layout(label, model, rng)
        lesions = layout.labels
        assert lesions.any() and np.all(label[lesions > 0] >= 1)  # the layout lies inside the lung
        assert np.all(layout.density[lesions == 0] == 1) and layout.density[lesions > 0].std() > 0.01  # patchy density
        edited, union = add_lesions(image, label, lesions, model, density=layout.density)
        far = _far_from(lesions > 0, DEFAULT_MARGIN)
        assert np.array_equal(edited[far], image[far])  # bit for bit
        assert np.array_equal(union, np.where(lesions > 0, np.maximum(label, lesions), label))
        assert np.array_equal(edited[label == 0], image[label == 0])  # nothing outside the lung
        changed_inside.append(float(np.abs(edited - image)[lesions > 0].mean()))
    assert min(changed_inside) > 0.05, changed_inside


def _flat_lung_with_vessel() -> tuple[np.ndarray, np.ndarray]:
    """64 px: lung at -0.6 with noise-free background, a bright vertical vessel at column 30."""
    image = np.full((64, 64), 0.2, np.float32)
    label = np.zeros((64, 64), np.uint8)
    label[8:56, 8:56] = 1
    image[label == 1] = -0.6
    image[10:54, 30:32] = 0.0  # vessel: 0.6 above the lung
    return image, label


@pytest.mark.parametrize(("cls", "keeps_vessel"), [(2, True), (3, False)])
def test_ggo_raises_attenuation_and_keeps_vessels_consolidation_hides_them(cls, keeps_vessel):
    image, label = _flat_lung_with_vessel()
    lesions = np.zeros_like(label)
    lesions[20:44, 18:44] = cls
    model = _model()
    edited, union = add_lesions(image, label, lesions, model, margin=2)
    inside = (lesions > 0).copy()
    vessel = np.zeros_like(inside)
    vessel[10:54, 30:32] = True
    parenchyma = inside & ~ndimage.binary_dilation(vessel, iterations=3)
    rise = float(edited[parenchyma].mean() - image[parenchyma].mean())
    assert rise == pytest.approx(2 * model.look(cls).offset, abs=0.05)  # offsets are on [0, 1]; images on [-1, 1]
    contrast_before = float(image[inside & vessel].mean() - image[parenchyma].mean())
    contrast_after = float(edited[inside & vessel].mean() - edited[parenchyma].mean())
    if keeps_vessel:
        assert contrast_after > 0.6 * contrast_before, (contrast_before, contrast_after)
    else:
        assert contrast_after < 0.25 * contrast_before, (contrast_before, contrast_after)
    assert set(np.unique(union[inside]).tolist()) == {cls}


def test_untyped_model_draws_only_infection_label_2(phantom_prepared64):
    model = _model(typed=False)
    for k, (image, label) in enumerate(_slices(phantom_prepared64)):
        lesions = sample_layout(label, model, np.random.default_rng(k)).labels
        _, union = add_lesions(image, np.where(label >= 2, 2, label), lesions, model)
        assert set(np.unique(lesions).tolist()) <= {0, 2} and 3 not in union


def test_remove_leaves_no_infection_and_fills_with_lung(phantom_prepared64):
    tried = 0
    for k, (image, label) in enumerate(_slices(phantom_prepared64)):
        infection = label >= 2
        if infection.sum() < 10:
            continue
        tried += 1
        edited, cleaned = remove_lesions(image, label, np.random.default_rng(k))
        assert not (cleaned >= 2).any() and np.array_equal(cleaned >= 1, label >= 1)
        far = _far_from(infection, DEFAULT_MARGIN)
        assert np.array_equal(edited[far], image[far])
        lung_mean = float(image[label == 1].mean())
        before = abs(float(image[infection].mean()) - lung_mean)
        after = abs(float(edited[infection].mean()) - lung_mean)
        assert after < 0.3 * before, (before, after)
    assert tried >= 2


def test_paste_copies_the_annotated_lesion_into_the_lung(phantom_prepared64):
    slices = _slices(phantom_prepared64)
    donor = next((im, lab) for im, lab in slices if (lab >= 2).sum() >= 10)
    crops = lesion_crops(*donor, typed=True)
    assert crops and all(((c.label >= 2) == (c.label > 0)).all() for c in crops)
    model = _model()
    for k, (image, label) in enumerate(slices):
        rng = np.random.default_rng(k)
        edited, union = paste_lesions(image, label, crops, lesion_centres(label, model, rng), rng)
        new = (union >= 2) & (label < 2)
        assert new.any() and np.all(label[new] >= 1)
        far = _far_from(union >= 2, DEFAULT_MARGIN)  # pasted lesions may also cover existing infection
        assert np.array_equal(edited[far], image[far])
        assert float(edited[new].mean()) > float(image[new].mean())  # phantom lesions are brighter than lung


def test_learn_measures_the_offset_counts_and_position_of_a_drawn_slice():
    image = np.full((128, 128), 0.4, np.float32)
    label = np.zeros((128, 128), np.uint8)
    label[20:110, 10:60] = 1
    label[20:110, 68:118] = 1
    image[label == 1] = -0.4  # 0.3 on [0, 1]
    label[99:109, 10:20] = 2  # one lesion per lung, posterior and at the pleura
    label[99:109, 108:118] = 3
    image[label == 2] = -0.1  # 0.45 on [0, 1]: +0.15
    image[label == 3] = 0.4  # 0.70: +0.40
    model = learn([image], [label], typed=True, slice_ids=["s"])
    assert model.look(2).offset == pytest.approx(0.15, abs=1e-6) and model.look(3).offset == pytest.approx(0.40, abs=1e-6)
    assert model.counts == (1, 1) and len(model.areas) == 2
    assert model.areas[0] == pytest.approx(100 / (90 * 50), rel=1e-6)
    assert all(d < 0.3 for d in model.depths) and all(h > 0.8 for h in model.heights)
    assert model.consolidation_share == pytest.approx(0.5)
    assert LesionModel.from_json(model.to_json()) == model


def test_layouts_are_peripheral_and_posterior_like_covid19(phantom_prepared64):
    model = _model()
    lesion_depth, lung_depth, lesion_height, lung_height = [], [], [], []
    for k, (image, label) in enumerate(_slices(phantom_prepared64)):
        lung = label >= 1
        sides = lung_sides(lung)
        depth, height = depth_map(lung, sides), height_map(sides)
        for j in range(10):
            lesions = sample_layout(label, model, np.random.default_rng(100 * k + j)).labels > 0
            lesion_depth.append(depth[lesions].mean())
            lesion_height.append(height[lesions].mean())
        lung_depth.append(depth[lung].mean())
        lung_height.append(height[lung].mean())
    assert np.mean(lesion_depth) < np.mean(lung_depth) - 0.05, (np.mean(lesion_depth), np.mean(lung_depth))
    assert np.mean(lesion_height) > np.mean(lung_height) + 0.05, (np.mean(lesion_height), np.mean(lung_height))


def _soft_lesion_slice(levels_inside: tuple[float, ...], levels_outside: tuple[float, ...], core: float):
    """128 px: flat lungs at 0.3 on [0, 1] and one square lesion whose rings rise to ``core`` above the lung."""
    label = np.zeros((128, 128), np.uint8)
    label[20:110, 10:60] = 1
    label[20:110, 68:118] = 1
    region = np.zeros_like(label, bool)
    region[50:70, 25:45] = True
    inside, outside = rings(region, 1.0)
    unit = np.where(label >= 1, 0.3, 0.7)
    unit[region] += core
    for k, level in enumerate(levels_inside, start=1):
        unit[region & (inside == k)] = 0.3 + level * core
    for k, level in enumerate(levels_outside, start=1):
        unit[(label == 1) & ~region & (outside == k)] = 0.3 + level * core
    label[region] = 2
    return (unit * 2 - 1).astype(np.float32), label, region


def test_learn_measures_the_edge_profile_and_add_draws_it():
    """A lesion whose border pixels sit at half its core, the next ring at 0.8, one ring outside at 0.2: ``learn``
    reads that profile back, and ``add`` draws it, with the region's mean offset equal to the class offset."""
    image, label, region = _soft_lesion_slice((0.5, 0.8), (0.2,), core=0.2)
    model = learn([image], [label], typed=False, slice_ids=["s"])
    assert model.edge == pytest.approx((0.5, 0.8, 1.0), abs=0.02) and model.halo == pytest.approx((0.2, 0.0), abs=0.02)
    assert model.profile() == (model.edge, model.halo)
    assert LesionModel.from_json(model.to_json()) == model

    flat = np.where(label >= 1, -0.4, 0.4).astype(np.float32)  # lung 0.3 on [0, 1], no lesion
    lung = np.where(label >= 1, 1, 0).astype(np.uint8)
    edited, union = add_lesions(flat, lung, np.where(region, 2, 0).astype(np.uint8), model)
    inside, outside = rings(region, 1.0)
    rise = (edited.astype(np.float64) + 1) / 2 - 0.3
    core = float(rise[region & (inside > 3)].mean())
    assert float(rise[region].mean()) == pytest.approx(model.look(2).offset, abs=0.005)
    assert float(rise[region & (inside == 1)].mean()) == pytest.approx(0.5 * core, abs=0.01)
    assert float(rise[region & (inside == 2)].mean()) == pytest.approx(0.8 * core, abs=0.01)
    assert float(rise[~region & (outside == 1)].mean()) == pytest.approx(0.2 * core, abs=0.01)
    assert np.array_equal(edited[outside >= 2], flat[outside >= 2])  # the measured halo ends after one ring
    assert np.array_equal(union >= 2, region)


def test_models_without_an_edge_profile_draw_the_prior():
    """A slice with too little lesion core for a profile, and a model file written before the profile existed,
    both fall back to the prior's (measured on ct-ma20-png)."""
    image, label, _ = _soft_lesion_slice((), (), core=0.2)
    label[label == 2] = 1
    label[60:62, 30:33] = 2  # 6 px: no core
    model = learn([image], [label], typed=False, slice_ids=["s"])
    assert model.edge is None and model.profile() == (model.prior.edge, model.prior.halo)
    old = model.to_json()
    for key in ("edge", "halo"):
        old.pop(key)
        old["prior"].pop(key)
    assert LesionModel.from_json(old).profile() == (Prior().edge, Prior().halo)


def test_a_layout_with_a_burden_draws_that_much_infection(phantom_prepared64):
    model = _model(typed=False)
    for k, (image, label) in enumerate(_slices(phantom_prepared64)):
        lung = int((label >= 1).sum())
        for share in (0.05, 0.2):
            target = share * lung
            lesions = sample_layout(label, model, np.random.default_rng(k), burden=target).labels
            assert np.all(label[lesions > 0] >= 1)
            assert abs(int((lesions > 0).sum()) - target) <= 0.1 * target + 4, (k, share, int((lesions > 0).sum()), target)
        assert not sample_layout(label, model, np.random.default_rng(k), burden=0).labels.any()
    # without a burden the layout is the one drawn before burdens existed: the same draws, the same lesions
    image, label = _slices(phantom_prepared64)[0]
    first, again = (sample_layout(label, model, np.random.default_rng(5)).labels for _ in range(2))
    assert np.array_equal(first, again)


def test_replace_with_the_same_burden_keeps_the_amount_of_infection_and_moves_it(phantom_prepared64):
    from radsynth.lesions.run import EditOptions, edit_one

    model = _model(typed=False)
    moved = 0
    for k, (image, label) in enumerate(_slices(phantom_prepared64)):
        infected = int((label >= 2).sum())
        if infected < 20:
            continue
        edited, new_label = edit_one(image, label, model, [], np.random.default_rng(k), EditOptions("replace", burden="same"))
        assert abs(int((new_label >= 2).sum()) - infected) <= 0.1 * infected + 4, (k, int((new_label >= 2).sum()), infected)
        moved += int(((new_label >= 2) & (label < 2)).sum()) > 0
        _, doubled = edit_one(image, label, model, [], np.random.default_rng(k), EditOptions("add", burden="same"))
        # add keeps the slice's lesions and draws as much again (new lesions may overlap the old: at most twice)
        assert 1.2 * infected < int((doubled >= 2).sum()) <= 2.2 * infected + 4, (k, int((doubled >= 2).sum()), infected)
    assert moved >= 2


def test_a_burden_applies_only_to_new_lesions_and_an_edit_must_be_known():
    from radsynth.errors import InputError
    from radsynth.lesions.run import EditOptions

    for mode, burden, words in (("paste", "same", "applies to --edit add and replace"), ("add", "most", "unknown burden"),
                                ("carve", "model", "unknown edit 'carve'")):
        with pytest.raises(InputError, match=words):
            EditOptions(mode, burden=burden)


def test_a_pleura_gap_keeps_new_lesions_off_the_lung_border(phantom_prepared64):
    from radsynth.lesions.run import EditOptions, edit_one

    model = _model()
    touching = 0
    for k, (image, label) in enumerate(_slices(phantom_prepared64)):
        depth = ndimage.distance_transform_edt(label >= 1)  # px from the lung's border (64 px slices: the gap x 0.5)
        plain = sample_layout(label, model, np.random.default_rng(k)).labels
        touching += int(((plain > 0) & (depth <= 1.5)).sum()) > 0  # peripheral lesions: without a gap they reach the border
        for mode in ("add", "replace"):
            edited, new_label = edit_one(image, label, model, [], np.random.default_rng(k), EditOptions(mode, pleura_gap=3.0))
            new = (new_label >= 2) & ((label < 2) if mode == "add" else True)
            assert np.all(depth[new] > 1.5), (k, mode, depth[new].min())
        # with a burden too (replace keeps the slice's amount of infection inside the smaller room)
        gapped = sample_layout(label, model, np.random.default_rng(k), burden=0.1 * (label >= 1).sum(), pleura_gap=3.0).labels
        assert np.all(depth[gapped > 0] > 1.5)
    assert touching >= 3


def test_a_pleura_gap_applies_only_to_new_lesions_and_must_be_a_distance():
    from radsynth.errors import InputError
    from radsynth.lesions.run import EditOptions

    for mode, gap, words in (("paste", 3.0, "applies to --edit add and replace"), ("remove", 3.0, "applies to --edit add and replace"),
                             ("add", -1.0, "must be a distance"), ("add", float("nan"), "must be a distance")):
        with pytest.raises(InputError, match=words):
            EditOptions(mode, pleura_gap=gap)
