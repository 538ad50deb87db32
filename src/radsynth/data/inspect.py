"""Summarise a data set: what ``radsynth data inspect`` prints."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from radsynth.data import labels as L
from radsynth.data.source import Source

PREPARE_INTENSITY = {"hu": "hu", "non-hu": "percentile", "uint8": "range", "uint16": "percentile", "radsynth": "range"}


@dataclass
class Summary:
    """Counts and ranges of a source, as read (before normalisation)."""

    path: str
    format: str
    scheme: str
    intensity_kind: str
    prepare_intensity: str
    patients: int
    units: int
    slices: int
    image_sizes: dict[str, int]
    intensity_min: float
    intensity_max: float
    label_histogram: dict[str, int] | None
    slices_with_infection: int | None
    classes: dict[str, int] | None
    splits: dict[str, int] | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """Human-readable lines, one fact each."""
        sizes = ", ".join(f"{k} ({v})" for k, v in sorted(self.image_sizes.items(), key=lambda kv: -kv[1])[:5])
        if len(self.image_sizes) > 5:
            sizes += f", ... {len(self.image_sizes)} distinct sizes"
        out = [
            f"path: {self.path}",
            f"format: {self.format}",
            f"label scheme: {self.scheme} ({L.SCHEMES[self.scheme].description})",
            f"patients: {self.patients}",
            f"volumes/series/images: {self.units}",
            f"slices: {self.slices}",
            f"image size (HxW): {sizes}",
            f"intensity: {self.intensity_kind}, range [{self.intensity_min:g}, {self.intensity_max:g}]; "
            f"prepare would normalise by '{self.prepare_intensity}'",
        ]
        if self.label_histogram is not None:
            total = sum(self.label_histogram.values())
            shown = dict(self.label_histogram)
            if not L.SCHEMES[self.scheme].infection_typed:  # label 2 means "infection of unknown type" here
                shown = {"background": shown["background"], "lung": shown["lung"], "infection (type unknown)": shown["ground-glass"]}
            hist = ", ".join(f"{k} {v} ({100 * v / max(total, 1):.2f}%)" for k, v in shown.items())
            out.append(f"label histogram (pixels): {hist}")
            out.append(f"slices with infection: {self.slices_with_infection} of {self.slices}")
        if self.classes is not None:
            out.append("classes: " + ", ".join(f"{k} {v}" for k, v in sorted(self.classes.items())))
        if self.splits is not None:
            out.append("splits given by the source: " + ", ".join(f"{k} {v}" for k, v in sorted(self.splits.items())))
        out.extend(f"note: {n}" for n in self.notes)
        return out


def summarise(source: Source, progress: Callable[[int], None] | None = None) -> Summary:
    """Read every unit once and count; ``progress(n_done_units)`` is called after each unit."""
    sizes: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    splits: Counter[str] = Counter()
    histogram = np.zeros(L.NUM_LABELS, dtype=np.int64)
    lo, hi = np.inf, -np.inf
    n_slices = n_infected = 0
    has_labels = source.scheme.name != "none"
    for done, unit in enumerate(source.units, start=1):
        for raw in unit.load():
            n_slices += 1
            sizes[f"{raw.image.shape[0]}x{raw.image.shape[1]}"] += 1
            lo, hi = min(lo, float(raw.image.min())), max(hi, float(raw.image.max()))
            if raw.label is not None:
                histogram += np.bincount(raw.label.reshape(-1), minlength=L.NUM_LABELS)[: L.NUM_LABELS]
                n_infected += L.has_infection(raw.label)
            if raw.klass is not None:
                classes[raw.klass] += 1
            if raw.split is not None:
                splits[raw.split] += 1
        if progress:
            progress(done)
    return Summary(
        path=str(source.path),
        format=source.format,
        scheme=source.scheme.name,
        intensity_kind=source.intensity_kind,
        prepare_intensity=PREPARE_INTENSITY[source.intensity_kind],
        patients=len(source.patients),
        units=len(source.units),
        slices=n_slices,
        image_sizes=dict(sizes),
        intensity_min=float(lo),
        intensity_max=float(hi),
        label_histogram={L.LABEL_NAMES[k]: int(histogram[k]) for k in range(L.NUM_LABELS)} if has_labels else None,
        slices_with_infection=n_infected if has_labels else None,
        classes=dict(classes) if classes else None,
        splits=dict(splits) if splits else None,
        notes=list(source.notes),
    )
