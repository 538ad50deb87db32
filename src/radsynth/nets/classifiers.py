"""Image classifiers for the downstream evaluation: ResNet18 / ResNet50 / VGG16 / DenseNet121.

Every classifier is a convolutional ``body`` (N, C, H, W) -> (N, F, h, w) feature maps followed by
the papers' head: global average pooling and one fully connected layer (Zunair & Hamza 4.3;
Liang et al. III-C), (N, F) -> (N, K) logits (K = 1 for a binary task, trained with BCE).

ResNets and DenseNet121 are MONAI's 2-D networks configured like the ImageNet originals (7 x 7
stride-2 stem, max pool, no bias in the downsampling convolutions), so an ImageNet state dict in
the usual (torchvision) key layout loads onto ``body``; VGG16 is written here (MONAI has none) with
the same layer indices (``features.N``). ImageNet weights come only from a local file
(``load_imagenet``); there is no download.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import torch
from monai.networks.nets import DenseNet121, ResNet
from torch import nn

from radsynth.errors import InputError

CLASSIFIERS = ("resnet18", "resnet50", "vgg16", "densenet121")
# Grad-CAM target (a module path inside the classifier) and the 'last block' Liang et al. unfreeze.
# stage outputs, shallow -> deep (output strides 4, 8, 16, 32; VGG16 2, 4, 8, 16): where Grad-CAM may read
GRADCAM_CANDIDATES = {
    "resnet18": ("body.layer1", "body.layer2", "body.layer3", "body.layer4"),
    "resnet50": ("body.layer1", "body.layer2", "body.layer3", "body.layer4"),
    "vgg16": ("body.8", "body.15", "body.22", "body.29"),
    "densenet121": ("body.denseblock1", "body.denseblock2", "body.denseblock3", "body.relu5"),
}
GRADCAM_MIN_GRID = 8  # a coarser map cannot say where in a chest image the evidence is
LAST_BLOCKS = {
    "resnet18": ("body.layer4",), "resnet50": ("body.layer4",),
    "vgg16": ("body.24", "body.26", "body.28"), "densenet121": ("body.denseblock4", "body.norm5"),
}
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class Classifier(nn.Module):
    """``body`` -> global average pool -> ``fc``. forward: (N, C, H, W) -> (N, K) logits."""

    def __init__(self, name: str, body: nn.Module, features: int, num_classes: int) -> None:
        super().__init__()
        self.name = name
        self.body = body
        self.fc = nn.Linear(features, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, F) pooled features (what the UMAP figure shows)."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(x))


def _resnet(block: str, layers: list[int], in_channels: int) -> tuple[nn.Module, int]:
    net = ResNet(
        block, layers, [64, 128, 256, 512], spatial_dims=2, n_input_channels=in_channels,
        conv1_t_size=7, conv1_t_stride=2, feed_forward=False, bias_downsample=False,
    )
    names = ("conv1", "bn1", "act", "maxpool", "layer1", "layer2", "layer3", "layer4")
    body = nn.Sequential(OrderedDict((n, getattr(net, n)) for n in names))
    return body, 512 * (4 if block == "bottleneck" else 1)


def _vgg16(in_channels: int) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = []
    channels = in_channels
    for item in VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
            channels = item
    return nn.Sequential(*layers), 512


def _densenet121(in_channels: int) -> tuple[nn.Module, int]:
    net = DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=1)
    body = net.features
    body.add_module("relu5", nn.ReLU(inplace=False))  # MONAI applies it in class_layers; Grad-CAM reads it here
    return body, net.class_layers.out.in_features


def build_classifier(name: str, in_channels: int = 3, num_classes: int = 1) -> Classifier:
    """A classifier with a GAP + FC head; ``num_classes`` 1 for binary (one logit), K for K classes."""
    if name not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {CLASSIFIERS}, got '{name}'")
    if in_channels < 1 or num_classes < 1:
        raise ValueError("in_channels and num_classes must be >= 1")
    if name == "resnet18":
        body, features = _resnet("basic", [2, 2, 2, 2], in_channels)
    elif name == "resnet50":
        body, features = _resnet("bottleneck", [3, 4, 6, 3], in_channels)
    elif name == "vgg16":
        body, features = _vgg16(in_channels)
    else:
        body, features = _densenet121(in_channels)
    return Classifier(name, body, features, num_classes)


def _imagenet_key(name: str, key: str) -> str | None:
    """A torchvision-layout ImageNet key -> the matching key of ``Classifier.body`` (None: the ImageNet head)."""
    if key.startswith(("fc.", "classifier.")):
        return None
    if name == "vgg16":
        return key.removeprefix("features.")
    if name == "densenet121":
        key = key.removeprefix("features.")
        if key.startswith("norm5") or key.startswith(("conv0", "norm0", "relu0", "pool0", "transition")):
            return key
        # torchvision: denseblockB.denselayerL.norm1.weight (older files: norm.1.weight); MONAI adds '.layers'
        match = re.match(r"^(denseblock\d+\.denselayer\d+)\.(norm|relu|conv)\.?(\d)\.(.+)$", key)
        return f"{match.group(1)}.layers.{match.group(2)}{match.group(3)}.{match.group(4)}" if match else key
    return key


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors, .pt or .pth file (a mapping of tensors, optionally under 'state_dict')."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such weights file (ImageNet weights are only read from a local file)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise InputError(path, f"cannot read weights ({type(exc).__name__}: {exc})") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise InputError(path, "is not a state dict (a mapping of parameter names to tensors)")
    return {k.removeprefix("module."): v for k, v in data.items()}


def load_imagenet(net: Classifier, path: Path) -> dict[str, int | str]:
    """Load ImageNet weights in torchvision's key layout onto ``net.body`` (the head stays new).

    All or nothing: every body parameter and buffer must be found with the right shape, otherwise
    an ``InputError`` names the mismatches and nothing is loaded. Returns a summary for results.json.
    """
    source = read_state_dict(path)
    mapped: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        target = _imagenet_key(net.name, key)
        if target is not None:
            mapped[target] = value
    own = net.body.state_dict()
    missing = [k for k in own if k not in mapped]
    wrong = [f"{k} {tuple(mapped[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in mapped and mapped[k].shape != own[k].shape]
    if missing or wrong:
        problems = (f"{len(missing)} missing (e.g. {', '.join(missing[:3])})" if missing else "") + (
            f"{'; ' if missing else ''}{len(wrong)} of the wrong shape (e.g. {', '.join(wrong[:3])})" if wrong else ""
        )
        raise InputError(
            path,
            f"does not map onto radsynth's {net.name} (torchvision key layout expected; {problems}); "
            "nothing was loaded. Give an ImageNet state dict of the same architecture with 3 input channels",
        )
    net.body.load_state_dict({k: mapped[k] for k in own})
    return {"file": str(Path(path).resolve()), "tensors": len(own), "ignored": len(source) - len(own)}


def gradcam_layer(net: Classifier, size: int, min_grid: int = GRADCAM_MIN_GRID) -> str:
    """The deepest stage of ``net`` whose feature map on a (size x size) input is at least
    ``min_grid`` cells wide: the last block (Grad-CAM's usual choice) from 256 px
    on for ResNet / DenseNet (8 x 8 at stride 32), a shallower stage on smaller images, where the last
    block's 2 x 2 or 4 x 4 map spreads the saliency over the whole chest."""
    candidates = GRADCAM_CANDIDATES[net.name]
    strides = (2, 4, 8, 16) if net.name == "vgg16" else (4, 8, 16, 32)
    fitting = [layer for layer, stride in zip(candidates, strides) if size // stride >= min_grid]
    return fitting[-1] if fitting else candidates[0]
