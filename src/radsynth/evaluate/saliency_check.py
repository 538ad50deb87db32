"""Do a classifier's explanations sit on the disease? Saliency localisation against lesion masks.

Where the test images carry lesion masks (CT slices: infection labels; phantom radiographs: the
difference to their Normal twin), every classification run scores its two explanations of the
positive decision on correctly classified positive images:

* ``mass_in_lesion``: the share of the map's total mass (maps in [0, 1]) inside the lesion
  (Wang et al. 2020, Score-CAM, "energy-based pointing game", with the lesion mask instead of a box);
  a map with no positive evidence scores 0. Compare it with ``lesion_area`` (the lesion's share of
  the image): a map that ignores the lesion scores about the area share.
* ``pointing_game``: the share of images whose map peaks inside the lesion (Zhang et al. 2016).

What limits Grad-CAM here, measured on the phantom Normal vs Pneumonia check (lesion 6 % of the
image): its map has one value per cell of the explained layer (8 x 8 cells by default), so even a
map that is exactly the lesion's cover at that resolution, upsampled, puts only 0.45-0.55 of its
mass in the lesion. And the cells of the deep layers see the whole image, so a lesion raises
evidence in cells far from it: in the exact class-activation decomposition of ResNet18's logit
(layer4, 256 px) the Normal twin has almost no positive evidence (at most 0.27 logit units against
2.9-15.8 in the diseased image), yet 40-74 % of what the lesion adds lies in cells the lesion does
not touch. Occlusion sensitivity changes the lesion's own pixels: its resolution is the square's,
and a distant square does not count for the lesion's evidence. The same gap is reported on real
radiographs (Saporta et al. 2022, "Benchmarking saliency methods for chest X-ray interpretation",
Nat. Mach. Intell.): Grad-CAM localised best of seven methods, every method worse than radiologists,
and the gap was largest for small lesions and complex shapes.

On real CT the scores tell whether the classifier found the infection at all: ResNet18 trained on
two ct-rp9-dev volumes (quick preset, 30 epochs, 128 px) separates the third volume's slices with
accuracy 0.90, yet both maps peak outside the infection on every scored slice (Grad-CAM 0.06 of the
mass in it on 0.03 of the area, occlusion 0.06; the maps sit on the mediastinum), and its errors are
the slices next to the infected range: it appears to decide by where in the chest the slice lies.
"""

from __future__ import annotations

import numpy as np
import torch

from radsynth.evaluate.classify_config import ClassifyConfig
from radsynth.evaluate.classify_figures import gradcam_maps, occlusion_maps
from radsynth.evaluate.stats import t_interval
from radsynth.nets.classifiers import Classifier, gradcam_layer


def mass_in_lesion(saliency: torch.Tensor, lesion: torch.Tensor) -> float:
    """(H, W) map >= 0 and (H, W) bool lesion -> share of the map's mass inside the lesion; 0 for an all-zero map."""
    if saliency.shape != lesion.shape:
        raise ValueError(f"saliency {tuple(saliency.shape)} and lesion {tuple(lesion.shape)} differ in shape")
    if float(saliency.min()) < 0:
        raise ValueError("saliency maps must be >= 0")
    total = float(saliency.sum())
    return float(saliency[lesion.bool()].sum()) / total if total > 0 else 0.0


def peak_in_lesion(saliency: torch.Tensor, lesion: torch.Tensor) -> bool:
    """Whether the map's maximum (first one in raster order) lies in the lesion; False for an all-zero map."""
    if float(saliency.max()) <= 0:
        return False
    return bool(lesion.flatten().bool()[int(saliency.flatten().argmax())])


def _summary(masses: list[float], hits: list[bool], area: float) -> dict:
    interval = t_interval(masses)
    return {
        "mass_in_lesion": interval.mean, "interval": [interval.lo, interval.hi], "per_image": [round(m, 4) for m in masses],
        "mass_over_area": interval.mean / area if area > 0 else None, "pointing_game": float(np.mean(hits)) if hits else None,
    }


def localisation_scores(net: Classifier, images: torch.Tensor, lesions: torch.Tensor, class_idx: int, config: ClassifyConfig,
                        ids: list[str] | None = None) -> dict:
    """(N, 1, S, S) images in [-1, 1], (N, S, S) bool lesion masks -> Grad-CAM and occlusion localisation.

    Both maps explain class ``class_idx`` (for a binary one-logit net, 1 = the positive logit).
    Returns ``{"images", "ids", "lesion_area", "gradcam": {...}, "occlusion": {...}}``, each method with
    ``mass_in_lesion`` (mean over images), its 95 % t-interval over images, per-image values,
    ``mass_over_area`` and ``pointing_game``.
    """
    if images.ndim != 4 or lesions.shape != (images.shape[0], *images.shape[-2:]):
        raise ValueError(f"images (N, 1, S, S) and lesions (N, S, S) expected, got {tuple(images.shape)} and {tuple(lesions.shape)}")
    targets = torch.full((len(images),), class_idx, dtype=torch.long)
    areas = [float(lesion.float().mean()) for lesion in lesions]
    result: dict = {"images": len(images), "ids": ids or [], "class": class_idx, "lesion_area": float(np.mean(areas)) if areas else None}
    for name, maps in (("gradcam", gradcam_maps(net, images, config, targets)), ("occlusion", occlusion_maps(net, images, config, targets))):
        masses = [mass_in_lesion(m, lesion) for m, lesion in zip(maps, lesions)]
        hits = [peak_in_lesion(m, lesion) for m, lesion in zip(maps, lesions)]
        result[name] = _summary(masses, hits, result["lesion_area"] or 0.0)
    result["gradcam"]["layer"] = gradcam_layer(net, images.shape[-1])
    result["occlusion"]["square_px"] = max(1, round(config.occlusion_size * images.shape[-1]))
    return result


def choose_for_localisation(correct_positive: np.ndarray, lesion_pixels: np.ndarray, limit: int, seed: int) -> list[int]:
    """Indices of up to ``limit`` correctly classified positive images with a lesion, drawn at random
    (seeded; not the most confident, which would favour the largest lesions), in index order."""
    candidates = np.flatnonzero(correct_positive & (lesion_pixels > 0))
    if len(candidates) > limit:
        candidates = np.sort(np.random.default_rng(seed).choice(candidates, size=limit, replace=False))
    return [int(i) for i in candidates]
