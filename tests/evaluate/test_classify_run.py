"""``radsynth evaluate classify`` end to end on paired phantom X-rays (CPU, one thread): ResNet18
accuracy, metrics consistent with the predictions, figures written, Grad-CAM saliency on the lesion."""

from __future__ import annotations

import json
import time

import pytest
import torch
from safetensors.torch import load_file

from radsynth.cli import main
from radsynth.data.slices import SliceSet
from radsynth.evaluate.classify_config import ClassifyConfig
from radsynth.evaluate.classify_figures import gradcam_maps
from radsynth.evaluate.saliency_check import localisation_scores
from radsynth.evaluate.classify_metrics import confusion_matrix
from radsynth.nets.classifiers import build_classifier, gradcam_layer

CLS_SIZE = 64  # conftest.CLS_SIZE
EPOCHS = 30  # 30 x ceil(42 / 16) = 90 steps of batch 16 at 64 px
ACCURACY = 0.9  # stated: at least 11 of the 12 test images


@pytest.fixture(scope="module")
def run(cxr_cls_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("clsrun") / "run"
    started = time.perf_counter()
    code = main([
        "evaluate", "classify", "--train", "real", "--test", str(cxr_cls_set), "--model", "resnet18", "--preset", "quick",
        "--size", str(CLS_SIZE), "--epochs", str(EPOCHS), "--classes", "Normal,COVID-19", "--set", "augment=none",
        "--set", "gradcam_examples=2", "--out", str(out), "--device", "cpu",
    ])
    assert code == 0
    return out, time.perf_counter() - started


def test_resnet18_learns_phantom_classes_in_under_a_minute(run):
    out, seconds = run
    results = json.loads((out / "results.json").read_text())
    # 60 s is the budget on a quiet machine (measured 8 s there); x2 for the shared 2-core test machine
    assert results["timing"]["train_s"] < 120, results["timing"]
    assert results["metrics"]["pooled"]["accuracy"] >= ACCURACY, results["metrics"]["confusion_matrix"]
    assert results["initialisation"]["kind"] == "from scratch"
    assert results["training_set"]["skew"] == pytest.approx(1.0) and results["training_set"]["steps"] == 90
    # every reported number follows from the per-image predictions
    p = results["predictions"]
    cm = confusion_matrix(p["targets"], p["predicted"], 2)
    assert results["metrics"]["confusion_matrix"] == cm.tolist()
    tp, fn, fp, tn = cm[1, 1], cm[1, 0], cm[0, 1], cm[0, 0]
    covid = results["metrics"]["pooled"]["per_class"]["COVID-19"]
    assert (covid["tp"], covid["fn"], covid["fp"], covid["tn"]) == (tp, fn, fp, tn)
    assert covid["sensitivity"] == pytest.approx(tp / (tp + fn)) and covid["specificity"] == pytest.approx(tn / (tn + fp))
    assert p["predicted"] == [int(q[1] >= 0.5) for q in p["probabilities"]]
    for name in ("confidence", "gradcam_correct", "gradcam_wrong", "occlusion_correct", "occlusion_wrong", "umap"):
        png = out / results["figures"][name]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "results.md").read_text()
    assert "SEN (%)" in table and "Skew" in table and "F1 score" in table


def test_output_is_not_replaced_without_force(run, cxr_cls_set, capsys):
    out, _ = run
    assert main(["evaluate", "classify", "--train", "real", "--test", str(cxr_cls_set), "--out", str(out)]) != 0
    assert "--force" in capsys.readouterr().err
    assert main(["evaluate", "table", str(out), str(out / "results.json")]) == 0
    table = capsys.readouterr().out
    assert table.count("| Real | ResNet18 | COVID-19 |") == 2 and "Sensitivity | Specificity | Accuracy" in table


def test_gradcam_layer_is_the_deepest_with_an_8_by_8_map():
    resnet, vgg, dense = (build_classifier(name, 3, 1) for name in ("resnet18", "vgg16", "densenet121"))
    assert [gradcam_layer(resnet, s) for s in (32, 64, 128, 256, 512)] == ["body.layer1", "body.layer2", "body.layer3", "body.layer4", "body.layer4"]
    assert gradcam_layer(vgg, 128) == "body.29" and gradcam_layer(vgg, 64) == "body.22"
    assert gradcam_layer(dense, 224) == "body.denseblock3" and gradcam_layer(dense, 256) == "body.relu5"
    image = torch.zeros(1, 1, 64, 64)
    assert gradcam_maps(resnet, image, ClassifyConfig(size=64), torch.tensor([1])).shape == (1, 64, 64)


