"""Classification pools on phantom X-rays: real / add / synthetic-only sets, skew over-sampling,
refusal of test-patient images, ImageNet weight files that do not fit."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from radsynth.errors import InputError
from radsynth.evaluate.classify_data import build_class_pool, load_class_test_set, parse_classify_spec
from radsynth.nets.classifiers import build_classifier, load_imagenet

CLASSES = ("Normal", "COVID-19")


def fake_synthetic(prepared: Path, out: Path, split: str, count: int) -> Path:
    """A 'synthetic' COVID-19 set made of ``count`` Normal images of ``split`` (patients kept, as `radsynth synth` does)."""
    shutil.copytree(prepared, out)
    info = json.loads((out / "dataset.json").read_text())
    (out / "dataset.json").write_text(json.dumps({**info, "synthetic": True}))
    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    chosen = [r for r in rows if r["split"] == split and r["klass"] == "Normal"][:count]
    for r in chosen:
        r["klass"], r["split"] = "COVID-19", "train"
    with open(out / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(chosen)
    return out


def test_real_add_and_synthetic_only_pools(cxr_cls_set, tmp_path):
    test = load_class_test_set(cxr_cls_set, CLASSES, "test", 32)
    assert test.counts() == {"Normal": 6, "COVID-19": 6} and test.images.shape == (12, 1, 32, 32)
    real = build_class_pool(parse_classify_spec("real"), cxr_cls_set, test, 32)
    assert real.counts() == {"Normal": 21, "COVID-19": 21} and real.skew == pytest.approx(1.0)
    synth = fake_synthetic(cxr_cls_set, tmp_path / "G", "train", 15)
    added = build_class_pool(parse_classify_spec(f"add:{synth}"), cxr_cls_set, test, 32)
    assert added.counts() == {"Normal": 21, "COVID-19": 36}
    assert (added.real_images, added.synthetic_images) == (42, 15)
    assert added.skew == pytest.approx(21 / 36)
    # skew target 0.75: ceil(21 / 0.75) - 21 = 7 synthetic positives
    capped = build_class_pool(parse_classify_spec(f"add:{synth}"), cxr_cls_set, test, 32, skew=0.75)
    assert capped.synthetic_images == 7 and capped.skew == pytest.approx(0.75)
    only = build_class_pool(parse_classify_spec(f"synth:{synth}"), cxr_cls_set, test, 32)
    # Zunair's "only synthetic": COVID-19 from the synthetic set only, Normal stays real
    assert only.counts() == {"Normal": 21, "COVID-19": 15} and only.real_images == 21
    assert all(r["source"] == "synth" for r, t in zip(only.rows, only.targets.tolist()) if t == 1)


def test_positive_copies_duplicate_only_the_real_positive_class(cxr_cls_set, tmp_path):
    """Liang III-C's "original imbalanced" set: each real COVID-19 image used 8 times, the other classes once."""
    test = load_class_test_set(cxr_cls_set, CLASSES, "test", 32)
    dup = build_class_pool(parse_classify_spec("real"), cxr_cls_set, test, 32, positive_copies=8)
    assert dup.counts() == {"Normal": 21, "COVID-19": 8 * 21} and dup.real_images == 21 + 8 * 21
    positives = [r["id"] for r, t in zip(dup.rows, dup.targets.tolist()) if t == 1]
    assert len(set(positives)) == 21 and all(positives.count(i) == 8 for i in set(positives))
    assert "8 times" in dup.notes[0]
    synth = fake_synthetic(cxr_cls_set, tmp_path / "G", "train", 3)
    with pytest.raises(InputError, match="positive_copies"):
        build_class_pool(parse_classify_spec(f"add:{synth}"), cxr_cls_set, test, 32, positive_copies=8)


def test_synthetic_images_of_test_patients_are_refused(cxr_cls_set, tmp_path):
    test = load_class_test_set(cxr_cls_set, CLASSES, "test", 32)
    leaky = fake_synthetic(cxr_cls_set, tmp_path / "leaky", "test", 3)
    with pytest.raises(InputError, match="test patient"):
        build_class_pool(parse_classify_spec(f"add:{leaky}"), cxr_cls_set, test, 32)
    with pytest.raises(InputError, match="synthetic set"):
        load_class_test_set(leaky, CLASSES, "train")


def test_imagenet_weights_load_all_or_nothing(tmp_path):
    net = build_classifier("resnet18", 3, 1)
    # a torchvision-layout file: the body keys as they are plus a 1000-class head that is ignored
    good = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in net.body.state_dict().items()}
    good.update({"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)})
    torch.save(good, tmp_path / "r18.pth")
    summary = load_imagenet(net, tmp_path / "r18.pth")
    assert summary["ignored"] == 2 and float(net.body.conv1.weight.detach().mean()) == 0.5
    # a DenseNet file in torchvision's layout (no '.layers.') maps onto MONAI's DenseNet121
    dense = build_classifier("densenet121", 3, 1)
    tv = {k.replace(".layers.", "."): v for k, v in dense.body.state_dict().items()}
    torch.save(tv, tmp_path / "d121.pth")
    assert load_imagenet(dense, tmp_path / "d121.pth")["tensors"] == len(dense.body.state_dict())
    # a ResNet50 file does not fit ResNet18: refused, and nothing is loaded
    other = build_classifier("resnet50", 3, 1)
    torch.save(other.body.state_dict(), tmp_path / "r50.pth")
    fresh = build_classifier("resnet18", 3, 1)
    before = fresh.body.conv1.weight.clone()
    with pytest.raises(InputError, match="nothing was loaded"):
        load_imagenet(fresh, tmp_path / "r50.pth")
    assert torch.equal(fresh.body.conv1.weight, before)
