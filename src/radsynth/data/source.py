"""What every reader returns: a ``Source`` made of lazily loaded ``Unit``s of ``RawSlice``s.

A unit is what belongs to one patient in one file set (a CT volume, a DICOM series, the slices
of one volume in a PNG set, or one X-ray). Units load on demand so that inspecting or preparing
a large data set never holds more than one volume in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radsynth.data.labels import SchemeInfo


@dataclass
class RawSlice:
    """One 2D image as read, before normalisation.

    image: (H, W) float32 in the source's own units (HU, 0..4095, 0..255, ...).
    label: (H, W) uint8 in radsynth's schema, or None when the source has no masks.
    """

    image: np.ndarray
    label: np.ndarray | None
    patient: str
    index: int
    source_file: str
    klass: str | None = None
    split: str | None = None
    modality: str = ""  # acquisition group named by the source (a manifest's ``modality`` column), "" if unknown


@dataclass
class Unit:
    """The slices of one patient (volume, series or single image), read by ``load()``."""

    patient: str
    load: Callable[[], list[RawSlice]]
    klass: str | None = None
    split: str | None = None


@dataclass
class Source:
    """A data set on disk as a reader understood it.

    format: 'nifti' | 'dicom' | 'png-manifest' | 'class-folders'.
    intensity_kind: 'hu' (values are Hounsfield units), 'non-hu' (scanner or rendered values,
    normalised by percentiles), 'uint8' / 'uint16' (integer images) or 'radsynth' (a prepared or
    synthetic set, whose 16-bit values map back to [-1, 1] exactly).
    """

    path: Path
    format: str
    scheme: SchemeInfo
    intensity_kind: str
    units: list[Unit]
    notes: list[str] = field(default_factory=list)

    @property
    def patients(self) -> list[str]:
        return sorted({u.patient for u in self.units})
