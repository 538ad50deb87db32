"""Editing real slices: add generated lesions, remove annotated infection, paste real lesions (CarveMix).

Every edit changes the image only inside the lung (labels >= 1), inside the edited region and at
most ``margin`` px around it, so every pixel farther than ``margin`` px from the region is returned
unchanged (bit for bit). ``remove`` and ``paste`` feather that band (``feather_weight``: 1 on the
region, 1 - d / (margin + 1) at Euclidean distance d, 0 beyond ``margin``); ``add`` draws the lesion
model's edge profile instead (below). Images (H, W) float32 in [-1, 1]; labels (H, W) schema labels.

* ``add_lesions``: a lesion core pixel = the smooth healthy-lung level around it (``model.lung_background``) +
  the class's core offset + ``texture`` x what the pixel holds above that level (vessels, texture, noise):
  GGO (texture ~1) raises attenuation and keeps vessels visible, consolidation (~0.2) hides them. Its
  border rings move only part of the way there and the lung just outside rises a little, by the model's
  edge profile (``LesionModel.profile``), as real annotations have it: the soft border lies inside the
  label. The core offset is set so that the drawn region's mean offset is the class's ``offset``. No
  feathering band beyond the profile's halo (at most ``margin`` px). Label: the union (new lesion classes
  win over lung; an existing class >= the new one is kept).
* ``remove_lesions``: infection replaced by the healthy-lung level around it plus the structure above it
  copied from healthy lung elsewhere in the slice (shifted copies, the best-covering shift first, the
  next ones filling what it leaves); label: infection -> lung.
* ``paste_lesions``: annotated lesions (``LesionCrop``) rotated, scaled, mirrored and copied with
  their intensities into a lung position drawn like a layout's (the CarveMix-style baseline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from radsynth.lesions.model import LesionModel, lung_background, rings, scale_of

DEFAULT_MARGIN = 3  # px: the feathering band outside an edited region; beyond it nothing changes
REMOVE_SHIFTS = 24  # shifts drawn to copy healthy lung structure onto removed infection


def feather_weight(region: np.ndarray, allowed: np.ndarray, margin: int) -> np.ndarray:
    """(H, W) float32: 1 on ``region``, 1 - d / (margin + 1) at Euclidean distance d <= ``margin`` outside it,
    0 farther, and 0 wherever ``allowed`` is False."""
    if not region.any():
        return np.zeros(region.shape, np.float32)
    distance = ndimage.distance_transform_edt(~region)
    weight = np.where(distance <= margin, 1.0 - distance / (margin + 1), 0.0).astype(np.float32)
    return weight * allowed


def _blend(image: np.ndarray, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    out = image + weight * (np.clip(target, -1.0, 1.0) - image)
    return np.where(weight > 0, out, image).astype(np.float32)  # exactly the input where nothing is edited


def add_lesions(image: np.ndarray, label: np.ndarray, lesions: np.ndarray, model: LesionModel,
                margin: int = DEFAULT_MARGIN, density: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render ``lesions`` ((H, W) 0 / 2 / 3, inside the lung) into ``image``; returns (image, union label).

    ``density`` (H, W), default 1: a factor on the class offset per pixel (``layout.Layout.density``);
    the texture factor is divided by it (a denser lesion hides more of the vessels), at most 1.5. Pixels
    farther than ``margin`` px from the lesions (and everything outside the lung) are returned unchanged."""
    lung = label >= 1
    lesions = np.where(lung, lesions, 0).astype(np.uint8)
    if not model.typed:
        lesions = np.where(lesions >= 2, 2, 0).astype(np.uint8)
    region = lesions >= 2
    if not region.any():
        return image.astype(np.float32).copy(), label.copy()
    unit = (image.astype(np.float64) + 1) / 2
    background = lung_background(unit, label)
    structure = unit - background  # vessels, texture and noise above the smooth lung level
    edge, halo = model.profile()
    inside, outside = rings(region, scale_of(image.shape))
    share = region.astype(np.float64)  # of the core's level: the edge rings inside, the halo rings outside, 0 beyond
    for k, level in enumerate(edge, start=1):
        share[region & (inside == k)] = level
    for k, level in enumerate(halo[:margin], start=1):
        share[~region & (outside == k)] = level
    share[~lung] = 0.0
    # every pixel of the halo takes the class and density of its nearest lesion pixel
    nearest = ndimage.distance_transform_edt(~region, return_distances=False, return_indices=True)
    classes = lesions[nearest[0], nearest[1]]
    factor = np.ones(image.shape) if density is None else density[nearest[0], nearest[1]].astype(np.float64)
    edited = unit.copy()
    for cls in (2, 3):
        drawn = region & (lesions == cls)
        if not drawn.any():
            continue
        look = model.look(cls)
        core = look.offset / max(float(share[drawn].mean()), 1e-3)  # the drawn region's mean offset is the class's
        where = (classes == cls) & (share > 0)
        texture = np.minimum(look.texture / factor[where], 1.5)
        p = share[where]
        # the border moves p of the way from the pixel to the lesion's look; the halo (outside) only rises
        keep = np.where(region[where], 1.0 - p + p * texture, 1.0)
        edited[where] = background[where] + p * core * factor[where] + keep * structure[where]
    out = np.clip(edited * 2 - 1, -1.0, 1.0)
    out = np.where(share > 0, out, image).astype(np.float32)  # exactly the input where nothing is edited
    union = np.where(region, np.maximum(label, lesions), label).astype(label.dtype)
    return out, union


