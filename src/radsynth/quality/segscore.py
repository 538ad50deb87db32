"""Segmentation-based quality score (CoSinGAN 3.2.3, Table 1).

Segmenters trained on REAL data (``radsynth evaluate segment --train oc``) segment the synthetic
images; the score is the mean DSC, over images, of lung and infection between the prediction and
the condition the image was synthesized from. "If CoSinGAN can produce realistic radiological
images, the segmentation networks trained on real images should be able to well segment them."

Regions as in ``radsynth.evaluate.metrics``: lung = label 1 (the lung of CoSinGAN's ternary
mask, infection excluded), infection = labels 2 or 3. An image where a region is absent from
both the condition and the prediction has no DSC for it and is left out of that mean; the pooled
DSC (all pixels of the set together) is reported too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from radsynth.evaluate.metrics import REGIONS, SegmentationStats, scores
from radsynth.evaluate.stats import t_interval
from radsynth.evaluate.train import predict
from radsynth.nets.segmenter import load_segmenter

SEG_REGIONS = ("lung", "infection")  # CoSinGAN Table 1's two columns per segmenter
MODEL_TITLES = {"unet": "UNet", "enet": "ENet"}


@dataclass
class Segmenter:
    """A trained segmenter and what the tables call it."""

    net: torch.nn.Module
    info: dict[str, Any]
    path: Path
    name: str

    @property
    def size(self) -> int:
        return int(self.info.get("size") or 256)

    @property
    def typed(self) -> bool:
        return int(self.info["num_classes"]) == 4

    def describe(self) -> dict[str, Any]:
        keys = ("model", "num_classes", "classes", "size", "trained_on", "sha256")
        return {"name": self.name, "path": str(self.path), **{k: self.info.get(k) for k in keys}}


def load_segmenters(paths: list[Path]) -> list[Segmenter]:
    """Segmenters saved by ``save_segmenter``; named by model ('UNet', 'ENet'), numbered when one model repeats."""
    loaded = []
    for path in paths:
        net, info = load_segmenter(Path(path))
        loaded.append((net, info, Path(path), MODEL_TITLES.get(str(info.get("model")), str(info.get("model")))))
    titles = [title for *_, title in loaded]
    out, seen = [], {}
    for net, info, path, title in loaded:
        seen[title] = seen.get(title, 0) + 1
        name = title if titles.count(title) == 1 else f"{title} {seen[title]}"
        out.append(Segmenter(net, info, path, name))
    return out


@torch.no_grad()
def segmentation_score(segmenter: Segmenter, images: Tensor, labels: Tensor, regions: tuple[str, ...] = SEG_REGIONS, batch_size: int = 32) -> dict[str, Any]:
    """Segment (N, 1, H, W) images in [-1, 1] and compare with their (N, H, W) schema conditions.

    Returns {region: {'mean', 'lo', 'hi', 'n', 'sd', 'half', 'pooled'}} with DSC in [0, 1], plus
    'per_image' {region: [DSC or None, ...]}.
    """
    unknown = [r for r in regions if r not in REGIONS]
    if unknown:
        raise ValueError(f"unknown regions {unknown}")
    stats = SegmentationStats(regions)
    for start in range(0, len(images), batch_size):
        chunk = slice(start, start + batch_size)
        pred = predict(segmenter.net, images[chunk], segmenter.size, segmenter.typed, amp=False).cpu()
        stats.update(pred, labels[chunk], torch.arange(start, start + len(pred)))
    index, counts = stats.compute()
    counts = counts[torch.argsort(index)].numpy()
    per_image = scores(counts)["dsc"]  # (N, R)
    pooled = scores(counts.sum(0))["dsc"]  # (R,)
    out: dict[str, Any] = {}
    for r, region in enumerate(regions):
        out[region] = {**t_interval(per_image[:, r].tolist()).as_dict(), "pooled": float(pooled[r])}
    out["per_image"] = {region: [None if np.isnan(v) else float(v) for v in per_image[:, r]] for r, region in enumerate(regions)}
    return out


def segmentation_by_group(scores: dict[str, dict[str, Any]], groups: list[str]) -> dict[str, dict[str, dict[str, float | None]]]:
    """``{group: {segmenter: {region: mean DSC}}}`` from ``segmentation_score`` results (their 'per_image'),
    ``groups`` naming each image's group (e.g. its modality); images without a DSC for a region are left out."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for group in dict.fromkeys(groups):
        members = [i for i, g in enumerate(groups) if g == group]
        out[group] = {}
        for name, score in scores.items():
            means = {}
            for region, values in score["per_image"].items():
                kept = [values[i] for i in members if values[i] is not None]
                means[region] = float(np.mean(kept)) if kept else None
            out[group][name] = means
    return out
