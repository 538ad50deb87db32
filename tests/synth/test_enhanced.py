"""enhanced pix2pix: the mixed reconstruction loss with the domain-UNet fallback for feature terms."""

import json

import pytest
import torch

from radsynth.config import build_config
from radsynth.synth.feature_extractors import FEATURE_UNET_FILE
from radsynth.synth.pix2pix import PRESETS, Pix2Pix, Pix2PixConfig

TINY = {"size": 32, "ngf": 8, "ndf": 8, "batch_size": 2, "steps": 6, "sample_every": 6, "checkpoint_every": 3, "feature_unet_steps": 4}


def test_enhanced_trains_with_all_four_terms_and_records_extractors(phantom_prepared, tmp_path):
    config = build_config(Pix2PixConfig, PRESETS, None, {**TINY, "variant": "enhanced", "slice_ids": ["000001"]})
    Pix2Pix.fit(phantom_prepared, config, tmp_path / "run", device="cpu")
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["method"] == "enhanced" and record["data"]["slice_ids"] == ["000001"]
    assert "UNet trained on the run's 1 training slice(s)" in record["extractors"]["unet"]
    assert record["extractors"]["vgg"].startswith("fallback: no local VGG19 weights")
    header = (tmp_path / "run" / "log_train.csv").read_text().splitlines()[0].split(",")
    assert {"wppl", "msssim", "unet", "g_adv", "d"} <= set(header) and "vgg" not in header  # VGG weight folded into the UNet term
    assert (tmp_path / "run" / FEATURE_UNET_FILE).exists()


def test_resume_reuses_the_saved_feature_unet(phantom_prepared, tmp_path, monkeypatch):
    """Interrupted after step 3 and resumed, the run trains no new feature UNet (the saved one is read back,
    byte for byte the same file) and ends with the weights of an uninterrupted run."""
    import radsynth.synth.feature_extractors as fe
    from radsynth.training.checkpoint import latest_checkpoint, read_checkpoint

    config = build_config(Pix2PixConfig, PRESETS, None, {**TINY, "variant": "enhanced", "slice_ids": ["000001"]})
    Pix2Pix.fit(phantom_prepared, config, tmp_path / "straight", device="cpu")

    def stop(step):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Pix2Pix.fit(phantom_prepared, config, tmp_path / "run", device="cpu", on_step=stop)
    assert read_checkpoint(latest_checkpoint(tmp_path / "run" / "train")).step == 3
    feature_unet = (tmp_path / "run" / FEATURE_UNET_FILE).read_bytes()

    def fail(*args, **kwargs):
        raise AssertionError("the feature UNet must not be trained again on resume")

    monkeypatch.setattr(fe, "train_feature_unet", fail)
    model = Pix2Pix.fit(phantom_prepared, config, tmp_path / "run", resume=True, device="cpu")
    assert (tmp_path / "run" / FEATURE_UNET_FILE).read_bytes() == feature_unet
    straight = read_checkpoint(latest_checkpoint(tmp_path / "straight" / "train"))
    resumed = read_checkpoint(latest_checkpoint(tmp_path / "run" / "train"))
    assert resumed.step == straight.step == 6
    assert straight.tensors.keys() == resumed.tensors.keys()
    assert all(torch.equal(straight.tensors[k], resumed.tensors[k]) for k in straight.tensors)
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    assert torch.equal(model.generate(labels, seed=0), Pix2Pix.load(tmp_path / "straight", "cpu").generate(labels, seed=0))
