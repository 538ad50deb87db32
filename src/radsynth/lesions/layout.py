"""New infection label maps for any lung, drawn from a ``LesionModel``.

A layout is a (H, W) uint8 map of the NEW lesions only (0 elsewhere, 2 GGO / infection, 3
consolidation), every lesion pixel inside the lung. Per lesion:

1. its lung side and count (``counts`` measured, or the prior's 1 + Poisson; bilateral with the
   prior's probability);
2. its centre: a lung pixel drawn with weight density(depth) x density(height), each density a
   kernel estimate over the measured values mixed with the prior's Beta (``prior_weight``);
3. its shape: an ellipse of the drawn area (a measured area jittered x exp(N(0, 0.3)), or the prior's
   log-normal) and elongation, long axis along the pleura (perpendicular to the gradient of the
   distance from the pleura), its boundary deformed by smooth noise, clipped to the lung;
4. typed models: a consolidation core in a share of lesions (GGO rim around it), sized so that
   consolidation's share of the infection matches the model's;
5. its density: one slice shows one density per class, real lesions vary, so each lesion's offset
   is scaled by exp(N(0, ``density_spread``)) and, within the lesion, by (1 + ``density_patchiness``
   x smooth noise) (``Layout.density``; denser lesions also show fewer vessels, see ``edit``).

``pleura_gap`` (optional, px at 128 px): new lesions keep more than this distance from the lung's border; each
lesion is clipped to the lung pixels that far inside (its centre and shape are drawn as above). Measured on
ct-ma20 (README, issue 22): lesions added against the pleura teach a segmenter to call the chest wall
infection; kept 3 px off it, real + edited gained 5.9 infection DSC points at the paper's loss weights and 1.4
at (1, 1, 2), and lost 1.5 under plain cross-entropy, where the segmenter under-calls.

``burden`` (optional): the layout's total lesion area in px. The drawn areas of step 3 are scaled
together so that they sum to it; overlaps and clipping to the lung remove pixels, so every lesion's
implicit function is then cut at one common level other than 1 (the same draws, every ellipse grown or
shrunk alike) until the union covers the burden: a re-laid-out slice keeps the amount of infection it
had (``EditOptions(..., burden="same")``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.stats import beta as beta_distribution

from radsynth.lesions.model import LesionModel, depth_map, height_map, lung_sides, scale_of

KERNEL_WIDTH = 0.1  # kernel density bandwidth on the [0, 1] depth / height axes
BOUNDARY_NOISE = 0.6  # amplitude of the smooth noise added to the ellipse's implicit function
MIN_LUNG_PIXELS = 64  # at 128 px (scaled by area): a lung side smaller than this gets no lesion


def _density(values: tuple[float, ...], prior: tuple[float, float], weight: float, grid: np.ndarray) -> np.ndarray:
    """Mixture of the prior Beta pdf and a Gaussian kernel estimate over ``values``, evaluated on ``grid``."""
    prior_pdf = beta_distribution.pdf(np.clip(grid, 1e-3, 1 - 1e-3), *prior)
    if not values:
        return prior_pdf
    measured = np.asarray(values)[:, None]
    kde = np.exp(-0.5 * ((grid[None, :] - measured) / KERNEL_WIDTH) ** 2).mean(0) / (KERNEL_WIDTH * math.sqrt(2 * math.pi))
    return weight * prior_pdf + (1 - weight) * kde


def _count(model: LesionModel, rng: np.random.Generator) -> int:
    if model.counts and rng.random() >= model.prior_weight:
        return int(rng.choice(model.counts))
    return 1 + int(rng.poisson(model.prior.lesions_per_side - 1))


def _area(model: LesionModel, rng: np.random.Generator) -> float:
    if model.areas and rng.random() >= model.prior_weight:
        return float(rng.choice(model.areas)) * math.exp(rng.normal(0, 0.3))
    return model.prior.area_median * math.exp(rng.normal(0, model.prior.area_sigma))


def _elongation(model: LesionModel, rng: np.random.Generator) -> float:
    if model.elongations and rng.random() >= model.prior_weight:
        return max(1.0, float(rng.choice(model.elongations)))
    return max(1.0, model.prior.elongation * math.exp(rng.normal(0, 0.3)))


def _smooth_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return noise / max(noise.std(), 1e-6)


def _blob(shape: tuple[int, int], centre: tuple[int, int], area: float, elongation: float, angle: float,
          rng: np.random.Generator) -> np.ndarray:
    """Implicit function f (H, W) of a deformed ellipse: f < 1 inside. Computed in a crop around ``centre``."""
    minor = math.sqrt(area / (math.pi * elongation))
    major = minor * elongation
    reach = int(math.ceil(1.8 * major)) + 2
    y0, y1 = max(centre[0] - reach, 0), min(centre[0] + reach + 1, shape[0])
    x0, x1 = max(centre[1] - reach, 0), min(centre[1] + reach + 1, shape[1])
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dy, dx = ys - centre[0], xs - centre[1]
    along = dx * math.cos(angle) + dy * math.sin(angle)
    across = -dx * math.sin(angle) + dy * math.cos(angle)
    inner = (along / major) ** 2 + (across / minor) ** 2
    inner += BOUNDARY_NOISE * _smooth_noise(inner.shape, max(minor / 2, 1.0), rng) * np.sqrt(inner).clip(0.3, 1.5) / 1.5
    implicit = np.full(shape, np.inf, np.float32)
    implicit[y0:y1, x0:x1] = inner
    return implicit


def _centres(label: np.ndarray, model: LesionModel, rng: np.random.Generator) -> tuple[list[tuple[int, int, int]], dict[int, int]]:
    """Lesion centres (side, row, column) drawn as steps 1-2 of the module docstring, and each side's lung pixels."""
    lung = label >= 1
    scale = scale_of(label.shape)
    sides = lung_sides(lung)
    side_sizes = {s: int((sides == s).sum()) for s in (1, 2)}
    usable = [s for s in (1, 2) if side_sizes[s] >= MIN_LUNG_PIXELS * scale**2]
    if not usable:
        return [], side_sizes
    depth, height = depth_map(lung, sides), height_map(sides)
    grid = np.linspace(0, 1, 101)
    depth_pdf = _density(model.depths, model.prior.depth_beta, model.prior_weight, grid)
    height_pdf = _density(model.heights, model.prior.height_beta, model.prior_weight, grid)
    weights = depth_pdf[np.round(depth * 100).astype(int)] * height_pdf[np.round(height * 100).astype(int)] * lung
    counts = {s: _count(model, rng) for s in usable}
    if len(usable) == 2 and rng.random() >= model.prior.bilateral and sum(counts.values()) > 0:
        counts[usable[int(rng.integers(2))]] = 0  # unilateral layout
    if sum(counts.values()) == 0:
        counts[usable[int(rng.integers(len(usable)))]] = 1  # every layout has a lesion
    centres = []
    for side, count in counts.items():
        side_weights = (weights * (sides == side)).ravel()
        if side_weights.sum() <= 0:
            continue
        for flat in rng.choice(side_weights.size, size=count, p=side_weights / side_weights.sum()):
            centres.append((side, *divmod(int(flat), label.shape[1])))
    return centres, side_sizes


