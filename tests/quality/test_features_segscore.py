"""Domain features (pooled UNet encoder blocks), extractor choice, and the segmentation-based score by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from radsynth.errors import InputError
from radsynth.nets.segmenter import ENCODER_LAYERS, build_segmenter, save_segmenter, unet_segmenter
from radsynth.quality.features import DomainEncoderFeatures, build_extractor, extract, torch_fidelity_available
from radsynth.quality.segscore import Segmenter, load_segmenters, segmentation_by_group, segmentation_score

NARROW = (4, 4, 8, 8, 16, 4)


def _save(path: Path, kind: str = "unet") -> Path:
    torch.manual_seed(0)
    net = build_segmenter(kind, 3, 1, NARROW)
    save_segmenter(path, net, {"model": kind, "num_classes": 3, "in_channels": 1, "features": list(NARROW), "size": 32, "trained_on": "oc"})
    return path


def test_domain_features_are_the_pooled_encoder_blocks_concatenated():
    torch.manual_seed(0)
    unet = unet_segmenter(3, 1, NARROW).eval()
    extractor = DomainEncoderFeatures(unet, 32)
    assert extractor.num_features == sum(NARROW[:5])
    images = torch.rand(3, 1, 32, 32) * 2 - 1
    captured = {}
    hooks = [getattr(unet, n).register_forward_hook(lambda m, i, o, n=n: captured.__setitem__(n, o)) for n in ENCODER_LAYERS]
    with torch.no_grad():
        unet(images)
    for h in hooks:
        h.remove()
    expected = torch.cat([captured[n].mean(dim=(-2, -1)) for n in ENCODER_LAYERS], dim=1)
    assert torch.allclose(extractor(images), expected, atol=1e-6)
    # other sizes are resized to the segmenter's size first
    assert extractor(torch.rand(2, 1, 64, 64) * 2 - 1).shape == (2, sum(NARROW[:5]))


def test_build_extractor_choices(tmp_path):
    unet = _save(tmp_path / "unet.safetensors")
    enet = _save(tmp_path / "enet.safetensors", "enet")
    assert build_extractor("none", [unet]) is None
    ext = build_extractor("domain", [enet, unet])  # the first UNet is used
    assert ext.kind == "domain" and ext.score_name == "FD (domain UNet encoder)" and "FID" not in ext.score_name
    assert ext.source == str(unet) and ext.dims == sum(NARROW[:5])
    assert extract(ext, torch.zeros(5, 1, 32, 32), batch_size=2).shape == (5, ext.dims)
    with pytest.raises(InputError, match="--segmenter"):
        build_extractor("domain", [])
    with pytest.raises(InputError, match="not a UNet"):
        build_extractor("domain", [enet])
    with pytest.raises(InputError, match="does not exist"):
        build_extractor(f"inception:{tmp_path / 'missing.pth'}", [])
    with pytest.raises(InputError, match="unknown feature extractor"):
        build_extractor("vgg", [unet])


@pytest.mark.skipif(torch_fidelity_available(), reason="torch-fidelity is installed here")
def test_inception_without_torch_fidelity_is_refused_clearly(tmp_path):
    weights = tmp_path / "pt_inception.pth"
    weights.write_bytes(b"not used")
    with pytest.raises(InputError, match="torch-fidelity"):
        build_extractor(f"inception:{weights}", [])


class _FakeInception(nn.Module):
    """Stands in for torchmetrics' NoTrainInceptionV3 (which needs torch-fidelity, and so torchvision, and
    a weights file): records how it was built and what it was fed, answers (N, 2048) features."""

    built: list[dict] = []
    fed: list[torch.Tensor] = []

    def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str) -> None:
        super().__init__()
        if Path(feature_extractor_weights_path).read_bytes() != b"inception weights":
            raise RuntimeError("unexpected key(s) in state_dict")
        self.built.append({"name": name, "features_list": features_list, "path": feature_extractor_weights_path})
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.fed.append(x)
        return x.float().mean(dim=(1, 2, 3))[:, None, None].repeat(1, 1, 2048)


def test_inception_path_feeds_the_fid_network_uint8_rgb_and_names_the_score_fid(tmp_path, monkeypatch):
    """The Inception extractor everywhere (not only where torch-fidelity is installed): the FID network gets
    the grey images as 0..255 uint8 with three equal channels, its features come back as (N, 2048), the score
    is called FID with the weights file's hash, and a file the network cannot load is a clear InputError."""
    import hashlib

    import torchmetrics.image.fid

    import radsynth.quality.features as features

    monkeypatch.setattr(features, "torch_fidelity_available", lambda: True)
    monkeypatch.setattr(torchmetrics.image.fid, "NoTrainInceptionV3", _FakeInception)
    _FakeInception.built.clear(), _FakeInception.fed.clear()
    weights = tmp_path / "pt_inception.pth"
    weights.write_bytes(b"inception weights")
    ext = build_extractor(f"inception:{weights}", [])
    assert (ext.kind, ext.score_name, ext.dims) == ("inception", "FID", 2048)
    assert ext.sha256 == hashlib.sha256(b"inception weights").hexdigest() and ext.source == str(weights)
    assert _FakeInception.built == [{"name": "inception-v3-compat", "features_list": ["2048"], "path": str(weights)}]
    images = torch.tensor([-1.0, -0.5, 0.0, 1.0, 1.5]).reshape(5, 1, 1, 1).expand(5, 1, 4, 4)
    out = extract(ext, images, batch_size=2)
    assert out.shape == (5, 2048) and out.dtype == torch.float64
    fed = torch.cat(_FakeInception.fed)
    assert fed.dtype == torch.uint8 and fed.shape == (5, 3, 4, 4)
    assert fed[:, 0, 0, 0].tolist() == [0, 64, 128, 255, 255]  # round((x + 1) * 127.5), clamped to [-1, 1] first
    assert torch.equal(fed[:, 0], fed[:, 1]) and torch.equal(fed[:, 0], fed[:, 2])
    bad = tmp_path / "other.pth"
    bad.write_bytes(b"something else")
    with pytest.raises(InputError, match="not an Inception-v3 FID weights file"):
        build_extractor(f"inception:{bad}", [])


