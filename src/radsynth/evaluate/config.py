"""Config of the downstream segmentation evaluation: CoSinGAN 3.3.2's recipe as the defaults.

``paper``: 50 epochs, Adam(0.9, 0.999), lr 1e-4 decayed linearly by 4 % of it per epoch after
epoch 25 (so it reaches 0 at epoch 50), mini-batch 8 (ENet) / 2 (UNet), 1 input channel, 256 px,
from scratch, strong augmentation on every training set, category-weighted cross-entropy with
weights background 0.1, lung 1.0, infection 5.0.
``quick``: the same recipe shortened for a CPU (128 px, 8 epochs, batch 8, lr 1e-3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from radsynth.config import check_range
from radsynth.lesions import ONLINE_EDITS
from radsynth.nets.segmenter import DEFAULT_FEATURES, SEGMENTER_KINDS

BATCH_SIZES = {"enet": 8, "unet": 2}  # CoSinGAN 3.3.2 ("due to memory limitation")
CI_UNITS = ("patient", "fold")
TYPED_CHOICES = ("auto", "separate", "merged")
AUGMENTS = ("strong", "weak", "none")
EPOCH_ORDERS = ("pool", "grouped")  # pool: shuffles of the whole pool; grouped: add:P drawn as OC-TS (protocols.grouped_epoch_order)


@dataclass(frozen=True)
class SegmentConfig:
    """How to train and test one segmenter. Defaults: CoSinGAN section 3.3.2 unless said otherwise."""

    model: str = "unet"  # unet (MONAI BasicUNet) or enet
    size: int = 256  # 3.3.2: image size 256 x 256 (train and test images are resized to it)
    epochs: int = 50  # 3.3.2
    decay_start: float = 0.5  # fraction of the epochs after which lr falls linearly to 0 (3.3.2: after 25 of 50, 4 %/epoch)
    batch_size: int = 0  # 0: the paper's per-model batch, ENet 8 / UNet 2 (3.3.2)
    samples_per_epoch: int = 0  # 0: the size of the real training split (OC-TS), the same for every protocol (3.3.1); add:P pools (1 + P) x this unless epoch_order=grouped
    epoch_order: str = "pool"  # pool: add:P trains the larger set's epochs (Jiang IV-B-2); grouped: as OC-TS, each real slice or one of its edits
    lr: float = 1e-4  # 3.3.2
    beta1: float = 0.9  # 3.3.2
    beta2: float = 0.999  # 3.3.2
    class_weights: tuple[float, float, float] = (0.1, 1.0, 5.0)  # 3.3.2: background, lung, infection (GGO and consolidation alike)
    lesions: str = ""  # radsynth: a lesion run (train lesions) drawing new lesions into training images as they are drawn; "" none
    lesion_edit: str = "replace"  # with lesions: add (new lesions beside the image's own) or replace (its own removed first)
    lesion_share: float = 1.0  # with lesions: the share of training images edited (each draw decides anew)
    augment: str = "strong"  # 3.3.2: the strong augmentation used to train CoSinGAN, on all training sets
    unet_features: tuple[int, ...] = DEFAULT_FEATURES  # BasicUNet widths (MONAI defaults; the paper's UNet is not specified)
    typed: str = "auto"  # GGO / consolidation: separate, merged into infection, or auto (separate when train and test sets are typed)
    ci: str = "patient"  # CI units: patient (CoSinGAN: over test scans) or fold (Jiang: over test-image folds)
    folds: int = 10  # Jiang IV-B-2: the test images divided equally into 10 folds (ci = fold)
    group_by: str = ""  # subgroup column of the test manifest (Table 4's 'modality'); 'set' = which --test folder
    eval_batch_size: int = 16
    amp: bool = True  # bf16 autocast on CUDA (no effect on CPU)
    seed: int = 0
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if self.model not in SEGMENTER_KINDS:
            raise ValueError(f"model must be one of {SEGMENTER_KINDS}, got '{self.model}'")
        if self.size < 16 or self.size % 16:
            raise ValueError(f"size must be a multiple of 16 (UNet and ENet downsample), got {self.size}")
        check_range(vars(self), ("epochs", "eval_batch_size", "folds", "log_every", "sample_every", "checkpoint_every"), low=1)
        check_range(vars(self), ("batch_size", "samples_per_epoch"), low=0)  # 0 = the paper's default
        if not 0 <= self.decay_start <= 1:
            raise ValueError(f"decay_start must lie in [0, 1] (a fraction of the epochs), got {self.decay_start}")
        if self.lr <= 0:
            raise ValueError("lr must be positive")
        if any(w < 0 for w in self.class_weights):
            raise ValueError("class_weights must be non-negative")
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {AUGMENTS}, got '{self.augment}'")
        if self.typed not in TYPED_CHOICES:
            raise ValueError(f"typed must be one of {TYPED_CHOICES}, got '{self.typed}'")
        if self.epoch_order not in EPOCH_ORDERS:
            raise ValueError(f"epoch_order must be one of {EPOCH_ORDERS}, got '{self.epoch_order}'")
        if self.ci not in CI_UNITS:
            raise ValueError(f"ci must be one of {CI_UNITS}, got '{self.ci}'")
        if self.lesion_edit not in ONLINE_EDITS:
            raise ValueError(f"lesion_edit must be one of {ONLINE_EDITS}, got '{self.lesion_edit}'")
        if not 0 < self.lesion_share <= 1:
            raise ValueError(f"lesion_share must lie in (0, 1] (the share of training images edited), got {self.lesion_share}")
        if len(self.unet_features) != 6 or any(f < 1 for f in self.unet_features):
            raise ValueError(f"unet_features must be 6 positive widths, got {self.unet_features}")

    @property
    def batch(self) -> int:
        """The mini-batch actually used."""
        return self.batch_size or BATCH_SIZES[self.model]


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    # CPU: 128 px, 8 epochs of the OC-TS size, batch 8 for both nets, a larger lr for the short schedule
    "quick": {"size": 128, "epochs": 8, "batch_size": 8, "lr": 1e-3, "sample_every": 100, "checkpoint_every": 100},
}
