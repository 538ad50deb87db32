"""Training-set protocols: SPEC parsing, equal samples seen, leakage refusals, sweep sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.evaluate.config import SegmentConfig
from radsynth.evaluate.protocols import build_training_set, epoch_order, grouped_epoch_order, load_test_sets, parse_spec
from radsynth.evaluate.train import SegmenterMethod
from radsynth.evaluate.segment import evaluate_segmentation
from radsynth.synth.export import SyntheticSlice, write_synthetic_set


def _fake_synthetic(prepared: Path, out: Path, split: str, copies: int = 1, source: Path | None = None) -> Path:
    """A synthetic set made from the ``split`` slices of ``prepared`` (images reused as 'generated'); ``source``:
    the condition set its manifest names, ``prepared`` unless given."""
    dataset = SliceSet(prepared, split=split)
    items = []
    for copy in range(copies):
        for image, label, meta in dataset:
            items.append(
                SyntheticSlice(
                    image=image[0].numpy(), label=label.numpy().astype(np.uint8), patient=meta["patient"], split=meta["split"],
                    slice_index=int(meta["slice_index"]), condition_id=meta["id"], seed=copy, diversifier="none",
                )
            )
    return write_synthetic_set(out, items, "fake", "0" * 64, str(Path(source or prepared).resolve()), {"seed": 0})


@pytest.mark.parametrize(
    "text, kind, ids, fraction",
    [("oc", "oc", (), 0.0), ("sin:000003", "sin", ("000003",), 0.0), ("two:a,b", "two", ("a", "b"), 0.0),
     ("sin:auto", "sin", ("auto",), 0.0), ("replace:0.3:/x/y", "replace", (), 0.3), ("add:40%:/x/y", "add", (), 0.4)],
)
def test_parse_spec(text, kind, ids, fraction):
    spec = parse_spec(text)
    assert (spec.kind, spec.slice_ids, spec.fraction) == (kind, ids, pytest.approx(fraction))


@pytest.mark.parametrize("text", ["ocx", "oc:1", "sin:", "sin:a,b", "two:a", "two:a,a", "replace:0.3", "replace:1.5:/x", "add:-0.1:/x", "replace:abc:/x"])
def test_parse_spec_refuses(text):
    with pytest.raises(InputError):
        parse_spec(text)


def test_epoch_order_repeats_a_small_pool_evenly():
    order = epoch_order(3, 10, seed=0, epoch=0)
    assert len(order) == 10 and sorted(np.bincount(order).tolist()) == [3, 3, 4]
    assert np.array_equal(order, epoch_order(3, 10, seed=0, epoch=0))
    assert not np.array_equal(order, epoch_order(3, 10, seed=0, epoch=1))
    assert sorted(epoch_order(10, 10, seed=0, epoch=0).tolist()) == list(range(10))  # OC-TS: each slice once per epoch


def test_every_protocol_but_add_sees_the_same_number_of_samples(phantom_prepared, tmp_path):
    test = load_test_sets([phantom_prepared])
    synth = _fake_synthetic(phantom_prepared, tmp_path / "synth", "train", copies=3)
    config = SegmentConfig(size=32, epochs=3, batch_size=4, unet_features=(4, 4, 8, 8, 8, 4))
    seen = {}
    for spec in ("oc", "sin:auto", "two:000012,000013", f"synth:{synth}", f"replace:0.5:{synth}", f"add:0.5:{synth}"):
        pool = build_training_set(parse_spec(spec), phantom_prepared, test, 32)
        method = SegmenterMethod(config, pool, typed=False, device=torch.device("cpu"))
        seen[spec] = (method.total_steps, sum(len(method.batch_indices(s)) for s in range(method.total_steps)))
    # OC-TS has 6 slices: 3 epochs x 6 samples = 18 samples in 3 x ceil(6 / 4) = 6 steps, whatever the pool ...
    add = seen.pop(f"add:0.5:{synth}")
    assert set(seen.values()) == {(6, 18)}, seen
    # ... but add:0.5 (Jiang IV-B-2: the larger set, the same epochs): 3 epochs x 9 samples in 3 x ceil(9 / 4) steps
    assert add == (9, 27)


def test_grouped_order_draws_an_add_pool_as_oc_ts(phantom_prepared, tmp_path):
    """epoch_order=grouped: the same steps and the same real-slice order as OC-TS, each slice shown as itself or a copy."""
    test = load_test_sets([phantom_prepared])
    copy = _fake_synthetic(phantom_prepared, tmp_path / "copy", "train", copies=1)  # the real images, as 'synthetic' copies
    config = SegmentConfig(size=32, epochs=3, batch_size=4, unet_features=(4, 4, 8, 8, 8, 4), lr=1e-2)
    grouped_config = SegmentConfig(**{**vars(config), "epoch_order": "grouped"})
    oc = SegmenterMethod(config, build_training_set(parse_spec("oc"), phantom_prepared, test, 32), False, torch.device("cpu"))
    pool = build_training_set(parse_spec(f"add:1.0:{copy}"), phantom_prepared, test, 32)
    assert pool.groups.tolist() == list(range(6)) * 2  # each copy joins the real slice it names as its condition
    grouped = SegmenterMethod(grouped_config, pool, False, torch.device("cpu"))
    assert (grouped.samples_per_epoch, grouped.total_steps) == (6, 6)  # OC-TS's, where the pool order gives add:1.0 12 a epoch
    members = []
    for step in range(oc.total_steps):
        real, mixed = oc.batch_indices(step), grouped.batch_indices(step)
        assert np.array_equal(pool.groups[mixed], real)  # the same slices in the same order ...
        members += mixed.tolist()
        oc.train_step(step, torch.Generator().manual_seed(step))
        grouped.train_step(step, torch.Generator().manual_seed(step))
    assert 0 < np.mean(np.asarray(members) >= 6) < 1  # ... each shown as itself or as its copy
    for a, b in zip(oc.net.parameters(), grouped.net.parameters()):  # identical copies: the very same training
        assert torch.equal(a, b)


def test_grouped_order_picks_members_evenly():
    groups = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])  # 3 real slices, 2 copies each
    picks = np.concatenate([grouped_epoch_order(groups, 3, seed=1, epoch=e) for e in range(600)])
    assert sorted(np.bincount(groups[picks]).tolist()) == [600, 600, 600]  # every slice exactly once an epoch
    share = np.bincount(picks, minlength=9) / len(picks)
    assert np.allclose(share, 1 / 9, atol=0.02)  # each member a third of its slice's turns
    assert np.array_equal(grouped_epoch_order(groups, 3, 1, 7), grouped_epoch_order(groups, 3, 1, 7))


def test_grouped_order_with_unequal_groups_follows_the_real_order():
    """Slices with 0, 1 or 3 copies (add:P < 1, or several edits of a slice): the drawn slices are exactly
    epoch_order over the slices, also when an epoch is not a whole number of passes, and each member gets
    1 / (its group's size) of its slice's turns."""
    groups = np.array([0, 1, 2, 0, 0, 0, 2])  # slice 0: itself + 3 copies, slice 1: alone, slice 2: itself + 1
    for epoch in range(50):
        picks = grouped_epoch_order(groups, 7, seed=3, epoch=epoch)
        assert np.array_equal(groups[picks], epoch_order(3, 7, seed=3, epoch=epoch))
    picks = np.concatenate([grouped_epoch_order(groups, 3, seed=3, epoch=e) for e in range(2000)])
    share = np.bincount(picks, minlength=7) / np.bincount(groups[picks])[groups]
    assert np.allclose(share, 1 / np.bincount(groups)[groups], atol=0.04)
    with pytest.raises(ValueError, match="no gap"):
        grouped_epoch_order(np.array([0, 2, 2]), 3, seed=0, epoch=0)


def test_grouped_order_is_refused_where_there_are_no_groups(phantom_prepared, tmp_path):
    test = load_test_sets([phantom_prepared])
    grouped = SegmentConfig(size=32, epochs=1, batch_size=4, unet_features=(4, 4, 8, 8, 8, 4), epoch_order="grouped")
    with pytest.raises(InputError, match="not add:P"):
        SegmenterMethod(grouped, build_training_set(parse_spec("oc"), phantom_prepared, test, 32), False, torch.device("cpu"))
    other = _fake_synthetic(phantom_prepared, tmp_path / "other", "train", source=tmp_path / "elsewhere")  # another set's slices
    pool = build_training_set(parse_spec(f"add:0.5:{other}"), phantom_prepared, test, 32)
    assert pool.groups is None
    assert pool.groups_problem.startswith("synthetic image") and "elsewhere" in pool.groups_problem
    with pytest.raises(InputError, match="name its real training slice.*elsewhere"):
        SegmenterMethod(grouped, pool, False, torch.device("cpu"))
    with pytest.raises(InputError, match="not add:P"):  # refused before the output folder is made
        evaluate_segmentation("oc", [phantom_prepared], tmp_path / "seg", grouped)
    assert not (tmp_path / "seg").exists()
    with pytest.raises(ValueError, match="epoch_order"):
        SegmentConfig(epoch_order="stratified")


def test_pool_sizes(phantom_prepared, tmp_path):
    test = load_test_sets([phantom_prepared])
    synth = _fake_synthetic(phantom_prepared, tmp_path / "synth", "train", copies=2)
    oc = build_training_set(parse_spec("oc"), phantom_prepared, test, 32)
    assert (len(oc.ids), oc.real_images, oc.synthetic_images, oc.reference_size) == (6, 6, 0, 6)
    assert oc.images.shape == (6, 1, 32, 32) and oc.labels.dtype == torch.int64
    assert oc.name == "OC-TS" and oc.infection_typed and oc.has_lung
    replace = build_training_set(parse_spec(f"replace:0.5:{synth}"), phantom_prepared, test, 32)
    assert (replace.real_images, replace.synthetic_images) == (3, 3)  # total stays 6
    add = build_training_set(parse_spec(f"add:0.5:{synth}"), phantom_prepared, test, 32)
    assert (add.real_images, add.synthetic_images) == (6, 3)
    resized = build_training_set(parse_spec("sin:auto"), phantom_prepared, test, 64)
    assert resized.images.shape == (1, 1, 64, 64) and resized.real_images == 1
    label = resized.labels[0]
    assert (label >= 2).any() and (label == 1).any()  # auto picks a slice with lung and infection


def test_replace_needs_enough_synthetic_images(phantom_prepared, tmp_path):
    test = load_test_sets([phantom_prepared])
    synth = _fake_synthetic(phantom_prepared, tmp_path / "synth", "train", copies=1)  # 6 images
    everything = build_training_set(parse_spec(f"replace:1.0:{synth}"), phantom_prepared, test, 32)  # 6 needed, 6 there
    assert (everything.real_images, everything.synthetic_images) == (0, 6)
    with pytest.raises(InputError, match="needs 9 synthetic images but has 6"):
        build_training_set(parse_spec(f"add:1.5:{synth}"), phantom_prepared, test, 32)


def test_synthetic_images_of_test_patients_are_refused(phantom_prepared, tmp_path):
    test = load_test_sets([phantom_prepared])
    leaky = _fake_synthetic(phantom_prepared, tmp_path / "leaky", "test")
    for spec in (f"synth:{leaky}", f"replace:0.3:{leaky}", f"add:0.3:{leaky}"):
        with pytest.raises(InputError, match="test patient") as err:
            build_training_set(parse_spec(spec), phantom_prepared, test, 32)
        assert "--split train" in err.value.problem


def test_test_sets_must_be_real_and_sin_ids_must_be_training_slices(phantom_prepared, tmp_path):
    synth = _fake_synthetic(phantom_prepared, tmp_path / "synth", "train")
    with pytest.raises(InputError, match="REAL"):
        load_test_sets([synth], split="train")
    test = load_test_sets([phantom_prepared])
    test_id = SliceSet(phantom_prepared, split="test").rows[0]["id"]
    with pytest.raises(InputError, match="train split"):
        build_training_set(parse_spec(f"sin:{test_id}"), phantom_prepared, test, 32)
