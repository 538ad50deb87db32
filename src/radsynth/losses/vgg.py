"""VGG19 feature extractor whose weights load from a user's local torchvision-style file."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from radsynth.errors import InputError
from radsynth.losses.extractors import FeatureExtractor
from radsynth.nets.state_file import read_state_file

# torchvision's vgg19 (configuration "E"): numbers are 3x3 conv widths, "M" a 2x2 max pool.
VGG19_CONFIG: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)
# pix2pixHD (Wang et al. 2018) reference code, VGGLoss: these layers and weights.
PIX2PIXHD_VGG_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
PIX2PIXHD_VGG_WEIGHTS = {"relu1_1": 1 / 32, "relu2_1": 1 / 16, "relu3_1": 1 / 8, "relu4_1": 1 / 4, "relu5_1": 1.0}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layer_names() -> list[str]:
    """Names of ``features[i]`` in torchvision's vgg19: conv1_1, relu1_1, conv1_2, ..., pool5."""
    names: list[str] = []
    block, index = 1, 1
    for item in VGG19_CONFIG:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return names


def _vgg19_features(depth: int) -> nn.Sequential:
    """The first ``depth`` layers of torchvision's ``vgg19().features``, same indices and shapes."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG19_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
    return nn.Sequential(*layers[:depth])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class VGG19Features(FeatureExtractor):
    """VGG19 activations at named layers for 1- or 3-channel images in [-1, 1].

    ``forward(x)``: x (N, 1 or 3, H, W) in [-1, 1] -> list of (N, C_j, H / 2**k_j, W / 2**k_j)
    maps, one per entry of ``layers`` (e.g. relu1_1 (N, 64, H, W) ... relu5_1 (N, 512, H/16, W/16)).
    One channel is repeated to three; the input is mapped to [0, 1] and normalised with the
    ImageNet mean and std, as torchvision's weights expect.

    ``self.features`` is torchvision's ``vgg19().features`` truncated after the deepest requested
    layer, with the same indices, so its state dict keys (``features.0.weight``, ...) are
    torchvision's and ``from_file`` loads a user's local ImageNet weights file. Built directly it
    is randomly initialised (``description`` says so). Default layer weights are pix2pixHD's
    (1/32, 1/16, 1/8, 1/4, 1 for relu1_1 ... relu5_1; 1 for any other layer).
    """

    def __init__(self, layers: Sequence[str] = PIX2PIXHD_VGG_LAYERS) -> None:
        super().__init__()
        names = vgg19_layer_names()
        if isinstance(layers, str) or len(layers) == 0 or any(layer not in names for layer in layers):
            raise ValueError(f"layers must be a non-empty list of VGG19 layer names from {names}, got {layers!r}")
        self.layers = tuple(layers)
        self.indices = tuple(names.index(layer) for layer in self.layers)
        self.features = _vgg19_features(max(self.indices) + 1)
        self.source = "random init, no pretrained weights"
        self.default_layer_weights = tuple(PIX2PIXHD_VGG_WEIGHTS.get(layer, 1.0) for layer in self.layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_file(cls, path: str | Path, layers: Sequence[str] = PIX2PIXHD_VGG_LAYERS) -> VGG19Features:
        """Load torchvision-style vgg19 weights (``features.N.weight`` / ``.bias``) from a local file.

        ``.safetensors``, or ``.pt`` / ``.pth`` read with ``torch.load(weights_only=True)`` (pickled
        code is refused). Keys outside the needed ``features.*`` layers (e.g. ``classifier.*``) are
        ignored. A missing, unreadable or refused file, or missing / mis-shaped keys, raise
        InputError naming the file.
        """
        path = Path(path)
        state = read_state_file(path)
        model = cls(layers)
        own = model.features.state_dict()
        missing = [f"features.{key}" for key in own if f"features.{key}" not in state]
        if missing:
            raise InputError(
                path,
                f"not torchvision vgg19 weights: missing {len(missing)} keys, e.g. {missing[:3]} "
                f"(expected keys 'features.N.weight' / 'features.N.bias' as in torchvision's vgg19 state dict)",
            )
        wrong = [
            f"features.{key} {tuple(state[f'features.{key}'].shape)} != {tuple(value.shape)}"
            for key, value in own.items()
            if state[f"features.{key}"].shape != value.shape
        ]
        if wrong:
            raise InputError(path, f"not torchvision vgg19 weights: shape mismatch in {wrong[:3]}")
        model.features.load_state_dict({key: state[f"features.{key}"] for key in own})
        model.source = f"weights from {path.name}, sha256 {_sha256(path)[:16]}"
        return model

    @property
    def description(self) -> str:
        return f"VGG19 features at {', '.join(self.layers)} ({self.source})"

    def normalize_input(self, x: Tensor) -> Tensor:
        """(N, 1 or 3, H, W) in [-1, 1] -> (N, 3, H, W), ImageNet-normalised."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"VGG19Features expects (N, 1, H, W) or (N, 3, H, W) in [-1, 1], got {tuple(x.shape)}")
        x = (x + 1.0) / 2.0
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Feature maps at ``self.layers`` for x (N, 1 or 3, H, W) in [-1, 1]."""
        x = self.normalize_input(x)
        wanted = set(self.indices)
        found: dict[int, Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                found[index] = x
        return [found[index] for index in self.indices]