class _ReadLabels(nn.Module):
    """A 'perfect' segmenter for images whose intensity encodes the label: x = label / 3 * 2 - 1."""

    def __init__(self) -> None:
        super().__init__()
        self.centres = nn.Parameter(torch.tensor([0, 1, 2, 3], dtype=torch.float32) / 3 * 2 - 1, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -(x - self.centres[None, :, None, None]) ** 2  # (N, 4, H, W): nearest centre wins


def test_segmentation_score_by_hand():
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, 2:7, 2:4] = 1  # 10 lung pixels per image
    labels[0, 10:12, 10:12] = 2  # 4 infection pixels in image 0, none in image 1
    images = (labels.float() / 3 * 2 - 1)[:, None]
    segmenter = Segmenter(_ReadLabels(), {"num_classes": 4, "size": 16}, Path("stub"), "Stub")
    perfect = segmentation_score(segmenter, images, labels)
    assert perfect["lung"]["mean"] == 1.0 and perfect["infection"]["mean"] == 1.0
    assert perfect["infection"]["n"] == 1  # image 1 has no infection in truth or prediction: left out
    # image 0: 2 lung pixels painted background, 2 background pixels painted lung -> DSC 2*8 / (16 + 2 + 2) = 0.8
    wrong = images.clone()
    wrong[0, 0, 2, 2:4] = -1.0
    wrong[0, 0, 14, 14:16] = labels.new_tensor(1).float() / 3 * 2 - 1
    scored = segmentation_score(segmenter, wrong, labels, batch_size=1)
    assert scored["per_image"]["lung"] == pytest.approx([0.8, 1.0])
    assert scored["lung"]["mean"] == pytest.approx(0.9)
    assert scored["lung"]["pooled"] == pytest.approx(2 * 18 / (36 + 2 + 2))


def test_load_segmenters_names(tmp_path):
    a, b = _save(tmp_path / "a.safetensors"), _save(tmp_path / "b.safetensors")
    e = _save(tmp_path / "e.safetensors", "enet")
    assert [s.name for s in load_segmenters([a, e, b])] == ["UNet 1", "ENet", "UNet 2"]
    assert load_segmenters([a])[0].describe()["trained_on"] == "oc"


def test_segmentation_by_group_averages_each_modality_by_hand():
    scores = {"UNet": {"per_image": {"lung": [0.8, 1.0, 0.5], "infection": [None, 0.4, 0.6]}}}
    grouped = segmentation_by_group(scores, ["coronacases", "radiopaedia", "coronacases"])
    assert list(grouped) == ["coronacases", "radiopaedia"]
    assert grouped["coronacases"]["UNet"]["lung"] == pytest.approx(0.65)
    assert grouped["coronacases"]["UNet"]["infection"] == pytest.approx(0.6)  # the image without a DSC is left out
    assert grouped["radiopaedia"]["UNet"] == pytest.approx({"lung": 1.0, "infection": 0.4})
    only_missing = segmentation_by_group({"UNet": {"per_image": {"infection": [None]}}}, ["m"])
    assert only_missing["m"]["UNet"]["infection"] is None


def test_table1_shows_a_column_pair_per_modality():
    from radsynth.quality.tables import segmentation_table

    seg = {"UNet": {"lung": {"mean": 0.9}, "infection": {"mean": 0.5}}}
    groups = {"M1": {"UNet": {"lung": 0.8, "infection": 0.4}}, "M2": {"UNet": {"lung": 1.0, "infection": 0.6}}}
    table = segmentation_table({"segmenters": [{"name": "UNet"}], "sets": [{"name": "O-STS", "segmentation": seg, "segmentation_groups": groups}]})
    head, _, row = table.splitlines()
    assert head == "| Set | UNet Lung | UNet Infection | M1 Lung | M1 Infection | M2 Lung | M2 Infection | Overall Lung | Overall Infection |"
    assert row == "| O-STS | 90.0 | 50.0 | 80.0 | 40.0 | 100.0 | 60.0 | 90.0 | 50.0 |"
