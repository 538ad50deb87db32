"""The patient's body in a CT slice, and clearing what lies outside it (the scanner table, cables, text).

A model that learns one slice draws the whole image from the lung mask, so it has to invent where the
table runs under the body; CoSinGAN trained on ct-rp9-dev's slice 000032 imitated the table's lines as
horizontal streaks in the air around every body it drew. ``clear_outside_body`` sets everything outside the
body that is not darker than the air next to it (the air itself, the table, cables) to that air level, and
leaves the body and the darker surroundings (the black outside the scanner's field of view) as they were.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

AIR_TOLERANCE = 0.1  # on [-1, 1]: outside pixels darker than the air level by more than this (no data) are kept
AIR_RING = 3  # px: the air level is the median of this ring just outside the body


def body_mask(image: np.ndarray, label: np.ndarray) -> np.ndarray:
    """(H, W) bool: the body of a slice. image (H, W) in [-1, 1], label (H, W) schema labels (lung = labels >= 1).

    The lung and every pixel brighter than the lung's median (soft tissue and bone, as in
    ``representative.body_fraction``), opened so that thin structures (the table, cables) come apart from
    the torso, the connected regions that touch the lung kept, their holes filled. All False without lung.
    """
    lung = label >= 1
    if not lung.any():
        return np.zeros(label.shape, bool)
    bright = lung | (image > np.median(image[lung]))
    steps = max(1, round(max(label.shape) / 64))  # 2 px at 128 px
    opened = ndimage.binary_opening(bright, iterations=steps) | lung
    regions, _ = ndimage.label(opened)
    touching = np.unique(regions[lung])
    body = np.isin(regions, touching[touching > 0])
    return ndimage.binary_fill_holes(ndimage.binary_dilation(body, iterations=1))


def clear_outside_body(image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, int]:
    """image (1, H, W) or (H, W) in [-1, 1], label (H, W) -> (the image with every pixel outside the body that is not
    darker than the air next to it set to that air level, the number of pixels whose value changed). Unchanged
    without lung."""
    flat = image.reshape(label.shape).double().numpy()
    body = body_mask(flat, label.numpy())
    if not body.any():
        return image, 0
    ring = ndimage.binary_dilation(body, iterations=AIR_RING) & ~body
    air = float(np.median(flat[ring])) if ring.any() else float(flat[~body].min())
    out = np.where(~body & (flat > air - AIR_TOLERANCE), air, flat)
    cleared = torch.from_numpy(out).to(image.dtype).reshape(image.shape)
    return cleared, int((cleared != image).sum())
