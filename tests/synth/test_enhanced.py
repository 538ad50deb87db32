"""enhanced pix2pix: the mixed reconstruction loss with the domain-UNet fallback for feature terms."""

import json

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
    config = build_config(Pix2PixConfig, PRESETS, None, {**TINY, "variant": "enhanced", "slice_ids": ["000001"]})

    def stop(step):
        if step == 3:
            raise KeyboardInterrupt

    try:
        Pix2Pix.fit(phantom_prepared, config, tmp_path / "run", device="cpu", on_step=stop)
    except KeyboardInterrupt:
        pass
    import radsynth.synth.feature_extractors as fe

    def fail(*args, **kwargs):
        raise AssertionError("the feature UNet must not be trained again on resume")

    monkeypatch.setattr(fe, "train_feature_unet", fail)
    model = Pix2Pix.fit(phantom_prepared, config, tmp_path / "run", resume=True, device="cpu")
    assert model.generate(torch.zeros(1, 32, 32, dtype=torch.long), seed=0).shape == (1, 1, 32, 32)
