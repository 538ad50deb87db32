"""Feature extractors for the distribution scores (FD / KID) and the feature-space memorisation audit.

``--features`` chooses one:

* ``inception:PATH`` -- Inception-v3's 2048-d pool features (torchmetrics' ``NoTrainInceptionV3``,
  the FID network of torch-fidelity) from a LOCAL weights file; only then is the Frechet distance
  called "FID" and comparable to published numbers. It needs the ``torch-fidelity`` package; here
  it is refused with a clear message when that package is missing (it requires torchvision).
* ``domain`` (default) -- the encoder of a segmentation UNet trained on real data (``--segmenter``,
  written by ``radsynth evaluate segment``; the first UNet given is used). Each of the five
  encoder blocks (``ENCODER_LAYERS``: full, 1/2, 1/4, 1/8, 1/16 resolution) is global-average
  pooled and the five vectors are concatenated (32 + 32 + 64 + 128 + 256 = 512 numbers for the
  default widths): the shallow blocks carry intensity and texture statistics, the deepest one the
  anatomy, and a synthetic image should match the real ones at every level. The Frechet distance
  on these features is reported as "FD (domain UNet encoder)", never as "FID".
* ``none`` -- no distribution scores and no feature-space audit.
* ``frd`` -- alone or after one of the above (``domain,frd``): also the Fréchet Radiomics Distance
  (``radsynth.quality.frd``, the optional ``frd-score`` package); it has no feature-space audit.

Images are resized to the extractor's input size (the segmenter's training size; 299 for
Inception, which also repeats the grey channel three times).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from radsynth.errors import InputError
from radsynth.nets.segmenter import ENCODER_LAYERS, load_segmenter

FEATURE_CHOICES = "domain | inception:PATH | none, each optionally with ,frd"


def split_features(spec: str) -> tuple[str, bool]:
    """``--features`` -> (the extractor spec for ``build_extractor``, whether FRD is asked for).

    'frd' may stand alone (no extractor: 'none') or follow one: 'domain,frd', 'inception:PATH,frd'.
    """
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    rest = [p for p in parts if p != "frd"]
    if len(rest) > 1:
        raise InputError("--features", f"'{spec}' names {len(rest)} feature networks; choose one ({FEATURE_CHOICES})")
    return (rest[0] if rest else "none"), "frd" in parts
INCEPTION_SIZE = 299


def _resize(images: Tensor, size: int) -> Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    shrinking = size <= min(images.shape[-2:])
    return F.interpolate(images, size=(size, size), mode="area") if shrinking else F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


class DomainEncoderFeatures(nn.Module):
    """(N, 1, H, W) images in [-1, 1] -> (N, D) pooled encoder features of a MONAI BasicUNet (module docstring)."""

    def __init__(self, unet: nn.Module, size: int) -> None:
        super().__init__()
        missing = [name for name in ENCODER_LAYERS if not hasattr(unet, name)]
        if missing:
            raise ValueError(f"not a BasicUNet: no {missing}")
        self.unet = unet.eval()
        self.size = size
        self.num_features = sum(_out_channels(getattr(unet, name)) for name in ENCODER_LAYERS)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = _resize(images, self.size)
        pooled = []
        for name in ENCODER_LAYERS:
            x = getattr(self.unet, name)(x)
            pooled.append(x.mean(dim=(-2, -1)))
        return torch.cat(pooled, dim=1)


def _out_channels(block: nn.Module) -> int:
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


class InceptionFeatures(nn.Module):
    """(N, 1, H, W) images in [-1, 1] -> (N, 2048) Inception-v3 pool features (torchmetrics / torch-fidelity FID network)."""

    num_features = 2048

    def __init__(self, weights: Path) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(weights))

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        uint8 = torch.round((images.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).repeat(1, 3, 1, 1)
        return self.net(uint8).reshape(images.shape[0], -1)


@dataclass(frozen=True)
class Extractor:
    """A feature network and what the report calls it."""

    module: nn.Module
    kind: str  # 'inception' or 'domain'
    score_name: str  # 'FID' (Inception) or 'FD (domain UNet encoder)'
    source: str  # weights file
    sha256: str
    dims: int
    layers: str


def torch_fidelity_available() -> bool:
    """Whether torch-fidelity (needed by torchmetrics' Inception-v3) can be imported."""
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    return bool(_TORCH_FIDELITY_AVAILABLE)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_extractor(spec: str, segmenters: list[Path]) -> Extractor | None:
    """The extractor ``--features SPEC`` names (module docstring); None for 'none'. Bad specs raise ``InputError``."""
    if spec == "none":
        return None
    if spec.startswith("inception:"):
        path = Path(spec.split(":", 1)[1])
        if not path.is_file():
            raise InputError("--features", f"Inception-v3 weights file '{path}' does not exist (weights are never downloaded)")
        if not torch_fidelity_available():
            raise InputError(
                "--features",
                "inception:PATH needs the torch-fidelity package (torchmetrics' Inception-v3 FID network), which is not "
                "installed here (it requires torchvision); use --features domain with --segmenter CKPT, or install torch-fidelity",
            )
        try:
            module = InceptionFeatures(path)
        except Exception as exc:  # a file torch-fidelity cannot read as its Inception state dict
            raise InputError(path, f"is not an Inception-v3 FID weights file torch-fidelity can load ({type(exc).__name__}: {exc})") from None
        return Extractor(module, "inception", "FID", str(path), _sha256(path), 2048, "Inception-v3 pool3 (2048)")
    if spec != "domain":
        raise InputError("--features", f"unknown feature extractor '{spec}' (choose {FEATURE_CHOICES})")
    for path in segmenters:
        model, info = load_segmenter(path)
        if info.get("model") != "unet":
            continue
        module = DomainEncoderFeatures(model, int(info.get("size") or 0) or 256)
        return Extractor(
            module, "domain", "FD (domain UNet encoder)", str(path), str(info.get("sha256", "")), module.num_features,
            f"global-average-pooled {', '.join(ENCODER_LAYERS)} of a UNet trained on '{info.get('trained_on', '?')}', concatenated",
        )
    raise InputError(
        "--features",
        "domain features need a UNet segmenter trained on the real data: pass --segmenter DIR/segmenter.safetensors "
        "(made by `radsynth evaluate segment --train oc --test REAL --model unet --out DIR`), or --features none"
        + (" (the --segmenter given is not a UNet)" if segmenters else ""),
    )


@torch.no_grad()
def extract(extractor: Extractor, images: Tensor, batch_size: int = 32) -> Tensor:
    """(N, 1, H, W) images in [-1, 1] -> (N, D) float64 features."""
    device = next(extractor.module.parameters()).device
    out = [extractor.module(images[i : i + batch_size].to(device)).double().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, extractor.dims, dtype=torch.float64)
