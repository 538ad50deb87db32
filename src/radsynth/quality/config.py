"""Config of ``radsynth quality``: how each score is computed. Defaults say where they come from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from radsynth.config import check_range


@dataclass(frozen=True)
class QualityConfig:
    """Settings of the quality, fidelity, diversity and privacy scores (see ``radsynth.quality``)."""

    reference_split: str = "train"  # the real reference: this split of --real (the data a synthesizer may learn from)
    reference_class: str = ""  # X-ray sets: only real images of this class (e.g. COVID-19 for Normal -> COVID-19 translators); "" = all
    heldout_row: bool = True  # also score the --real images outside the reference split as a 'Real (held-out)' row
    batch_size: int = 16  # images per forward pass (features, segmentation)
    # KID (Binkowski et al. 2018, as torchmetrics computes it): polynomial kernel (x.y / d + 1) ** 3
    kid_subsets: int = 100  # torchmetrics default
    kid_subset_size: int = 1000  # torchmetrics default; capped at the smaller set's size
    kid_degree: int = 3
    # diversity: MS-SSIM (small-image rule of radsynth.losses.ms_ssim) and L1 on [0, 1] intensities
    diversity_pairs: int = 500  # at most this many pairs per set and kind (within / across conditions), drawn with the seed
    # memorisation audit
    calibration_quantile: float = 0.05  # tau = this quantile of real-vs-real nearest-other-patient distances
    audit_alpha: float = 0.01  # flag a set when P(Binomial(n, q) >= copies) < alpha
    copy_rmse: float = 1.0 / 510  # pixel RMSE (on [0, 1]) under half an 8-bit grey level: counted as an exact copy
    closest_pairs: int = 8  # pairs (synthetic, nearest real) drawn in memorisation_<set>.png
    # FRD (--features ...,frd; radsynth.quality.frd)
    frd_max_images: int = 0  # at most this many images per side, drawn with the seed (FRD recomputes the reference per set); 0 = all
    seed: int = 0

    def __post_init__(self) -> None:
        check_range(vars(self), ("batch_size", "kid_subsets", "kid_subset_size", "kid_degree", "diversity_pairs", "closest_pairs"), low=1)
        check_range(vars(self), ("calibration_quantile", "audit_alpha"), low=0.0, high=1.0)
        if self.frd_max_images < 0:
            raise ValueError(f"frd_max_images must be >= 0 (0: all images), got {self.frd_max_images}")
        if self.copy_rmse < 0:
            raise ValueError(f"copy_rmse must be >= 0, got {self.copy_rmse}")
        if not self.reference_split:
            raise ValueError("reference_split must name a split, e.g. train")


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "quick": {"kid_subsets": 20, "diversity_pairs": 100},  # fewer KID subsets and pairs (tests, CPU)
}
