"""Diversity: mean pairwise similarity / distance of images of one set.

* within conditions: pairs of images synthesized from the SAME condition (``--n-per-condition``
  above 1, or AD / RC / IF diversification); absent when every condition was used once;
* across conditions: pairs of images of DIFFERENT conditions (for a real set: different slices).

Two measures per pair, both on [0, 1] intensities: MS-SSIM (``radsynth.losses.ms_ssim`` with
data range 1: 11 px Gaussian window, sigma 1.5, the scales that fit the image, e.g. 4 at 128 px)
-- higher means more alike, 1 for identical images -- and L1 = mean |a - b| -- higher means more
different. When a set has more pairs than ``max_pairs``, ``max_pairs`` of them are drawn without
replacement from the seed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from radsynth.losses.ms_ssim import ms_ssim


def candidate_pairs(keys: list[str], same: bool) -> Tensor:
    """All (P, 2) index pairs i < j whose keys are equal (``same``) or differ."""
    codes = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    key = torch.tensor([codes[k] for k in keys])
    pairs = torch.triu_indices(len(keys), len(keys), offset=1).T
    equal = key[pairs[:, 0]] == key[pairs[:, 1]]
    return pairs[equal if same else ~equal]


def draw_pairs(pairs: Tensor, max_pairs: int, seed: int) -> Tensor:
    """At most ``max_pairs`` rows of ``pairs``, drawn without replacement (all of them, in order, when there are few)."""
    if len(pairs) <= max_pairs:
        return pairs
    choice = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed))[:max_pairs]
    return pairs[choice.sort().values]


@torch.no_grad()
def pair_scores(images: Tensor, pairs: Tensor, batch_size: int = 16) -> dict[str, Tensor]:
    """{'ms_ssim', 'l1'} (P,) float64 for the (P, 2) index pairs of (N, 1, H, W) images in [-1, 1]."""
    ms, l1 = [], []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        # [0, 1] intensities (SSIM's luminance term is not shift-invariant); float32 is several times faster than float64 here
        a, b = (images[chunk[:, 0]].float() + 1) / 2, (images[chunk[:, 1]].float() + 1) / 2
        ms.append(ms_ssim(a, b, data_range=1.0).double())
        l1.append((a.double() - b.double()).abs().flatten(1).mean(1))
    if not ms:
        return {"ms_ssim": torch.zeros(0, dtype=torch.float64), "l1": torch.zeros(0, dtype=torch.float64)}
    return {"ms_ssim": torch.cat(ms), "l1": torch.cat(l1)}


def _summary(values: dict[str, Tensor], available: int) -> dict[str, Any] | None:
    n = len(values["l1"])
    if n == 0:
        return None
    out: dict[str, Any] = {"pairs": n, "available_pairs": available}
    for name, v in values.items():
        out[name] = {"mean": float(v.mean()), "sd": float(v.std()) if n > 1 else None}
    return out


def diversity(images: Tensor, keys: list[str], max_pairs: int = 500, seed: int = 0, batch_size: int = 16) -> dict[str, Any]:
    """{'within': summary or None, 'across': summary or None} for images (N, 1, H, W) whose conditions are ``keys``."""
    if len(keys) != len(images):
        raise ValueError(f"{len(keys)} keys for {len(images)} images")
    out: dict[str, Any] = {}
    for kind, same, offset in (("within", True, 0), ("across", False, 1)):
        candidates = candidate_pairs(keys, same)
        pairs = draw_pairs(candidates, max_pairs, seed + offset)
        out[kind] = _summary(pair_scores(images, pairs, batch_size), len(candidates))
    return out