def remove_lesions(image: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                   margin: int = DEFAULT_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Replace annotated infection (labels >= 2) by plausible lung; returns (image, label with infection -> 1)."""
    region = label >= 2
    healthy = label == 1
    if not region.any():
        return image.astype(np.float32).copy(), label.copy()
    unit = image.astype(np.float64)
    base = lung_background(unit, label)
    residual = unit - base
    texture = np.zeros_like(unit)
    if healthy.any():  # structure of healthy lung above its level, moved onto the region: the shifts covering most first
        shifts = rng.integers(-image.shape[0] // 3, image.shape[0] // 3 + 1, size=(REMOVE_SHIFTS, 2))
        moved = [np.roll(healthy, tuple(shift), axis=(0, 1)) & region for shift in shifts]  # region pixels each shift can fill
        filled = np.zeros(region.shape, bool)
        for k in np.argsort([float(m.sum()) for m in moved], kind="stable")[::-1]:
            take = moved[k] & ~filled
            texture[take] = np.roll(residual, tuple(shifts[k]), axis=(0, 1))[take]
            filled |= take
            if filled[region].all():
                break
        # pixels no shift covers keep the smooth level alone (white noise there read as salt and pepper); the
        # copied structure's mean is set to healthy lung's, so the region's level is the lung's around it
        texture[region] += residual[healthy].mean() - texture[region].mean()
    weight = feather_weight(region, label >= 1, margin)
    edited = _blend(image, base + texture, weight)
    return edited, np.where(region, 1, label).astype(label.dtype)


@dataclass(frozen=True)
class LesionCrop:
    """One annotated lesion: its image crop (h, w) in [-1, 1] and label crop (h, w), 0 outside the lesion."""

    image: np.ndarray
    label: np.ndarray


def lesion_crops(image: np.ndarray, label: np.ndarray, typed: bool, min_pixels: int = 4) -> list[LesionCrop]:
    """The connected infection components of one annotated slice as crops (with a 1 px border)."""
    infected = label >= 2
    components, n = ndimage.label(infected, structure=np.ones((3, 3)))
    crops = []
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        if box is None:
            continue
        ys = slice(max(box[0].start - 1, 0), box[0].stop + 1)
        xs = slice(max(box[1].start - 1, 0), box[1].stop + 1)
        mask = components[ys, xs] == index
        if mask.sum() < min_pixels * scale_of(image.shape) ** 2:
            continue
        classes = np.where(mask, label[ys, xs] if typed else 2, 0).astype(np.uint8)
        crops.append(LesionCrop(image[ys, xs].astype(np.float32), classes))
    return crops


def _warp(crop: LesionCrop, rng: np.random.Generator) -> LesionCrop:
    """Random rotation (0-360 degrees), isotropic scale (0.75-1.33) and left-right mirror of a crop."""
    angle = rng.uniform(0, 2 * math.pi)
    zoom = math.exp(rng.uniform(math.log(0.75), math.log(1.33)))
    image, label = crop.image, crop.label
    if rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    h, w = label.shape
    side = int(math.ceil(math.hypot(h, w) * zoom)) + 2
    matrix = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) / zoom
    centre_out = np.array([side / 2, side / 2])
    offset = np.array([h / 2, w / 2]) - matrix @ centre_out
    warped_image = ndimage.affine_transform(image, matrix, offset, output_shape=(side, side), order=1, mode="nearest")
    warped_label = ndimage.affine_transform(label, matrix, offset, output_shape=(side, side), order=0, cval=0)
    return LesionCrop(warped_image.astype(np.float32), warped_label.astype(np.uint8))


def paste_lesions(image: np.ndarray, label: np.ndarray, crops: list[LesionCrop], centres: list[tuple[int, int]],
                  rng: np.random.Generator, margin: int = DEFAULT_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Copy a randomly chosen, warped crop to each of ``centres`` (inside the lung), clipped to the lung;
    returns (image, union label). Intensities are copied as they are (CarveMix)."""
    lung = label >= 1
    target = image.astype(np.float32).copy()
    lesions = np.zeros(label.shape, np.uint8)
    for cy, cx in centres:
        crop = _warp(crops[int(rng.integers(len(crops)))], rng)
        h, w = crop.label.shape
        y0, x0 = cy - h // 2, cx - w // 2
        ty0, tx0, ty1, tx1 = max(y0, 0), max(x0, 0), min(y0 + h, label.shape[0]), min(x0 + w, label.shape[1])
        if ty1 <= ty0 or tx1 <= tx0:
            continue
        piece_label = crop.label[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0]
        inside = (piece_label >= 2) & lung[ty0:ty1, tx0:tx1]
        target[ty0:ty1, tx0:tx1][inside] = crop.image[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0][inside]
        lesions[ty0:ty1, tx0:tx1][inside] = np.maximum(lesions[ty0:ty1, tx0:tx1][inside], piece_label[inside])
    region = lesions >= 2
    if not region.any():
        return image.astype(np.float32).copy(), label.copy()
    # the band around a pasted lesion fades from its nearest pasted pixel to the host image
    nearest = ndimage.distance_transform_edt(~region, return_distances=False, return_indices=True)
    target = target[nearest[0], nearest[1]]
    edited = _blend(image, target, feather_weight(region, lung, margin))
    union = np.where(region, np.maximum(label, lesions), label).astype(label.dtype)
    return edited, union
