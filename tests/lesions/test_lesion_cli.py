"""radsynth train lesions / synth --edit / data layouts: sets that evaluation reads, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from radsynth.data.slices import SliceSet
from radsynth.evaluate.protocols import build_training_set, load_test_sets, parse_spec
from radsynth.errors import InputError


def _far_from(region: np.ndarray, margin: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.distance_transform_edt(~region) > margin


def _infected_train_slice(prepared) -> str:
    data = SliceSet(prepared, split="train")
    return next(r["id"] for i, r in enumerate(data.rows) if int((data[i][1] >= 2).sum()) >= 10)


@pytest.fixture(scope="module")
def lesion_run(phantom_prepared64, tmp_path_factory):
    from radsynth.cli import main

    out = tmp_path_factory.mktemp("lesions") / "run"
    assert main(["train", "lesions", "--data", str(phantom_prepared64), "--slice", _infected_train_slice(phantom_prepared64), "--out", str(out)]) == 0
    return out


def test_train_lesions_records_the_model_and_a_preview(lesion_run, phantom_prepared64):
    record = json.loads((lesion_run / "run.json").read_text())
    assert record["method"] == "lesions" and record["data"]["slice_ids"] == [_infected_train_slice(phantom_prepared64)]
    model = record["model"]
    assert model["typed"] is True and set(model["appearance"]) <= {"2", "3"} and model["appearance"]
    assert all(a["offset"] > 0 for a in model["appearance"].values())  # phantom infection is brighter than lung
    assert record["crops"] >= 1 and (lesion_run / "lesions.npz").exists() and (lesion_run / "preview.png").exists()
    assert record["provenance"]["seed"] == 0


@pytest.mark.parametrize("mode", ["add", "remove", "paste", "replace"])
def test_synth_edit_writes_a_set_that_keeps_patients_and_edits_only_lesions(cli, lesion_run, phantom_prepared64, tmp_path, mode):
    out = tmp_path / mode
    result = cli("synth", lesion_run, "--edit", mode, "--images", phantom_prepared64, "--out", out, "--n-per-condition", "2")
    assert result.code == 0, result.err
    edited, source = SliceSet(out), SliceSet(phantom_prepared64, split="train")
    by_id = {r["id"]: i for i, r in enumerate(source.rows)}
    assert len(edited) == 2 * len(source) and edited.info["edit"] == mode and (out / "preview.png").exists()
    changed = 0
    for i, row in enumerate(edited.rows):
        image, label, _ = edited[i]
        original, original_label, meta = source[by_id[row["condition_id"]]]
        assert row["patient"] == meta["patient"] and row["split"] == "train" and row["diversifier"] == mode
        assert np.array_equal((label >= 1).numpy(), (original_label >= 1).numpy())  # the lung stays the lung
        if mode == "remove":
            assert not (label >= 2).any()
        elif mode == "replace":  # new lesions only: the old ones are lung now, unless a new one covers them
            new = (label >= 2).numpy()
            assert not new.any() or not np.array_equal(new, (original_label >= 2).numpy())
            kept = ~new & ~(original_label >= 2).numpy() & _far_from(new | (original_label >= 2).numpy(), 3)
            assert np.array_equal(image[0].numpy()[kept], original[0].numpy()[kept])  # beyond the old and new lesions + margin: as it was
        else:
            assert ((label >= 2) | ~(original_label >= 2)).all()  # the union keeps every annotated lesion
        changed += int(not np.array_equal(image.numpy(), original.numpy()))
        assert np.array_equal(image[0][original_label == 0].numpy(), original[0][original_label == 0].numpy())  # outside the lung: as it was
    assert changed >= len(edited) // 2


def test_edits_of_test_patients_are_refused_for_training(cli, lesion_run, phantom_prepared64, tmp_path):
    out = tmp_path / "test-edits"
    assert cli("synth", lesion_run, "--edit", "add", "--images", phantom_prepared64, "--split", "test", "--out", out).code == 0
    test = load_test_sets([phantom_prepared64])
    with pytest.raises(InputError, match="test patient"):
        build_training_set(parse_spec(f"add:1.0:{out}"), phantom_prepared64, test, size=64)
    train_edits = tmp_path / "train-edits"
    assert cli("synth", lesion_run, "--edit", "add", "--images", phantom_prepared64, "--out", train_edits).code == 0
    pool = build_training_set(parse_spec(f"add:1.0:{train_edits}"), phantom_prepared64, test, size=64)
    assert pool.synthetic_images == pool.real_images == pool.reference_size


def test_data_layouts_keep_the_lung_and_draw_new_infection(cli, lesion_run, phantom_prepared64, tmp_path):
    out = tmp_path / "layouts"
    result = cli("data", "layouts", "--lungs", phantom_prepared64, "--model", lesion_run, "--out", out, "--n-per-lung", "3")
    assert result.code == 0, result.err
    layouts, source = SliceSet(out), SliceSet(phantom_prepared64, split="train")
    by_id = {r["id"]: i for i, r in enumerate(source.rows)}
    assert len(layouts) == 3 * len(source) and layouts.info["layouts"] is True
    labels = []
    for i, row in enumerate(layouts.rows):
        _, label, _ = layouts[i]
        _, original_label, _ = source[by_id[row["condition_id"]]]
        assert np.array_equal((label >= 1).numpy(), (original_label >= 1).numpy())
        labels.append(label.numpy())
    assert sum(bool((lab >= 2).any()) for lab in labels) >= len(labels) - 1
    same_slice = [labels[k] for k in range(3)]  # three layouts of one lung differ
    assert not np.array_equal(same_slice[0], same_slice[1]) and not np.array_equal(same_slice[1], same_slice[2])


def test_data_layouts_with_a_pleura_gap_keep_lesions_off_the_border_and_record_it(cli, lesion_run, phantom_prepared64, tmp_path):
    from scipy import ndimage

    out = tmp_path / "gap"
    result = cli("data", "layouts", "--lungs", phantom_prepared64, "--model", lesion_run, "--out", out, "--pleura-gap", "4")
    assert result.code == 0, result.err
    layouts = SliceSet(out)
    assert layouts.info["pleura_gap"] == 4.0 and layouts.info["config"]["pleura_gap"] == 4.0
    drawn = 0
    for i in range(len(layouts)):
        label = layouts[i][1].numpy()
        depth = ndimage.distance_transform_edt(label >= 1)
        assert np.all(depth[label >= 2] > 2.0)  # 4 px at 128 px = 2 px on these 64 px slices
        drawn += bool((label >= 2).any())
    assert drawn >= len(layouts) // 2


def test_bad_input_is_named(cli, lesion_run, phantom_prepared64, tmp_path):
    healthy = SliceSet(phantom_prepared64, split="train")
    no_infection = next((r["id"] for i, r in enumerate(healthy.rows) if not (healthy[i][1] >= 2).any() and (healthy[i][1] >= 1).any()), None)
    if no_infection is not None:
        result = cli("train", "lesions", "--data", phantom_prepared64, "--slice", no_infection, "--out", tmp_path / "x")
        assert result.code == 2 and "hold no infection label" in result.err
    result = cli("train", "lesions", "--data", phantom_prepared64, "--out", tmp_path / "y")
    assert result.code == 2 and "--slice" in result.err
    result = cli("synth", lesion_run, "--images", phantom_prepared64, "--out", tmp_path / "z")
    assert result.code == 2 and "--edit add|remove|paste" in result.err
    result = cli("synth", lesion_run, "--edit", "add", "--images", phantom_prepared64, "--out", tmp_path / "z", "--diversify", "rc")
    assert result.code == 2 and "--diversify" in result.err
    fake = tmp_path / "pix"
    fake.mkdir()
    (fake / "run.json").write_text(json.dumps({"method": "pix2pix"}))
    result = cli("synth", fake, "--edit", "add", "--images", phantom_prepared64, "--out", tmp_path / "w")
    assert result.code == 2 and "only applies to lesion runs" in result.err
    result = cli("synth", fake, "--conditions", phantom_prepared64, "--burden", "same", "--out", tmp_path / "w")
    assert result.code == 2 and "--burden" in result.err and "only applies to lesion runs" in result.err
    result = cli("synth", lesion_run, "--edit", "remove", "--burden", "same", "--images", phantom_prepared64, "--out", tmp_path / "z")
    assert result.code == 2 and "applies to --edit add and replace" in result.err
    result = cli("synth", fake, "--conditions", phantom_prepared64, "--pleura-gap", "3", "--out", tmp_path / "w")
    assert result.code == 2 and "--pleura-gap" in result.err and "only applies to lesion runs" in result.err
    result = cli("synth", lesion_run, "--edit", "paste", "--pleura-gap", "3", "--images", phantom_prepared64, "--out", tmp_path / "z")
    assert result.code == 2 and "--pleura-gap" in result.err and "applies to --edit add and replace" in result.err
    result = cli("data", "layouts", "--lungs", phantom_prepared64, "--model", lesion_run, "--pleura-gap", "-2", "--out", tmp_path / "z")
    assert result.code == 2 and "--pleura-gap" in result.err and "must be a distance" in result.err
    assert not (tmp_path / "z").exists() and not (tmp_path / "w").exists()
