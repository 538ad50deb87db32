"""Resizing images and label maps to the model size.

Images are resampled with area averaging when they shrink and bilinear interpolation when they
grow; label maps always with nearest-neighbour, so resizing never invents a label value.
Non-square inputs are first made square (``fit``): ``pad`` (default) centres the image on a
square canvas filled with the image's minimum (background) and label 0, keeping the aspect ratio;
``crop`` takes the centred square; ``stretch`` resizes each axis independently.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

FITS = ("pad", "crop", "stretch")


def _square_box(height: int, width: int, fit: str) -> tuple[int, int, int, int]:
    """(top, left, side_h, side_w) of the square canvas relative to the image."""
    side = max(height, width) if fit == "pad" else min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def make_square(image: np.ndarray, label: np.ndarray | None, fit: str = "pad") -> tuple[np.ndarray, np.ndarray | None]:
    """Pad or crop (H, W) image and label to a centred square; ``stretch`` returns them unchanged."""
    if fit not in FITS:
        raise ValueError(f"unknown fit '{fit}' (choose from {', '.join(FITS)})")
    height, width = image.shape
    if fit == "stretch" or height == width:
        return image, label
    top, left, side, _ = _square_box(height, width, fit)
    if fit == "crop":
        crop = (slice(top, top + side), slice(left, left + side))
        return image[crop], None if label is None else label[crop]
    canvas = np.full((side, side), image.min(), dtype=image.dtype)
    dst = (slice(-top, -top + height), slice(-left, -left + width))
    canvas[dst] = image
    if label is None:
        return canvas, None
    label_canvas = np.zeros((side, side), dtype=label.dtype)
    label_canvas[dst] = label
    return canvas, label_canvas


def resize_image(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """(H, W) float image -> (size, size) float32; area when shrinking, bilinear when growing."""
    out_h, out_w = (size, size) if isinstance(size, int) else size
    if image.shape == (out_h, out_w):
        return image.astype(np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    shrinking = out_h <= image.shape[0] and out_w <= image.shape[1]
    if shrinking:
        resized = F.interpolate(tensor, size=(out_h, out_w), mode="area")
    else:
        resized = F.interpolate(tensor, size=(out_h, out_w), mode="bilinear", align_corners=False)
    return resized[0, 0].numpy()


def resize_label(label: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """(H, W) integer label map -> (size, size) with nearest-neighbour; the value set can only shrink."""
    out_h, out_w = (size, size) if isinstance(size, int) else size
    if label.shape == (out_h, out_w):
        return label
    tensor = torch.from_numpy(np.ascontiguousarray(label).astype(np.float32))[None, None]
    resized = F.interpolate(tensor, size=(out_h, out_w), mode="nearest-exact")
    return resized[0, 0].numpy().round().astype(label.dtype)


def fit_to_size(
    image: np.ndarray, label: np.ndarray | None, size: int, fit: str = "pad"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Square the image (``fit``) and resize it and its label map to (size, size)."""
    image, label = make_square(image, label, fit)
    return resize_image(image, size), None if label is None else resize_label(label, size)
