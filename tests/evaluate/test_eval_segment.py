"""`radsynth evaluate segment` end to end on the phantom: it learns, it reports, it refuses, it resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from radsynth.config import build_config
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.evaluate.config import PRESETS, SegmentConfig
from radsynth.evaluate.metrics import scores
from radsynth.evaluate.segment import evaluate_segmentation
from radsynth.evaluate.stats import t_quantile
from radsynth.evaluate.train import predict
from radsynth.losses.perceptual import FeatureLoss
from radsynth.nets.segmenter import load_segmenter, unet_from_weights
from radsynth.synth.base import TrainingData
from radsynth.synth.feature_extractors import FEATURE_UNET_CHANNELS, FeatureSpec, build_feature_losses

TINY = ("--size", "32", "--set", "batch_size=4", "--set", "unet_features=[4,8,8,16,16,4]", "--set", "lr=0.003")


@pytest.mark.outcome
def test_unet_learns_the_phantom_lung(phantom_prepared, tmp_path, outcome):
    """120 steps (batch 4, 32 px) on the 6 training slices of one phantom patient reach lung DSC >= 0.70 on the
    2 test patients (measured 0.80 in 9 s); labelling every pixel lung scores 0.25."""
    config = build_config(SegmentConfig, PRESETS, None, {
        "size": 32, "epochs": 60, "batch_size": 4, "lr": 3e-3, "augment": "none",
        "unet_features": [8, 16, 32, 64, 128, 8], "sample_every": 1000, "checkpoint_every": 1000,
    })
    results = evaluate_segmentation("oc", [phantom_prepared], tmp_path / "out", config, device="cpu")
    assert results["training_set"]["steps"] == 120
    lung = results["metrics"]["overall"]["lung"]["dsc"]
    assert outcome("lung_dsc", lung["mean"]) >= 0.70, lung
    labels = torch.stack([label for _, label, _ in SliceSet(phantom_prepared, split="test")])
    truth = (labels == 1).sum().item()
    assert 2 * truth / (truth + labels.numel()) < 0.3  # the all-lung baseline the threshold must beat


def test_cli_end_to_end(phantom_prepared, tmp_path, cli):
    out = tmp_path / "enet-sin"
    result = cli("evaluate", "segment", "--train", "sin:auto", "--test", phantom_prepared, "--model", "enet", "--out", out, "--epochs", "3", *TINY)
    assert result.code == 0, result.err
    assert "| Sin-TS | 1 |" in result.out
    results = json.loads((out / "results.json").read_text())
    assert results["format"] == "radsynth-segment-results/1"
    assert results["training_set"]["name"] == "Sin-TS" and results["training_set"]["real_images"] == 1
    # the same number of samples as OC-TS (6 slices): 3 epochs x 6, in 3 x ceil(6 / 4) steps
    assert (results["training_set"]["samples_seen"], results["training_set"]["steps"]) == (18, 6)
    assert results["test"]["classes"] == ["lung", "infection", "ggo", "consolidation"]  # the phantom is typed
    assert results["test"]["patients"] == ["P001", "P002"] and results["test"]["slices"] == 12
    assert results["model"]["kind"] == "enet" and results["model"]["num_classes"] == 4
    assert results["seed"] == 0 and "monai" in results["versions"] and results["config"]["model"] == "enet"
    assert all(len(s["fingerprint"]) == 64 for s in results["test"]["sets"] + results["training_set"]["sources"])
    counts = np.array(results["counts"]["values"])
    assert counts.shape == (12, 4, 4) and (counts.sum(-1) == 32 * 32).all()
    # every reported number is recomputable from the stored counts
    infection = results["metrics"]["overall"]["infection"]["dsc"]
    per_patient = [scores(counts[i : i + 6, 1].sum(0))["dsc"] for i in (0, 6)]
    assert infection["mean"] == pytest.approx(np.mean(per_patient))
    assert infection["half"] == pytest.approx(t_quantile(1) * np.std(per_patient, ddof=1) / np.sqrt(2))
    assert infection["pooled"] == pytest.approx(scores(counts[:, 1].sum(0))["dsc"])
    table = (out / "results.md").read_text()
    assert "| Training set | Real images | ENet overall Lung | ENet overall Infection | ENet overall GGO | ENet overall Consolidation |" in table
    assert "| P001 | 6 |" in table and "Dice" in table
    # the saved segmenter predicts exactly what was scored
    net, info = load_segmenter(out / "segmenter.safetensors")
    assert info["model"] == "enet" and info["classes"] == ["background", "lung", "ggo", "consolidation"]
    image, label, _ = SliceSet(phantom_prepared, split="test")[0]
    pred = predict(net, image[None], 32, typed=True)
    from radsynth.evaluate.metrics import confusion_counts

    assert confusion_counts(pred, label[None], ("lung",))[0, 0].tolist() == counts[0, 0].tolist()
    # nothing is replaced without --force; --resume reuses the finished training
    again = cli("evaluate", "segment", "--train", "sin:auto", "--test", phantom_prepared, "--model", "enet", "--out", out, "--epochs", "3", *TINY)
    assert again.code == 2 and "--force" in again.err
    resumed = cli("evaluate", "segment", "--train", "sin:auto", "--test", phantom_prepared, "--model", "enet", "--out", out, "--epochs", "3", "--resume", *TINY)
    assert resumed.code == 0, resumed.err
    assert json.loads((out / "results.json").read_text())["counts"] == results["counts"]
    changed = cli("evaluate", "segment", "--train", "oc", "--test", phantom_prepared, "--model", "enet", "--out", out, "--epochs", "3", "--resume", *TINY)
    assert changed.code == 2 and "different spec" in changed.err

    # a UNet run, 3 classes, grouped by a manifest column; then one table from both runs
    unet_out = tmp_path / "unet-oc"
    unet = cli("evaluate", "segment", "--train", "oc", "--test", phantom_prepared, "--out", unet_out, "--epochs", "1",
               "--set", "typed=merged", "--group-by", "has_infection", "--ci", "fold", "--folds", "3", *TINY)
    assert unet.code == 0, unet.err
    unet_results = json.loads((unet_out / "results.json").read_text())
    assert unet_results["test"]["classes"] == ["lung", "infection"] and unet_results["model"]["num_classes"] == 3
    assert unet_results["metrics"]["overall"]["lung"]["dsc"]["n"] == 3 and set(unet_results["metrics"]["per_fold"]) == {"fold0", "fold1", "fold2"}
    assert set(unet_results["metrics"]["groups"]) <= {"0", "1"}
    merged = cli("evaluate", "table", out, unet_out)
    assert merged.code == 0
    assert "| Sin-TS | 1 |" in merged.out and "| OC-TS | 6 |" in merged.out and "UNet overall Lung" in merged.out


def test_segmenter_checkpoints_serve_as_cosingan_unet_features(phantom_prepared, tmp_path, cli):
    out = tmp_path / "unet"
    assert cli("evaluate", "segment", "--train", "sin:auto", "--test", phantom_prepared, "--out", out, "--epochs", "1", *TINY).code == 0
    weights = out / "segmenter.safetensors"
    net = unet_from_weights(weights, FEATURE_UNET_CHANNELS)  # its own width (4, 8, ...) comes from the sidecar, not the default
    saved, _ = load_segmenter(weights)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), saved.state_dict().values()))
    data = TrainingData(torch.zeros(1, 1, 32, 32), torch.zeros(1, 32, 32, dtype=torch.long), ["x"], ["p"], "memory")
    losses, descriptions = build_feature_losses(FeatureSpec(unet_features=str(weights)), data, torch.device("cpu"), tmp_path / "run")
    assert isinstance(losses["unet"], FeatureLoss) and str(weights) in descriptions["unet"]
    a, b = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 1, 32, 32) * 2 - 1
    assert torch.isfinite(losses["unet"](a, b)) and losses["unet"](a, b) > 0
    enet = tmp_path / "enet"
    assert cli("evaluate", "segment", "--train", "sin:auto", "--test", phantom_prepared, "--model", "enet", "--out", enet, "--epochs", "1", *TINY).code == 0
    with pytest.raises(InputError, match="needs a UNet"):
        unet_from_weights(enet / "segmenter.safetensors", FEATURE_UNET_CHANNELS)


def test_bad_input_is_one_line(phantom_prepared, tmp_path, cli):
    result = cli("evaluate", "segment", "--train", "sin:nope", "--test", phantom_prepared, "--out", tmp_path / "x", *TINY)
    assert result.code == 2 and "no slice with id nope" in result.err
    result = cli("evaluate", "segment", "--train", "oc", "--test", tmp_path / "missing", "--out", tmp_path / "y", *TINY)
    assert result.code == 2 and "dataset.json" in result.err
    result = cli("evaluate", "segment", "--train", "oc", "--test", phantom_prepared, "--out", tmp_path / "z", "--set", "typed=separate", "--set", "size=20")
    assert result.code == 2 and "multiple of 16" in result.err


def test_interrupted_then_resumed_training_equals_uninterrupted(phantom_prepared, tmp_path):
    config = SegmentConfig(model="enet", size=32, epochs=3, batch_size=4, checkpoint_every=2, sample_every=100)
    straight = evaluate_segmentation("two:auto", [phantom_prepared], tmp_path / "straight", config, device="cpu")

    def interrupt(step: int) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate_segmentation("two:auto", [phantom_prepared], tmp_path / "broken", config, device="cpu", on_step=interrupt)
    assert not (tmp_path / "broken" / "results.json").exists()  # no results from an unfinished run
    record = tmp_path / "broken" / "segment.json"  # started by a radsynth without epoch_order: resumes with its default
    started = json.loads(record.read_text())
    del started["config"]["epoch_order"]
    record.write_text(json.dumps(started))
    resumed = evaluate_segmentation("two:auto", [phantom_prepared], tmp_path / "broken", config, device="cpu", resume=True)
    a, _ = load_segmenter(tmp_path / "straight" / "segmenter.safetensors")
    b, _ = load_segmenter(tmp_path / "broken" / "segmenter.safetensors")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert resumed["counts"] == straight["counts"] and resumed["model"]["sha256"] == straight["model"]["sha256"]
