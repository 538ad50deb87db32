"""The label schema, in one place, and the mappings from each source scheme into it.

Schema (every label map inside radsynth, shape (H, W) or (Z, H, W), dtype uint8):

    0 background, 1 lung (healthy), 2 ground-glass opacity (GGO), 3 consolidation.

"Infection" is 2 ∪ 3. Infection overrides lung; infection outside the lung mask keeps its class.

Sources that only mark "infection" without a type (binary lung + infection masks) store it as 2
and say so through ``SchemeInfo.infection_typed = False``; sources without lung masks say so
through ``SchemeInfo.has_lung = False``. Downstream code that needs the GGO / consolidation
distinction or the lung must check those flags instead of trusting the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radsynth.errors import InputError

BACKGROUND = 0
LUNG = 1
GGO = 2
CONSOLIDATION = 3
INFECTION = (GGO, CONSOLIDATION)
LABEL_NAMES = {BACKGROUND: "background", LUNG: "lung", GGO: "ground-glass", CONSOLIDATION: "consolidation"}
NUM_LABELS = 4

# Coarse categories used by CoSinGAN (condition encoding, WPPL) and the segmenters:
# 0 background, 1 lung, 2 infection (GGO or consolidation).
CATEGORY_BACKGROUND = 0
CATEGORY_LUNG = 1
CATEGORY_INFECTION = 2
NUM_CATEGORIES = 3

# CoSinGAN section 3.2.1: the condition mask is encoded as background 0, lung 128, infection 255.
CONDITION_GREY_LEVELS = (0, 128, 255)
# radsynth's typed condition (CoSinGAN ``condition='typed'``): background 0, lung 128, GGO 192,
# consolidation 255, indexed by the schema label, so a set that labels both classes can teach each its
# own attenuation (the paper's three levels merge them into one infection grey).
TYPED_CONDITION_GREY_LEVELS = (0, 128, 192, 255)


@dataclass(frozen=True)
class SchemeInfo:
    """What a source scheme can and cannot tell."""

    name: str
    has_lung: bool
    infection_typed: bool
    description: str


SCHEMES = {
    "schema": SchemeInfo("schema", True, True, "0 bg, 1 lung, 2 GGO, 3 consolidation (radsynth's own; 3-class NIfTI)"),
    "lung-infection": SchemeInfo(
        "lung-infection", True, False, "binary lung mask + binary infection mask; infection stored as 2 (type unknown)"
    ),
    "medseg": SchemeInfo("medseg", False, True, "MedSeg: 0 bg, 1 GGO, 2 consolidation; no lung mask"),
    "none": SchemeInfo("none", False, False, "no masks (images only, e.g. chest X-rays or an unlabelled series)"),
}


def _check_values(values: np.ndarray, allowed: tuple[int, ...], scheme: str, where: str) -> None:
    present = np.unique(values)
    bad = sorted(set(present.tolist()) - set(allowed))
    if bad:
        raise InputError(where, f"mask values {bad} are outside the '{scheme}' scheme (allowed {list(allowed)})")


def from_schema(label: np.ndarray, where: str = "<array>") -> np.ndarray:
    """Validate a label map already in radsynth's schema; returns it as uint8."""
    _check_values(label, (0, 1, 2, 3), "schema", where)
    return label.astype(np.uint8)


def binary_mask(mask: np.ndarray, where: str = "<array>") -> np.ndarray:
    """A {0,1} or {0,255} mask (as stored in PNG) as a bool array; anything else is an error."""
    present = set(np.unique(mask).tolist())
    if present <= {0, 1} or present <= {0, 255}:
        return mask > 0
    raise InputError(where, f"binary mask expected with values {{0,1}} or {{0,255}}, found {sorted(present)[:8]}")


def from_lung_infection(lung: np.ndarray, infection: np.ndarray, where: str = "<array>") -> np.ndarray:
    """Binary lung + binary infection masks (any of {0,1}/{0,255}) -> schema label map.

    Infection of unknown type is stored as GGO (2); see ``SCHEMES['lung-infection']``.
    """
    if lung.shape != infection.shape:
        raise InputError(where, f"lung mask {lung.shape} and infection mask {infection.shape} differ in shape")
    label = np.zeros(lung.shape, dtype=np.uint8)
    label[binary_mask(lung, where)] = LUNG
    label[binary_mask(infection, where)] = GGO
    return label


def from_medseg(mask: np.ndarray, where: str = "<array>") -> np.ndarray:
    """MedSeg masks (0 bg, 1 GGO, 2 consolidation) -> schema label map (no lung label)."""
    _check_values(mask, (0, 1, 2), "medseg", where)
    label = np.zeros(mask.shape, dtype=np.uint8)
    label[mask == 1] = GGO
    label[mask == 2] = CONSOLIDATION
    return label


def to_categories(label: np.ndarray) -> np.ndarray:
    """Schema labels -> coarse categories (0 bg, 1 lung, 2 infection); works on numpy or torch."""
    return (label >= LUNG) * 1 + (label >= GGO) * 1


def has_infection(label: np.ndarray) -> bool:
    """True when a label map contains any GGO or consolidation pixel."""
    return bool((label >= GGO).any())


def histogram(label: np.ndarray) -> dict[str, int]:
    """Pixel count per schema label name."""
    counts = np.bincount(label.reshape(-1).astype(np.int64), minlength=NUM_LABELS)
    return {LABEL_NAMES[k]: int(counts[k]) for k in range(NUM_LABELS)}


def encode_condition(label: np.ndarray) -> np.ndarray:
    """Schema label map -> CoSinGAN condition image in [-1, 1] (section 3.2.1).

    Background 0, lung 128, infection 255 on the 8-bit grey scale, then scaled by x / 127.5 - 1,
    so background -1.0, lung ~0.004, infection 1.0. Same shape as ``label``, float32.
    """
    grey = np.asarray(CONDITION_GREY_LEVELS, dtype=np.float32)[to_categories(np.asarray(label)).astype(np.int64)]
    return grey / 127.5 - 1.0
