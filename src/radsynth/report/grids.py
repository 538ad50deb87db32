"""Image grids as PNG: images in [-1, 1] side by side with their label maps as colour overlays."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from radsynth.atomic import atomic_write_bytes

# RGB per schema label: background transparent, lung blue, GGO yellow, consolidation red.
LABEL_COLOURS = np.array([[0, 0, 0], [40, 110, 255], [255, 215, 0], [230, 30, 30]], dtype=np.float32)
OVERLAY_ALPHA = 0.45


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W) float in [-1, 1] -> uint8 0..255."""
    return np.round((np.clip(image, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def overlay(image: np.ndarray, label: np.ndarray) -> np.ndarray:
    """(H, W) image in [-1, 1] + (H, W) schema labels -> (H, W, 3) uint8 with labels tinted."""
    grey = np.repeat(to_uint8(image)[..., None], 3, axis=-1).astype(np.float32)
    colour = LABEL_COLOURS[np.clip(label, 0, 3)]
    alpha = np.where(label[..., None] > 0, OVERLAY_ALPHA, 0.0)
    return np.round(grey * (1 - alpha) + colour * alpha).astype(np.uint8)


def tile(panels: Sequence[np.ndarray], columns: int, gap: int = 2) -> np.ndarray:
    """Equal-size (H, W, 3) uint8 panels -> one (rows*H, columns*W, 3) mosaic with white gaps."""
    height, width = panels[0].shape[:2]
    rows = -(-len(panels) // columns)
    canvas = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, np.uint8)
    for i, panel in enumerate(panels):
        r, c = divmod(i, columns)
        canvas[r * (height + gap) : r * (height + gap) + height, c * (width + gap) : c * (width + gap) + width] = panel
    return canvas


def save_grid(path: Path, images: Sequence[np.ndarray], labels: Sequence[np.ndarray | None] | None = None, columns: int = 4) -> Path:
    """Write a PNG grid; each image (H, W) in [-1, 1] is followed by its overlay when a label is given."""
    panels = []
    for i, image in enumerate(images):
        grey = np.repeat(to_uint8(image)[..., None], 3, axis=-1)
        panels.append(grey)
        if labels is not None and labels[i] is not None:
            panels.append(overlay(image, labels[i]))
    buffer = io.BytesIO()
    Image.fromarray(tile(panels, columns)).save(buffer, format="PNG")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)
