"""Translator data: train split only (test patients are never read), under-sampling, batch order."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch

from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.synth.domains import epoch_batch, load_domains


def _rewrite_manifest(src: Path, dst: Path, edit) -> Path:
    """Copy a prepared set (images shared by copying) and rewrite its manifest rows with ``edit(rows) -> rows``."""
    shutil.copytree(src, dst)
    with open(dst / "manifest.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    with open(dst / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(edit(rows))
    return dst


def test_only_train_images_are_read(cxr_prepared, monkeypatch):
    decoded: list[int] = []
    original = SliceSet._decode

    def spy(self, index):
        decoded.append(index)
        return original(self, index)

    monkeypatch.setattr(SliceSet, "_decode", spy)
    data = load_domains(cxr_prepared, "Normal", "COVID-19", 32)
    rows = SliceSet(cxr_prepared).rows
    assert decoded and all(rows[i]["split"] == "train" for i in decoded)
    assert {rows[i]["klass"] for i in decoded} == {"Normal", "COVID-19"}  # Pneumonia is never read either
    held_out = {r["patient"] for r in rows if r["split"] != "train"}
    assert len(held_out) == 18 and data.held_out_patients == 18  # 6 val/test patients per class
    assert not set(data.patients) & held_out
    assert (len(data.a.ids), len(data.b.ids)) == (14, 14)
    assert data.a.images.shape == (14, 1, 32, 32) and data.a.images.min() >= -1 and data.a.images.max() <= 1


def test_resized_to_model_size_when_prepared_at_another(cxr_prepared):
    data = load_domains(cxr_prepared, "Normal", "COVID-19", 64)
    assert data.a.images.shape == (14, 1, 64, 64)


def test_patient_in_train_and_test_is_refused(cxr_prepared, tmp_path):
    def leak(rows):
        train_patient = next(r["patient"] for r in rows if r["split"] == "train")
        next(r for r in rows if r["split"] == "test")["patient"] = train_patient
        return rows

    broken = _rewrite_manifest(cxr_prepared, tmp_path / "leaky", leak)
    with pytest.raises(InputError, match="train split and in val/test"):
        load_domains(broken, "Normal", "COVID-19", 32)


def test_no_train_split_or_missing_class_is_refused(cxr_prepared, tmp_path):
    no_train = _rewrite_manifest(cxr_prepared, tmp_path / "notrain", lambda rows: [r for r in rows if r["split"] != "train"])
    with pytest.raises(InputError, match="no 'train' split"):
        load_domains(no_train, "Normal", "COVID-19", 32)
    with pytest.raises(InputError, match="no train images of class 'Viral'.*COVID-19, Normal, Pneumonia"):
        load_domains(cxr_prepared, "Viral", "COVID-19", 32)


def test_raw_class_folders_are_refused_with_the_fix(cxr_raw):
    with pytest.raises(InputError, match="radsynth data prepare"):
        load_domains(cxr_raw, "Normal", "COVID-19", 32)


def test_undersampling_the_majority(cxr_prepared, tmp_path):
    def drop_covid(rows):
        covid = [r for r in rows if r["klass"] == "COVID-19" and r["split"] == "train"][:5]
        return [r for r in rows if r not in covid]

    skewed = _rewrite_manifest(cxr_prepared, tmp_path / "skewed", drop_covid)  # train: 14 Normal, 9 COVID-19
    kept = load_domains(skewed, "Normal", "COVID-19", 32, balance="none")
    assert (len(kept.a.ids), len(kept.b.ids)) == (14, 9)
    balanced = load_domains(skewed, "Normal", "COVID-19", 32, balance="undersample", seed=0)
    assert (len(balanced.a.ids), len(balanced.b.ids)) == (9, 9)
    assert set(balanced.a.ids) < set(kept.a.ids) and balanced.b.ids == kept.b.ids
    assert balanced.describe()["A"]["train_images"] == 14 and "under-sampled 'Normal' from 14 to 9" in balanced.notes[0]
    assert load_domains(skewed, "Normal", "COVID-19", 32, balance="undersample", seed=0).a.ids == balanced.a.ids
    assert load_domains(skewed, "Normal", "COVID-19", 32, balance="undersample", seed=5).a.ids != balanced.a.ids


def test_epoch_batches_cover_every_image_once_per_epoch():
    n, batch = 10, 4  # 3 batches per epoch: 4, 4, 2
    epoch0 = [epoch_batch(n, batch, s, seed=1) for s in range(3)]
    assert [len(b) for b in epoch0] == [4, 4, 2]
    assert sorted(torch.cat(epoch0).tolist()) == list(range(n))
    epoch1 = torch.cat([epoch_batch(n, batch, s, seed=1) for s in range(3, 6)])
    assert sorted(epoch1.tolist()) == list(range(n)) and not torch.equal(epoch1, torch.cat(epoch0))
    assert torch.equal(epoch_batch(n, batch, 4, seed=1), epoch_batch(n, batch, 4, seed=1))
