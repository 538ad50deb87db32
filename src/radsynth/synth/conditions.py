"""Condition images for mask-conditional synthesis (CoSinGAN section 3.2.1 and eq. 10)."""

from __future__ import annotations

import torch

from radsynth.data.labels import CONDITION_GREY_LEVELS, TYPED_CONDITION_GREY_LEVELS, to_categories


def condition_tensor(label: torch.Tensor, typed: bool = False) -> torch.Tensor:
    """(N, H, W) schema labels -> (N, 1, H, W) float condition in [-1, 1].

    Background 0, lung 128, infection 255 on the 8-bit scale (CoSinGAN 3.2.1), then x / 127.5 - 1;
    ``typed``: GGO 192 and consolidation 255 apart (``TYPED_CONDITION_GREY_LEVELS``).
    """
    if typed:
        levels = torch.tensor(TYPED_CONDITION_GREY_LEVELS, dtype=torch.float32, device=label.device)
        return (levels[label.long().clamp(0, len(TYPED_CONDITION_GREY_LEVELS) - 1)] / 127.5 - 1.0)[:, None]
    levels = torch.tensor(CONDITION_GREY_LEVELS, dtype=torch.float32, device=label.device)
    return (levels[to_categories(label).long()] / 127.5 - 1.0)[:, None]


NUM_LABELS = 4  # schema labels: background, lung, GGO, consolidation


def one_hot_condition(label: torch.Tensor) -> torch.Tensor:
    """(N, H, W) schema labels -> (N, 4, H, W) float one-hot map (pix2pixHD / SPADE semantic input)."""
    if label.min() < 0 or label.max() >= NUM_LABELS:
        raise ValueError(f"schema labels must lie in 0..{NUM_LABELS - 1}, got {int(label.min())}..{int(label.max())}")
    return torch.nn.functional.one_hot(label.long(), NUM_LABELS).permute(0, 3, 1, 2).float()
