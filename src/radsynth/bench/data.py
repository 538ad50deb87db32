"""In-memory phantom data for the benchmarks: no files, no downloads.

CT: ``ct_phantom_slice`` images windowed to [-1, 1] with their label maps; X-ray: ``cxr_phantom``
Normal and COVID-19 images in [-1, 1]. The content does not change the speed; it only has to be
realistic enough that no step takes a shortcut (empty masks, constant images).
"""

from __future__ import annotations

import numpy as np
import torch

from radsynth.data.phantom import ct_phantom_slice, cxr_phantom
from radsynth.synth.base import TrainingData
from radsynth.synth.domains import Domain, DomainData

LUNG_WINDOW = (-1350.0, 150.0)  # the lung window radsynth's HU preparation uses (W1500 / L-600)


def ct_slices(size: int, n: int = 4, seed: int = 0) -> TrainingData:
    """``n`` phantom CT slices: images (n, 1, size, size) in [-1, 1], labels (n, size, size) int64."""
    images, labels = [], []
    lo, hi = LUNG_WINDOW
    for i in range(n):
        hu, label = ct_phantom_slice(size, seed + i)
        images.append(np.clip((hu - lo) / (hi - lo), 0.0, 1.0) * 2.0 - 1.0)
        labels.append(label.astype(np.int64))
    return TrainingData(
        images=torch.from_numpy(np.stack(images)).float()[:, None],
        labels=torch.from_numpy(np.stack(labels)),
        ids=[f"bench{i:03d}" for i in range(n)],
        patients=["bench"],
        source="phantom (in memory)",
    )


def cxr_domains(size: int, n: int = 4, seed: int = 0) -> DomainData:
    """Normal (A) and COVID-19 (B) phantom X-rays, ``n`` each, (n, 1, size, size) in [-1, 1]."""

    def domain(klass: str, offset: int) -> Domain:
        images = np.stack([cxr_phantom(size, klass, seed + offset + i) for i in range(n)]).astype(np.float32)
        ids = [f"{klass}{i:03d}" for i in range(n)]
        return Domain(klass, torch.from_numpy(images / 127.5 - 1.0)[:, None], ids, ids, n)

    return DomainData(source="phantom (in memory)", a=domain("Normal", 0), b=domain("COVID-19", 1000), held_out_patients=0)
