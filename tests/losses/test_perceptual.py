"""Feature-level loss, hook-based extractor, VGG19 extractor and its safe weight loading."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from radsynth.errors import InputError
from radsynth.losses import FeatureLoss, ModuleFeatures, VGG19Features
from radsynth.losses.vgg import vgg19_layer_names


class TwoMaps(nn.Module):
    """Returns [x, 2x]: a feature extractor whose loss is easy to compute by hand."""

    def forward(self, x):
        return [x, 2 * x]


def test_feature_loss_hand_computed():
    fake = torch.tensor([[[[1.0, 2.0]]]], requires_grad=True)
    real = torch.zeros(1, 1, 1, 2)
    loss = FeatureLoss(TwoMaps(), layer_weights=(1.0, 0.5))
    # 1 * mean(1, 2) + 0.5 * mean(2, 4) = 1.5 + 1.5
    value = loss(fake, real)
    assert value.item() == pytest.approx(3.0)
    value.backward()
    assert fake.grad.flatten().tolist() == pytest.approx([1.0, 1.0])  # (1 * 1 + 0.5 * 2) / 2
    assert FeatureLoss(TwoMaps())(fake, real).item() == pytest.approx(1.5 + 3.0)  # default 1 per map


def test_extractor_frozen_and_kept_in_eval():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU())
    loss = FeatureLoss(ModuleFeatures(net, ["0", "2"]))
    assert not any(p.requires_grad for p in net.parameters())
    loss.train()
    assert loss.training and not net.training and not net[1].training
    fake = torch.randn(2, 1, 8, 8, requires_grad=True)
    loss(fake, torch.randn(2, 1, 8, 8)).backward()
    assert fake.grad is not None and fake.grad.abs().sum().item() > 0
    assert net[0].weight.grad is None
    assert loss.layer_weights == (1.0, 1.0)


def test_module_features_hooks():
    conv1, conv2 = nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1)
    for conv, (w, b) in ((conv1, (2.0, -1.0)), (conv2, (3.0, 0.5))):
        nn.init.constant_(conv.weight, w)
        nn.init.constant_(conv.bias, b)
    net = nn.Sequential(conv1, nn.ReLU(), conv2)
    extractor = ModuleFeatures(net, ["1", "0"], source="hand-set weights")
    x = torch.tensor([[[[0.0, 1.0]]]])
    relu_out, conv_out = extractor(x)
    assert conv_out.flatten().tolist() == [-1.0, 1.0]  # 2x - 1
    assert relu_out.flatten().tolist() == [0.0, 1.0]
    assert len(conv1._forward_hooks) == 0 and len(net[1]._forward_hooks) == 0
    assert extractor.description == "Sequential features at 1, 0 (hand-set weights)"
    with pytest.raises(ValueError, match=r"no submodule named \['encoder'\] in Sequential"):
        ModuleFeatures(net, ["encoder"])


def test_module_features_layer_not_called():
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Identity(), nn.Identity()

        def forward(self, x):
            return self.used(x)

    with pytest.raises(ValueError, match=r"submodules \['unused'\] were not called"):
        ModuleFeatures(Skips(), ["unused"])(torch.zeros(1))


def test_vgg19_layout_matches_torchvision():
    assert vgg19_layer_names()[:7] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1"]
    vgg = VGG19Features()
    assert vgg.indices == (1, 6, 11, 20, 29)
    assert len(vgg.features) == 30
    conv_indices = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28]  # torchvision vgg19 features.N up to conv5_1
    expected_keys = {f"features.{i}.{p}" for i in conv_indices for p in ("weight", "bias")}
    assert set(vgg.state_dict()) == expected_keys
    assert vgg.state_dict()["features.28.weight"].shape == (512, 512, 3, 3)
    assert vgg.default_layer_weights == (0.03125, 0.0625, 0.125, 0.25, 1.0)
    assert FeatureLoss(vgg).layer_weights == (0.03125, 0.0625, 0.125, 0.25, 1.0)
    assert "random init" in vgg.description


def test_vgg19_shapes_and_preprocessing():
    torch.manual_seed(0)
    vgg = VGG19Features().eval()
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        maps = vgg(x)
        assert [tuple(m.shape) for m in maps] == [
            (2, 64, 32, 32),
            (2, 128, 16, 16),
            (2, 256, 8, 8),
            (2, 512, 4, 4),
            (2, 512, 2, 2),
        ]
        assert all(torch.equal(a, b) for a, b in zip(maps, vgg(x.expand(-1, 3, -1, -1)), strict=True))
    black = vgg.normalize_input(-torch.ones(1, 1, 1, 1)).flatten().tolist()
    white = vgg.normalize_input(torch.ones(1, 1, 1, 1)).flatten().tolist()
    assert black == pytest.approx([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225])
    assert white == pytest.approx([2.2489083, 2.4285714, 2.64], abs=1e-6)
    with pytest.raises(ValueError, match="VGG19 layer names"):
        VGG19Features(layers=("relu9_9",))
    with pytest.raises(ValueError, match=r"expects \(N, 1, H, W\) or \(N, 3, H, W\)"):
        vgg(torch.zeros(1, 2, 32, 32))


SHALLOW = ("relu1_1", "relu2_1")


def test_from_file_round_trip_safetensors_and_pth(tmp_path):
    torch.manual_seed(0)
    original = VGG19Features(SHALLOW).eval()
    state = {k: v.contiguous() for k, v in original.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # unrelated keys of a full vgg19 file are ignored
    save_file(state, tmp_path / "vgg19.safetensors")
    torch.save(state, tmp_path / "vgg19.pth")
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    expected = original(x)
    for name in ("vgg19.safetensors", "vgg19.pth"):
        loaded = VGG19Features.from_file(tmp_path / name, layers=SHALLOW)
        assert all(torch.equal(a, b) for a, b in zip(expected, loaded(x), strict=True))
        assert f"weights from {name}, sha256 " in loaded.description


def test_from_file_bad_keys(tmp_path):
    state = {k: v.contiguous() for k, v in VGG19Features(SHALLOW).state_dict().items()}
    partial = {k: v for k, v in state.items() if k != "features.5.bias"}
    save_file(partial, tmp_path / "partial.safetensors")
    with pytest.raises(
        InputError,
        match=r"partial.safetensors: not torchvision vgg19 weights: missing 1 keys, e.g. \['features.5.bias'\]",
    ):
        VGG19Features.from_file(tmp_path / "partial.safetensors", layers=SHALLOW)
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    save_file(state, tmp_path / "gray.safetensors")
    with pytest.raises(
        InputError,
        match=r"gray.safetensors: .*shape mismatch in \['features.0.weight \(64, 1, 3, 3\) != \(64, 3, 3, 3\)'\]",
    ):
        VGG19Features.from_file(tmp_path / "gray.safetensors", layers=SHALLOW)


class Exploit:
    """Unpickling this runs code that writes a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_from_file_refuses_malicious_pickle(tmp_path):
    marker = tmp_path / "marker.txt"
    payload = tmp_path / "evil.pt"
    torch.save({"features.0.weight": Exploit(marker)}, payload)
    with pytest.raises(InputError, match=r"evil\.pt: refused or unreadable"):
        VGG19Features.from_file(payload, layers=SHALLOW)
    assert not marker.exists()
    # control: the payload is real, an unrestricted unpickler would have run it
    torch.load(payload, weights_only=False)
    assert marker.read_text() == "pwned"
