"""Config of the downstream classification evaluation, with the three papers' recipes as presets.

``cosingan`` (the defaults; CoSinGAN 3.3.1): 10 epochs, batch 16, Adam(0.9, 0.999), lr 1e-4
decayed linearly by 20 % of it per epoch after epoch 5, BCE, 3 input channels, 256 px, every
training set the size of OC-TS, strong augmentation on synthetic / few-image sets and weak on OC-TS.
``cosingan-512``: the same at 512 px (Table 3).
``zunair`` (Zunair & Hamza 4.2, 4.5): Adadelta lr 1e-3, BCE, batch 16, early stopping on the loss,
256 px scaled to [0, 1], no augmentation named.
``liang`` (Liang et al. III-A, III-C): from scratch 60 epochs, 224 px, 3 classes, random horizontal
flip and 5 degree rotation. ``liang-transfer``: 50 epochs with the ImageNet body frozen, then the
last block unfrozen for 10 epochs at lr 1e-5 (needs ``--weights``).
``quick``: CoSinGAN's recipe shortened for a CPU (128 px, 6 epochs, lr 1e-3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from radsynth.config import check_range
from radsynth.nets.classifiers import CLASSIFIERS

OPTIMIZERS = ("adam", "adadelta")
AUGMENTS = ("auto", "strong", "weak", "none", "liang")
INTENSITIES = ("unit", "symmetric", "imagenet")


@dataclass(frozen=True)
class ClassifyConfig:
    """How to train and test one classifier. Defaults: CoSinGAN section 3.3.1 unless said otherwise."""

    model: str = "resnet18"  # 3.3.1: ResNet18 and ResNet50; Zunair: VGG16, ResNet50, DenseNet; Liang: ResNet50
    classes: str = ""  # comma list, positive class last (e.g. Normal,COVID-19); '' = CT infection absent,present or the set's classes
    size: int = 256  # 3.3.1 Table 2 (Table 3: 512); Zunair 4.2: 256; Liang III-A: 224
    in_channels: int = 3  # 3.3.1: "input channel of 3" (the grey image repeated); Liang III-A: 3 channels
    intensity: str = "unit"  # network input range: unit [0, 1] (Zunair 4.2), symmetric [-1, 1], imagenet (mean / std)
    epochs: int = 10  # 3.3.1
    batch_size: int = 16  # 3.3.1; Zunair 4.5
    optimizer: str = "adam"  # 3.3.1 Adam(0.9, 0.999); Zunair 4.5 Adadelta
    lr: float = 1e-4  # 3.3.1; Zunair 4.5: 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    decay_start: float = 0.5  # fraction of the epochs after which lr falls linearly to 0 (3.3.1: 20 %/epoch after 5 of 10); 1 = constant
    equal_samples: bool = True  # 3.3.1: every training set as many samples per epoch as OC-TS; False: an epoch is the pool itself
    positive_copies: int = 1  # real positive-class training images each used this many times in the pool (Liang III-C: COVID-19 x8 in the "original imbalanced" set); 1 = once; real / oc pools only
    skew: float = 0.0  # target skew (negatives / positives, Zunair eq. 6) reached by adding synthetic positives; 0 = add them all
    early_stop_patience: int = 0  # epochs without a lower validation loss before stopping (Zunair 4.5); 0 = off
    frozen_epochs: int = 0  # Liang III-C transfer: epochs with the ImageNet body frozen (only the head trains)
    finetune_lr: float = 1e-5  # Liang III-C: lr once the last block is unfrozen
    augment: str = "auto"  # auto: CoSinGAN 3.3.1 (strong on synthetic or 1-2 image sets, weak on OC-TS)
    threshold: float = 0.5  # binary decision threshold on p(positive) (Zunair 4.8: the 0.5 line)
    ci: bool = True  # 95 % t-intervals over test patients (CoSinGAN Tables 2-3)
    gradcam_examples: int = 4  # correctly and wrongly classified test images per Grad-CAM figure
    # occlusion sensitivity (radsynth's second explanation, beside Grad-CAM): a square of this fraction of the
    # side slides with this overlap and is filled with this quantile of the image's intensities (dark: clear lung
    # or air). Disease on radiographs and CT is added opacity, so darkening a patch removes it; MONAI's mean-grey
    # fill can add it (measured on the phantom COVID-19 check: 0.16 of the map in the lesion with mean fill, 0.55 dark).
    occlusion_size: float = 0.125
    occlusion_overlap: float = 0.5
    occlusion_quantile: float = 0.1
    # saliency localisation (radsynth): Grad-CAM and occlusion scored against the lesion masks of a test set that has
    # them (CT infection labels) on up to this many correctly classified positive images; 0 = off
    localisation_images: int = 16
    umap_points: int = 2000  # at most this many images in the UMAP embedding
    eval_batch_size: int = 32
    amp: bool = True
    seed: int = 0
    log_every: int = 10
    sample_every: int = 1_000_000  # no sample grids for classifiers by default
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if self.model not in CLASSIFIERS:
            raise ValueError(f"model must be one of {CLASSIFIERS}, got '{self.model}'")
        if self.size < 32 or self.size % 32:
            raise ValueError(f"size must be a multiple of 32 (the networks downsample 32 x), got {self.size}")
        check_range(vars(self), ("in_channels", "positive_copies", "epochs", "batch_size", "eval_batch_size", "log_every", "sample_every", "checkpoint_every", "umap_points"), low=1)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got '{self.optimizer}'")
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {AUGMENTS}, got '{self.augment}'")
        if self.intensity not in INTENSITIES:
            raise ValueError(f"intensity must be one of {INTENSITIES}, got '{self.intensity}'")
        if self.lr <= 0 or self.finetune_lr <= 0:
            raise ValueError("lr and finetune_lr must be positive")
        if not 0 <= self.decay_start <= 1:
            raise ValueError(f"decay_start must lie in [0, 1], got {self.decay_start}")
        if self.skew < 0:
            raise ValueError("skew must be >= 0 (0 = add every synthetic image)")
        if not 0 <= self.frozen_epochs < self.epochs:
            raise ValueError("frozen_epochs must lie in [0, epochs)")
        if self.early_stop_patience < 0 or self.gradcam_examples < 0 or self.localisation_images < 0:
            raise ValueError("early_stop_patience, gradcam_examples and localisation_images must be >= 0")
        if not 0 < self.threshold < 1:
            raise ValueError("threshold must lie in (0, 1)")
        if not (0 < self.occlusion_size <= 0.5 and 0 <= self.occlusion_overlap < 1 and 0 <= self.occlusion_quantile <= 1):
            raise ValueError("occlusion_size must lie in (0, 0.5], occlusion_overlap in [0, 1), occlusion_quantile in [0, 1]")

    @property
    def class_list(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.classes.split(",") if c.strip())


PRESETS: dict[str, dict[str, Any]] = {
    "cosingan": {},
    "cosingan-512": {"size": 512},  # Table 3
    "zunair": {  # 4.2, 4.5: Adadelta 1e-3, batch 16, early stopping, 256 px in [0, 1]; the epoch cap is radsynth's
        "optimizer": "adadelta", "lr": 1e-3, "decay_start": 1.0, "epochs": 50, "early_stop_patience": 5,
        "equal_samples": False, "augment": "none", "ci": False,
    },
    "liang": {  # III-A, III-C from scratch: 60 epochs, 224 px; optimizer and lr not given (radsynth: Adam 1e-4, constant)
        "size": 224, "epochs": 60, "decay_start": 1.0, "equal_samples": False, "augment": "liang", "ci": False,
        "classes": "Normal,Pneumonia,COVID-19",
    },
    "liang-transfer": {  # III-C: 50 epochs with the pre-trained body frozen + 10 with the last block unfrozen at 1e-5
        "size": 224, "epochs": 60, "frozen_epochs": 50, "finetune_lr": 1e-5, "decay_start": 1.0, "equal_samples": False,
        "augment": "liang", "ci": False, "intensity": "imagenet", "classes": "Normal,Pneumonia,COVID-19",
    },
    # CPU minutes: 128 px, 6 epochs, lr 1e-3 decayed after half
    "quick": {"size": 128, "epochs": 6, "lr": 1e-3, "checkpoint_every": 200},
}
