"""``LesionModel``: where lesions lie, how big and how shaped they are, and how they look.

Learned from one or two annotated slices (``learn``). Each value is measured on the slices and
mixed with a COVID-19 prior when layouts are drawn (``prior_weight``): one slice holds a handful of
lesions, too few to describe a distribution alone. The prior is the radiological consensus on
COVID-19 pneumonia on CT (Simpson et al., RSNA expert consensus, Radiology: Cardiothoracic
Imaging 2020): ground-glass opacity, peripheral (subpleural), posterior, bilateral and multifocal,
with or without consolidation, often with a GGO rim around consolidation.

Intensities are on [0, 1] (the [-1, 1] image mapped by (x + 1) / 2). Per class:

* ``offset``  -- class mean minus the mean of the healthy lung around it (within ``RING`` of it);
* ``texture`` -- std of the structure above the smooth healthy-lung level (``lung_background``:
  vessels, texture, noise) inside the class over the same std in healthy lung: about 1 keeps the
  vessels visible (GGO), near 0 hides them (consolidation).

Edge profile (every infection class pooled): how a lesion's level rises from its border to its core,
as the level above the lung of each 1 px ring inside the label (``edge``: ring 1 is the border pixels)
and outside it (``halo``), over the level of the core (the pixels deeper than the edge rings); the
lung 3-6 px outside is the zero. Real annotations put the soft border INSIDE the label: on the
486 train slices of ct-ma20-png at 128 px (``learn`` on all of them) the border pixels sit at 0.57 of the
core, the next rings at 0.83 and 0.94, the ring outside the label at 0.14 and the next at 0.02.

Layout values per connected infection component (8-connected, at least ``MIN_COMPONENT`` px):
area over the area of its lung side, elongation (major / minor axis of its second moments), depth
(distance from the pleura at its centroid over the deepest point of that lung side: 0 at the
pleura, 1 deepest), height (row of the centroid within its lung side: 0 top = anterior for
supine axial slices, 1 bottom = posterior). ``counts``: components per lung side.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from scipy import ndimage

INFECTION_LABELS = (2, 3)
LUNG_MEAN_SIGMA = 4.0  # px at 128 px (scaled): the smooth healthy-lung level around a pixel
RING = 6  # px at 128 px (scaled): the healthy lung counted as "around" a lesion
MIN_COMPONENT = 4  # px at 128 px (scaled by area): smaller components are annotation noise
EDGE_RINGS = 3  # 1 px rings inside the label measured for the edge profile (deeper pixels are the core)
HALO_RINGS = 2  # 1 px rings outside the label measured for the edge profile
PLATEAU_RINGS = (3, 6)  # the lung this far outside a lesion is the edge profile's zero
MIN_CORE = 20  # core pixels (at 128 px, scaled by area) the slices need for a measured edge profile


@dataclass(frozen=True)
class Appearance:
    """One infection class's look relative to the healthy lung around it (intensities on [0, 1])."""

    offset: float
    texture: float
    pixels: int


@dataclass(frozen=True)
class Prior:
    """COVID-19 layout prior (RSNA consensus, see the module docstring)."""

    depth_beta: tuple[float, float] = (1.0, 3.0)  # peripheral: most mass near the pleura (depth 0)
    height_beta: tuple[float, float] = (2.5, 1.5)  # posterior: more mass at the bottom of each lung
    lesions_per_side: float = 2.0  # multifocal: 1 + Poisson(1) lesions per lung side
    bilateral: float = 0.8  # share of layouts with lesions in both lungs
    area_median: float = 0.02  # lesion area / lung-side area, log-normal
    area_sigma: float = 0.9
    elongation: float = 1.8  # subpleural lesions are elongated along the pleura
    density_spread: float = 0.35  # lesion density varies: each lesion's offset x exp(N(0, this)) ...
    density_patchiness: float = 0.25  # ... and within a lesion x (1 + this x smooth noise): patchy GGO
    appearance: dict[int, Appearance] = field(
        default_factory=lambda: {2: Appearance(0.15, 0.9, 0), 3: Appearance(0.40, 0.25, 0)}
    )  # GGO raises attenuation and keeps vessels; consolidation hides them (real ct-rp9 offsets: 0.146, 0.405)
    edge: tuple[float, ...] = (0.57, 0.83, 0.94)  # measured on ct-ma20-png's train slices, see the module docstring
    halo: tuple[float, ...] = (0.14, 0.02)