def lesion_centres(label: np.ndarray, model: LesionModel, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(row, column) of the lesions a layout of this lung would hold (for pasting real lesions there)."""
    return [(cy, cx) for _, cy, cx in _centres(label, model, rng)[0]]


@dataclass(frozen=True)
class Layout:
    """New lesions of one lung: ``labels`` (H, W) uint8 0 / 2 / 3 inside the lung; ``density`` (H, W) float32,
    the factor on each lesion pixel's class offset (1 outside lesions)."""

    labels: np.ndarray
    density: np.ndarray


def _lesion_area(model: LesionModel, rng: np.random.Generator, side_pixels: int) -> float:
    """One lesion's drawn area in px (step 3): a share of its lung side's pixels, at most half of them."""
    return min(_area(model, rng), 0.5) * side_pixels


BURDEN_PASSES = 8  # cuts of a layout with a ``burden``: each next one rescales the cut level by target / drawn
BURDEN_TOLERANCE = 0.03  # a drawn burden this close (relative) to the target ends the search


def lesion_room(label: np.ndarray, pleura_gap: float = 0.0) -> np.ndarray:
    """(H, W) bool: the lung pixels (labels >= 1) a new lesion may cover, those more than ``pleura_gap`` px (at 128 px)
    from the lung's border; the whole lung for a gap of 0."""
    if pleura_gap < 0:
        raise ValueError(f"pleura_gap must be >= 0 px, got {pleura_gap}")
    lung = label >= 1
    if pleura_gap == 0:
        return lung
    return ndimage.distance_transform_edt(lung) > pleura_gap * scale_of(label.shape)


def sample_layout(label: np.ndarray, model: LesionModel, rng: np.random.Generator, burden: float | None = None,
                  pleura_gap: float = 0.0) -> Layout:
    """(H, W) schema label map (its lung = labels >= 1) -> the ``Layout`` of new lesions inside that lung, more than
    ``pleura_gap`` px (at 128 px) from its border.

    ``burden``: the lesions' total area in px (see the module docstring); 0 gives an empty layout. The centres
    and areas are drawn once; the lesions are drawn again from the same random state with the implicit
    functions cut at level ``c`` (area grows about as ``c``), ``c`` rescaled by target / drawn, up to
    ``BURDEN_PASSES`` times; the closest layout is kept."""
    empty = Layout(np.zeros(label.shape, np.uint8), np.ones(label.shape, np.float32))
    if burden is not None and burden <= 0:
        return empty
    centres, side_sizes = _centres(label, model, rng)
    if not centres:
        return empty
    lung = label >= 1
    room = lesion_room(label, pleura_gap)
    distance = ndimage.gaussian_filter(ndimage.distance_transform_edt(lung), 2.0 * scale_of(label.shape))
    normals = np.gradient(distance)
    if burden is None:
        return _draw_lesions(label, model, rng, centres, side_sizes, normals, room)
    drawn_areas = [_lesion_area(model, rng, side_sizes[side]) for side, _, _ in centres]
    areas = [a * burden / max(sum(drawn_areas), 1e-6) for a in drawn_areas]  # scaled together to sum to the burden
    start = rng.bit_generator.state
    level, best, best_state, best_gap = 1.0, empty, start, math.inf
    for _ in range(BURDEN_PASSES):
        rng.bit_generator.state = start
        layout = _draw_lesions(label, model, rng, centres, side_sizes, normals, room, areas, level)
        drawn = int((layout.labels >= 2).sum())
        if abs(drawn - burden) < best_gap:
            best, best_state, best_gap = layout, rng.bit_generator.state, abs(drawn - burden)
        if drawn == 0 or best_gap <= BURDEN_TOLERANCE * burden:
            break
        level *= burden / drawn
    rng.bit_generator.state = best_state
    return best


def _draw_lesions(label: np.ndarray, model: LesionModel, rng: np.random.Generator, centres: list[tuple[int, int, int]],
                  side_sizes: dict[int, int], normals: list[np.ndarray], room: np.ndarray, areas: list[float] | None = None,
                  level: float = 1.0) -> Layout:
    """Steps 3-5 of the module docstring for each of ``centres`` (side, row, column): its area is ``areas``' entry
    in px, or drawn from its lung side's pixels; every lesion is the set where its implicit function is below
    ``level``, within ``room`` (``lesion_room``). ``normals``: the gradient (rows, columns) of the smoothed
    distance from the pleura."""
    scale = scale_of(label.shape)
    out = np.zeros(label.shape, np.uint8)
    density = np.ones(label.shape, np.float32)
    normal_y, normal_x = normals
    for index, (side, cy, cx) in enumerate(centres):
        area = _lesion_area(model, rng, side_sizes[side]) if areas is None else areas[index]
        angle = math.atan2(normal_y[cy, cx], normal_x[cy, cx]) + math.pi / 2  # long axis along the pleura
        implicit = _blob(label.shape, (cy, cx), max(area, 4 * scale**2), _elongation(model, rng), angle, rng)
        lesion = (implicit < level) & room
        if not lesion.any():
            continue
        fresh = lesion & (out == 0)
        out[fresh] = 2
        patchy = 1 + model.prior.density_patchiness * _smooth_noise(label.shape, 2.0 * scale, rng)
        density[fresh] = (math.exp(rng.normal(0, model.prior.density_spread)) * np.clip(patchy, 0.3, None))[fresh]
        if model.typed and model.consolidation_share > 0 and rng.random() < min(1.0, 2 * model.consolidation_share):
            core_share = min(0.8, model.consolidation_share / min(1.0, 2 * model.consolidation_share))
            threshold = float(np.quantile(implicit[lesion], core_share))
            out[lesion & (implicit <= threshold)] = 3
    return Layout(out, density)
