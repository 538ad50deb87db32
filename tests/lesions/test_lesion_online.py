"""Online lesions (``evaluate segment --set lesions=RUN``): new lesions in training draws, reproducible, leak-free."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.evaluate.config import SegmentConfig
from radsynth.evaluate.segment import evaluate_segmentation
from radsynth.lesions.edit import DEFAULT_MARGIN
from radsynth.lesions.online import OnlineLesions
from radsynth.evaluate.protocols import lesion_patients
from radsynth.lesions.run import edit_set, run_hash, train_lesions, write_layouts
from radsynth.synth.export import SyntheticSlice, write_synthetic_set


def _far_from(region: np.ndarray, margin: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.distance_transform_edt(~region) > margin


def _infected_slice(prepared, split: str, skip: str = "") -> str:
    data = SliceSet(prepared, split=split)
    return next(r["id"] for i, r in enumerate(data.rows) if r["id"] != skip and int((data[i][1] >= 2).sum()) >= 10)


@pytest.fixture(scope="module")
def train_run(phantom_prepared64, tmp_path_factory):
    return train_lesions(phantom_prepared64, [_infected_slice(phantom_prepared64, "train")], tmp_path_factory.mktemp("online") / "run")


@pytest.fixture(scope="module")
def batch(phantom_prepared64):
    data = SliceSet(phantom_prepared64, split="train")
    images, labels = zip(*[(image, label) for image, label, _ in (data[i] for i in range(len(data)))])
    return torch.stack(images), torch.stack(labels)


def test_add_draws_new_lesions_inside_the_lung_and_keeps_everything_else(train_run, batch):
    images, labels = batch[0].clone(), batch[1].clone()
    online = OnlineLesions(train_run, "add", 1.0, typed=True, seed=0)
    edited, new_labels = online.apply(batch[0], batch[1], step=3)
    assert torch.equal(images, batch[0]) and torch.equal(labels, batch[1])  # the pool itself is not touched
    grew = 0
    for image, label, out, out_label in zip(images, labels, edited, new_labels):
        image, label, out, out_label = image[0].numpy(), label.numpy(), out[0].numpy(), out_label.numpy()
        lung = label >= 1
        assert np.array_equal(out_label >= 1, lung)  # the lung stays the lung, nothing outside it becomes lesion
        assert np.all(out_label[label >= 2] >= 2)  # add: the union with the image's own infection
        new = (out_label >= 2) & (label < 2)
        grew += int(new.sum() > 0)
        near = lung & ~_far_from(out_label >= 2, DEFAULT_MARGIN)  # what an edit may change: lung within the margin of lesion
        assert np.array_equal(out[~near], image[~near])
    assert grew >= len(images) - 1  # every image with lung got new lesions (one phantom slice may have little room)


def test_draws_are_a_function_of_seed_and_step_and_share(train_run, batch):
    images, labels = batch
    online = OnlineLesions(train_run, "replace", 1.0, typed=True, seed=0)
    first, again = online.apply(images, labels, step=5), online.apply(images, labels, step=5)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])  # resumable: the same step draws the same lesions
    other = online.apply(images, labels, step=6)
    assert not torch.equal(first[1], other[1])
    assert not torch.equal(first[1], OnlineLesions(train_run, "replace", 1.0, typed=True, seed=1).apply(images, labels, 5)[1])
    first_rows = online.apply(images, labels, step=5, positions=range(0, 3))  # a rank's share: its rows as a whole batch edits them
    assert torch.equal(first_rows[0][:3], first[0][:3]) and torch.equal(first_rows[0][3:], images[3:])
    half = OnlineLesions(train_run, "replace", 0.5, typed=True, seed=0)
    changed = sum(int((half.apply(images, labels, step)[0] != images).flatten(1).any(1).sum()) for step in range(10))
    assert 0.25 * 10 * len(images) <= changed <= 0.75 * 10 * len(images), changed  # about half of 120 draws (binomial sd 5.5)


def test_bad_settings_and_a_lesion_model_of_a_test_patient_are_refused(train_run, phantom_prepared64, tmp_path):
    with pytest.raises(InputError, match="add, replace"):
        OnlineLesions(train_run, "paste", 1.0, typed=True, seed=0)
    with pytest.raises(InputError, match=r"\(0, 1\]"):
        OnlineLesions(train_run, "add", 0.0, typed=True, seed=0)
    untyped = tmp_path / "untyped"
    shutil.copytree(train_run, untyped)
    record = json.loads((untyped / "run.json").read_text())
    record["model"]["typed"] = False
    (untyped / "run.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match="GGO and consolidation apart"):
        OnlineLesions(untyped, "add", 1.0, typed=True, seed=0)
    with pytest.raises(ValueError, match="lesion_share"):
        SegmentConfig(lesions=str(train_run), lesion_share=1.5)
    leaky = train_lesions(phantom_prepared64, [_infected_slice(phantom_prepared64, "test")], tmp_path / "leaky")
    config = SegmentConfig(size=32, epochs=1, batch_size=4, samples_per_epoch=4, lesions=str(leaky))
    with pytest.raises(InputError, match="measured on slices of test patient"):
        evaluate_segmentation("oc", [phantom_prepared64], tmp_path / "out", config, device="cpu")
    assert not (tmp_path / "out").exists()  # refused before anything was written
    edited = edit_set(leaky, phantom_prepared64, tmp_path / "edited", "add")  # the same lesions written as a set: refused too
    with pytest.raises(InputError, match="made with a lesion model measured on slices of test patient"):
        evaluate_segmentation(f"add:1.0:{edited}", [phantom_prepared64], tmp_path / "out2", SegmentConfig(size=32, epochs=1), device="cpu")
    layouts = write_layouts(phantom_prepared64, leaky, tmp_path / "layouts")  # layouts, and a set rendered from them, too
    source = SliceSet(layouts)
    rendered = write_synthetic_set(tmp_path / "rendered", [
        SyntheticSlice(image=image[0].numpy(), label=label.numpy().astype(np.uint8), patient=meta["patient"], split="train",
                       slice_index=0, condition_id=meta["id"], seed=0, diversifier="none")
        for image, label, meta in (source[i] for i in range(2))], "cosingan", "0" * 64, str(layouts), {})
    assert lesion_patients(SliceSet(rendered)) == lesion_patients(source) and lesion_patients(source)
    with pytest.raises(InputError, match="made with a lesion model measured on slices of test patient"):
        evaluate_segmentation(f"synth:{rendered}", [phantom_prepared64], tmp_path / "out3", SegmentConfig(size=32, epochs=1), device="cpu")


def test_evaluate_segment_trains_with_online_lesions_and_records_the_run(train_run, phantom_prepared64, tmp_path, cli, monkeypatch):
    slice_id = _infected_slice(phantom_prepared64, "train")
    run = tmp_path / "lesions"
    shutil.copytree(train_run, run)
    calls = []
    apply = OnlineLesions.apply

    def counted(self, images, labels, step, positions=None):
        calls.append(step)
        return apply(self, images, labels, step, positions)

    monkeypatch.setattr(OnlineLesions, "apply", counted)
    out = tmp_path / "seg"
    args = ("evaluate", "segment", "--train", f"sin:{slice_id}", "--test", phantom_prepared64, "--out", out, "--size", "32",
            "--epochs", "1", "--set", "batch_size=4", "--set", "samples_per_epoch=8", "--set", "unet_features=[4,8,8,16,16,4]",
            "--set", f"lesions={run}", "--set", "lesion_edit=add")
    result = cli(*args)
    assert result.code == 0, result.err
    assert calls == [0, 1]  # every training step draws its lesions (2 steps of 4)
    results = json.loads((out / "results.json").read_text())
    assert results["training_set"]["name"] == "Sin-TS + online lesions (add)"
    assert results["training_set"]["lesion_run"]["sha256"] == run_hash(run)
    assert results["config"]["lesions"] == str(run) and results["config"]["lesion_edit"] == "add"
    train_lesions(phantom_prepared64, [slice_id, _infected_slice(phantom_prepared64, "train", skip=slice_id)], run, force=True)
    resumed = cli(*args, "--resume")  # the same arguments, but the lesion run was learned again from other slices
    assert resumed.code == 2 and "different lesion_run" in resumed.err