@dataclass(frozen=True)
class LesionModel:
    """Layout statistics and appearance of one or two annotated slices (see the module docstring)."""

    typed: bool  # GGO (2) and consolidation (3) told apart; else every lesion is label 2 "infection"
    appearance: dict[int, Appearance]
    areas: tuple[float, ...]
    elongations: tuple[float, ...]
    depths: tuple[float, ...]
    heights: tuple[float, ...]
    counts: tuple[int, ...]
    consolidation_share: float  # consolidation pixels / infection pixels
    rim_share: float  # share of consolidation components touching GGO
    slices: tuple[str, ...]
    prior_weight: float = 0.5
    prior: Prior = field(default_factory=Prior)
    edge: tuple[float, ...] | None = None  # measured edge profile (inside, outside); None: too little core, the prior's
    halo: tuple[float, ...] | None = None

    def look(self, label: int) -> Appearance:
        """The appearance used for ``label``: measured when the slices had enough of it, else the prior's."""
        measured = self.appearance.get(label)
        return measured if measured is not None else self.prior.appearance[label]

    def profile(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(edge, halo): the level of each ring inside / outside a lesion over its core's, measured or the prior's."""
        if self.edge is not None and self.halo is not None:
            return self.edge, self.halo
        return self.prior.edge, self.prior.halo

    def for_labels(self, typed: bool) -> LesionModel:
        """This model for a set that labels GGO and consolidation apart (``typed``) or not: untyped for the latter."""
        return self if typed or not self.typed else replace(self, typed=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["appearance"] = {str(k): asdict(v) for k, v in self.appearance.items()}
        data["prior"]["appearance"] = {str(k): asdict(v) for k, v in self.prior.appearance.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LesionModel:
        prior_data = dict(data["prior"])
        prior_data["appearance"] = {int(k): Appearance(**v) for k, v in prior_data["appearance"].items()}
        for key in ("depth_beta", "height_beta", "edge", "halo"):
            if key in prior_data:  # models written before the edge profile lack edge / halo: the defaults
                prior_data[key] = tuple(prior_data[key])
        tuples = {k: tuple(data[k]) for k in ("areas", "elongations", "depths", "heights", "counts", "slices")}
        profile = {k: None if data.get(k) is None else tuple(data[k]) for k in ("edge", "halo")}
        return cls(
            typed=bool(data["typed"]), appearance={int(k): Appearance(**v) for k, v in data["appearance"].items()},
            consolidation_share=float(data["consolidation_share"]), rim_share=float(data["rim_share"]),
            prior_weight=float(data["prior_weight"]), prior=Prior(**prior_data), **tuples, **profile,
        )


def scale_of(shape: tuple[int, int]) -> float:
    """Pixel lengths in this module are given at 128 px; this is the factor for an image of ``shape``."""
    return max(shape) / 128.0


def healthy_mean(image: np.ndarray, healthy: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: the Gaussian-weighted mean of ``image`` over ``healthy`` pixels, everywhere (H, W)."""
    mask = healthy.astype(np.float64)
    numerator = ndimage.gaussian_filter(image * mask, sigma)
    denominator = ndimage.gaussian_filter(mask, sigma)
    fallback = image[healthy].mean() if healthy.any() else image.mean()
    return np.where(denominator > 1e-3, numerator / np.maximum(denominator, 1e-3), fallback)


def lung_background(image: np.ndarray, label: np.ndarray) -> np.ndarray:
    """The smooth level of the healthy lung around every pixel: (H, W), same units as ``image``.

    Healthy lung is label 1 away from infection (one pixel: partial-volume edges are brighter). A
    second pass leaves out pixels more than 1.5 std above the first estimate (vessels), so that a
    vessel does not lift the level it is measured against."""
    healthy = (label == 1) & ~ndimage.binary_dilation(label >= 2)
    if not healthy.any():
        healthy = label == 1
    sigma = LUNG_MEAN_SIGMA * scale_of(image.shape)
    first = healthy_mean(image, healthy, sigma)
    above = image - first
    spread = above[healthy].std() if healthy.any() else 0.0
    parenchyma = healthy & (above <= 1.5 * spread)
    return healthy_mean(image, parenchyma, sigma) if parenchyma.sum() > 16 else first


def lung_sides(lung: np.ndarray) -> np.ndarray:
    """(H, W) bool lung -> (H, W) int8: 0 outside, 1 the image-left lung, 2 the image-right one (split at the
    lung's mean column)."""
    sides = np.zeros(lung.shape, np.int8)
    if not lung.any():
        return sides
    middle = np.nonzero(lung)[1].mean()
    columns = np.arange(lung.shape[1])[None, :]
    sides[lung & (columns < middle)] = 1
    sides[lung & (columns >= middle)] = 2
    return sides


def depth_map(lung: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """Distance from the pleura over the deepest point of each lung side: (H, W) in [0, 1], 0 outside."""
    distance = ndimage.distance_transform_edt(lung)
    depth = np.zeros(lung.shape, np.float32)
    for side in (1, 2):
        inside = sides == side
        if inside.any():
            depth[inside] = distance[inside] / max(distance[inside].max(), 1.0)
    return depth


def height_map(sides: np.ndarray) -> np.ndarray:
    """Row within each lung side: (H, W) in [0, 1], 0 at the side's top row, 1 at its bottom row."""
    height = np.zeros(sides.shape, np.float32)
    rows = np.arange(sides.shape[0], dtype=np.float32)[:, None].repeat(sides.shape[1], 1)
    for side in (1, 2):
        inside = sides == side
        if inside.any():
            top, bottom = rows[inside].min(), rows[inside].max()
            height[inside] = (rows[inside] - top) / max(bottom - top, 1.0)
    return height


def _elongation(ys: np.ndarray, xs: np.ndarray) -> float:
    if len(ys) < 3:
        return 1.0
    eigen = np.linalg.eigvalsh(np.cov(np.stack([ys, xs]).astype(np.float64)))
    return float(math.sqrt(max(eigen[1], 1e-6) / max(eigen[0], 0.25)))


def _appearance(unit: np.ndarray, label: np.ndarray, structure: np.ndarray, cls: int, scale: float) -> Appearance | None:
    region = label == cls
    healthy = label == 1
    if region.sum() < MIN_COMPONENT * scale**2 or healthy.sum() < 16:
        return None
    ring = ndimage.binary_dilation(region, iterations=max(1, round(RING * scale))) & healthy
    around = ring if ring.sum() >= 16 else healthy
    texture = float(structure[region].std() / max(structure[healthy].std(), 1e-6))
    return Appearance(offset=float(unit[region].mean() - unit[around].mean()), texture=texture, pixels=int(region.sum()))


def rings(region: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(inside, outside) (H, W) int: the 1 px ring (at 128 px, ``scale`` x wider) of every pixel counted from the
    border of ``region``: 1 for its border pixels / the pixels touching it, 0 on the other side."""
    inside = np.where(region, np.rint(ndimage.distance_transform_edt(region) / scale), 0).astype(np.int64)
    outside = np.where(region, 0, np.rint(ndimage.distance_transform_edt(~region) / scale)).astype(np.int64)
    return np.maximum(inside, region.astype(np.int64)), outside


def _edge_sums(label: np.ndarray, structure: np.ndarray, scale: float) -> np.ndarray:
    """Sums and pixel counts of ``structure`` per ring for the edge profile: (2, EDGE_RINGS + 1 + HALO_RINGS + 1)
    in the order inner rings 1..EDGE_RINGS, core, outer rings 1..HALO_RINGS, plateau."""
    region = label >= 2
    inside, outside = rings(region, scale)
    healthy = label == 1
    masks = [region & (inside == k) for k in range(1, EDGE_RINGS + 1)] + [region & (inside > EDGE_RINGS)]
    masks += [healthy & (outside == k) for k in range(1, HALO_RINGS + 1)]
    masks += [healthy & (outside >= PLATEAU_RINGS[0]) & (outside <= PLATEAU_RINGS[1])]
    return np.array([[structure[m].sum() for m in masks], [m.sum() for m in masks]], np.float64)


def _edge_profile(sums: np.ndarray, min_core: float) -> tuple[tuple[float, ...], tuple[float, ...]] | tuple[None, None]:
    """(edge, halo) from pooled ``_edge_sums``; (None, None) where the core or the plateau is too small or not above it."""
    totals, counts = sums
    core, plateau = EDGE_RINGS, EDGE_RINGS + HALO_RINGS + 1
    if counts[core] < min_core or counts[plateau] < min_core or np.any(counts == 0):
        return None, None
    level = totals / counts - totals[plateau] / counts[plateau]
    if level[core] <= 1e-6:
        return None, None
    share = np.clip(level / level[core], 0.0, 1.0)
    return tuple(round(float(v), 4) for v in share[:core]), tuple(round(float(v), 4) for v in share[core + 1 : plateau])


def learn(images: list[np.ndarray], labels: list[np.ndarray], typed: bool, slice_ids: list[str], prior_weight: float = 0.5) -> LesionModel:
    """Measure a ``LesionModel`` on annotated slices: images (H, W) in [-1, 1], labels (H, W) schema labels.

    ``typed`` False: the set does not tell GGO from consolidation and every infection is label 2.
    """
    areas, elongations, depths, heights, counts = [], [], [], [], []
    pooled: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {2: [], 3: []}
    consolidation = infection = 0
    rims = cons_components = 0
    edge_sums = np.zeros((2, EDGE_RINGS + HALO_RINGS + 2))
    for image, label in zip(images, labels):
        label = label.astype(np.int64)
        if not typed:
            label = np.where(label >= 2, 2, label)
        scale = scale_of(label.shape)
        lung = label >= 1
        sides = lung_sides(lung)
        depth, height = depth_map(lung, sides), height_map(sides)
        infected = label >= 2
        components, n = ndimage.label(infected, structure=np.ones((3, 3)))
        per_side = {1: 0, 2: 0}
        for index in range(1, n + 1):
            ys, xs = np.nonzero(components == index)
            if len(ys) < MIN_COMPONENT * scale**2:
                continue
            cy, cx = int(round(ys.mean())), int(round(xs.mean()))
            side = int(np.bincount(sides[ys, xs], minlength=3)[1:].argmax()) + 1
            per_side[side] += 1
            areas.append(len(ys) / max(int((sides == side).sum()), 1))
            elongations.append(_elongation(ys, xs))
            inside = lung[cy, cx]
            depths.append(float(depth[cy, cx]) if inside else 0.0)
            heights.append(float(height[ys, xs].mean()))
        counts += [per_side[1], per_side[2]]
        unit = (image.astype(np.float64) + 1) / 2
        structure = unit - lung_background(unit, label)
        for cls in INFECTION_LABELS:
            if (label == cls).any():
                pooled[cls].append((unit, label, structure))
        edge_sums += _edge_sums(label, structure, scale)
        consolidation += int((label == 3).sum())
        infection += int(infected.sum())
        if typed:
            cons, m = ndimage.label(label == 3, structure=np.ones((3, 3)))
            for index in range(1, m + 1):
                blob = cons == index
                cons_components += 1
                rims += bool((ndimage.binary_dilation(blob) & (label == 2)).any())
    appearance = {}
    for cls, entries in pooled.items():
        looks = [a for a in (_appearance(u, lab, r, cls, scale_of(lab.shape)) for u, lab, r in entries) if a is not None]
        if looks:
            total = sum(a.pixels for a in looks)
            appearance[cls] = Appearance(
                offset=sum(a.offset * a.pixels for a in looks) / total,
                texture=sum(a.texture * a.pixels for a in looks) / total,
                pixels=total,
            )
    scale = scale_of(labels[0].shape) if labels else 1.0
    edge, halo = _edge_profile(edge_sums, MIN_CORE * scale**2)
    return LesionModel(
        typed=typed, appearance=appearance, areas=tuple(areas), elongations=tuple(elongations), depths=tuple(depths),
        heights=tuple(heights), counts=tuple(counts), consolidation_share=consolidation / max(infection, 1),
        rim_share=rims / max(cons_components, 1), slices=tuple(slice_ids), prior_weight=prior_weight, edge=edge, halo=halo,
    )