def test_aligned_upsampler_is_bilinear_when_cells_sit_at_block_centres_and_resnet_cells_do_not():
    from radsynth.evaluate.classify_figures import _WithInput, aligned_upsampler, cell_centres

    maps = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    naive = torch.nn.functional.interpolate(maps, size=(64, 64), mode="bilinear", align_corners=False)
    assert torch.allclose(aligned_upsampler(3.5, 3.5)((64, 64))(maps), naive, atol=1e-5)  # offset (stride - 1) / 2
    shifted = aligned_upsampler(0.0, 0.0)((64, 64))(maps)
    assert torch.allclose(shifted[:, :, ::8, ::8], maps, atol=1e-5)  # cell i exactly at pixel 8 i
    # ResNet's stride-2 convs with "same" padding centre layer2's cells on pixel 8 i, not 8 i + 3.5
    row, col, n = cell_centres(_WithInput(build_classifier("resnet18", 3, 1), ClassifyConfig(size=64)), "net.body.layer2", 64)
    assert n == 8 and abs(row) < 1.0 and abs(col) < 1.0


def test_gradcam_saliency_concentrates_on_the_lesion(cxr_pneumonia_set, cls_lesion, tmp_path):
    """Paired phantoms, Normal vs Pneumonia: the focal opacity (about 6 % of the image, usually one
    lung) is the only difference between the classes, so it is the discriminative region. Grad-CAM at
    the default layer (layer2, an 8 x 8 map at 64 px) must put at least 2 x the region's area share of
    its saliency mass inside it, averaged over the correctly classified Pneumonia test images (a map
    with no positive evidence counts as 0). Measured with one torch thread (as under make test): 0.18 of the
    mass on 0.06 of the area (3.0 x); 0.12 before the cells were placed at their receptive-field centres.
    Occlusion sensitivity (8 px dark squares) must put MOST of its map there: 0.56. The decision rests on
    the lesion alone (the Normal twin's pixels put into the lesion turn the logit to the twin's), so
    Grad-CAM's spread is the method's (a channel-weighted 8 x 8 activation map), not the classifier's."""
    out = tmp_path / "run"
    assert main([
        "evaluate", "classify", "--train", "real", "--test", str(cxr_pneumonia_set), "--model", "resnet18", "--preset", "quick",
        "--size", str(CLS_SIZE), "--epochs", str(EPOCHS), "--classes", "Normal,Pneumonia", "--set", "augment=none",
        "--no-figures", "--out", str(out), "--device", "cpu",
    ]) == 0
    net = build_classifier("resnet18", 3, 1)
    net.load_state_dict(load_file(str(out / "classifier.safetensors")))
    test = SliceSet(cxr_pneumonia_set, split="test")
    results = json.loads((out / "results.json").read_text())
    predicted = dict(zip(results["predictions"]["ids"], results["predictions"]["predicted"]))
    chosen = [i for i, row in enumerate(test.rows) if row["klass"] == "Pneumonia" and predicted[row["id"]] == 1]
    assert len(chosen) >= 4
    images = torch.stack([test[i][0] for i in chosen])
    lesions = torch.stack([torch.from_numpy(cls_lesion(test.rows[i], "Pneumonia")) for i in chosen])
    scores = localisation_scores(net, images, lesions, 1, ClassifyConfig(size=CLS_SIZE))
    gradcam, occlusion, area = scores["gradcam"], scores["occlusion"], scores["lesion_area"]
    print(f"lesion area {area:.3f}; Grad-CAM mass {gradcam['mass_in_lesion']:.3f} {gradcam['per_image']} peak {gradcam['pointing_game']:.2f}; "
          f"occlusion mass {occlusion['mass_in_lesion']:.3f} {occlusion['per_image']} peak {occlusion['pointing_game']:.2f}")
    assert gradcam["layer"] == "body.layer2" and gradcam["mass_in_lesion"] >= 2 * area
    assert occlusion["mass_in_lesion"] > 0.5  # most of the occlusion map in the lesion (measured 0.56 on 0.06 of the area)
    assert occlusion["pointing_game"] >= 5 / 6  # its peak in the lesion (measured 6 of 6; Grad-CAM 2 of 6)


def test_interrupted_then_resumed_classifier_equals_uninterrupted(cxr_cls_set, tmp_path):
    """Early stopping on (epoch-by-epoch training against the val split), interrupted mid-epoch, resumed."""
    from radsynth.evaluate.classify import evaluate_classification

    config = ClassifyConfig(size=32, epochs=3, batch_size=8, lr=1e-3, classes="Normal,COVID-19", early_stop_patience=5, checkpoint_every=1000, augment="strong")
    straight = evaluate_classification("real", cxr_cls_set, tmp_path / "straight", config, device="cpu", figures=False)

    def interrupt(step: int) -> None:
        if step == 8:  # in the second epoch (6 steps each)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate_classification("real", cxr_cls_set, tmp_path / "broken", config, device="cpu", figures=False, on_step=interrupt)
    assert not (tmp_path / "broken" / "results.json").exists()
    resumed = evaluate_classification("real", cxr_cls_set, tmp_path / "broken", config, device="cpu", figures=False, resume=True)
    assert resumed["model"]["sha256"] == straight["model"]["sha256"]
    assert resumed["training_set"]["val_loss"] == straight["training_set"]["val_loss"] and len(straight["training_set"]["val_loss"]) == 3
    assert resumed["predictions"] == straight["predictions"]
