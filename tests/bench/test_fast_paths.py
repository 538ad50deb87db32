"""The speed-ups change nothing: early-stopping feature extraction returns the same features, and a
tiny CoSinGAN run gives bit-identical weights on the optimised and the plain path."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from radsynth.config import build_config
from radsynth.losses import FeatureLoss, ModuleFeatures
from radsynth.nets.segmenter import ENCODER_LAYERS, unet_segmenter
from radsynth.training.checkpoint import latest_checkpoint
from radsynth.synth.cosingan import PRESETS, CoSinGAN, CoSinGANConfig, phase_name


def test_early_stop_gives_the_same_features_and_gradients_without_the_decoder():
    torch.manual_seed(0)
    unet = unet_segmenter(3, 1, (8, 8, 16, 16, 32, 8)).eval()
    decoder_calls = []
    unet.upcat_1.register_forward_hook(lambda *_: decoder_calls.append(1))
    x = torch.randn(2, 1, 32, 32)
    fake_full, fake_fast = (x.clone().requires_grad_(True) for _ in range(2))
    real = torch.randn(2, 1, 32, 32)
    full = FeatureLoss(ModuleFeatures(unet, ENCODER_LAYERS, stop_early=False))
    fast = FeatureLoss(ModuleFeatures(unet, ENCODER_LAYERS))
    loss_full = full(fake_full, real)
    assert len(decoder_calls) == 2  # the plain path runs the decoder for fake and real
    loss_fast = fast(fake_fast, real)
    assert len(decoder_calls) == 2  # the early stop never reaches it
    assert torch.equal(loss_full, loss_fast) and loss_full.item() > 0
    loss_full.backward()
    loss_fast.backward()
    assert torch.equal(fake_full.grad, fake_fast.grad) and fake_full.grad.abs().sum() > 0
    features = ModuleFeatures(unet, ENCODER_LAYERS)(real)
    assert [f.shape[-1] for f in features] == [32, 16, 8, 4, 2]


def _weights(run) -> dict[str, torch.Tensor]:
    """Every tensor of every phase's last checkpoint: generator, discriminator and Adam state."""
    out = {}
    for phase in sorted(p.name for p in run.glob("scale*_stage*")):
        out.update({f"{phase}/{k}": v for k, v in load_file(str(latest_checkpoint(run / phase))).items()})
    return out


def test_cosingan_optimised_path_gives_bit_identical_weights(phantom_prepared64, tmp_path):
    config = build_config(CoSinGANConfig, PRESETS, None, {
        "scales": [32, 48], "generator_downs": [4, 4], "discriminator_convs": [6, 6], "ngf": 8, "ndf": 8,
        "stage1_steps": 2, "stage2_steps": 2, "feature_unet_steps": 1, "checkpoint_every": 100, "sample_every": 100,
        "log_every": 100, "slice_ids": ["000002"],
    })
    runs = {}
    for plain in (True, False):
        run = tmp_path / ("plain" if plain else "fast")
        CoSinGAN.fit(phantom_prepared64, config, run, device="cpu", plain=plain)
        runs[plain] = run
    assert phase_name(config, 1, 2) == "scale1_48px_stage2"
    plain, fast = _weights(runs[True]), _weights(runs[False])
    assert plain.keys() == fast.keys() and len(plain) > 50
    different = [k for k in plain if not torch.equal(plain[k], fast[k])]
    assert different == []
    # training moved the weights: stage 2 starts as a copy of stage 1 and differs after its 2 steps
    g1 = {k.split("/", 1)[1]: v for k, v in plain.items() if k.startswith("scale1_48px_stage1/module.generator")}
    g2 = {k.split("/", 1)[1]: v for k, v in plain.items() if k.startswith("scale1_48px_stage2/module.generator")}
    assert g1.keys() == g2.keys() and len(g1) > 10
    assert any(not torch.equal(g1[k], g2[k]) for k in g1)
