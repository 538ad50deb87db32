"""``radsynth quality``: every score for every set, written as results.json, results.md and PNGs.

The output folder (written atomically; never replaced without ``force``)::

    results.json                  format radsynth-quality/1: the reference, the extractor, the
                                  segmenters, the calibration, and per set: paired, distribution,
                                  segmentation, diversity and memorisation scores (with per-image
                                  values), config, seed, versions, timings
    results.md                    the tables (``tables.py``: Jiang Table II and CoSinGAN Table 1 shapes)
    memorisation_<set>.png        the closest (image, nearest real training image) pairs of each set

Rows: 'Real (held-out)' -- the ``--real`` images outside the reference split, a baseline of what
independent real images score -- then each ``--synth`` set in the order given.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from radsynth.atomic import atomic_output_dir, check_output_free
from radsynth.config import config_to_dict
from radsynth.errors import InputError
from radsynth.results import read_results_file
from radsynth.progress import progress_bar
from radsynth.provenance import provenance, versions
from radsynth.quality.config import QualityConfig
from radsynth.quality.distribution import frechet_distance, kernel_distance
from radsynth.quality.diversity import diversity
from radsynth.quality.features import Extractor, build_extractor, extract, split_features
from radsynth.quality.fidelity import fidelity, ratios
from radsynth.quality.frd import frd_description, frd_score, require_frd, subsample
from radsynth.quality.memorisation import audit, calibrate, closest_pairs, pixel_vectors
from radsynth.quality.paired import paired_scores, summarise_scores
from radsynth.quality.segscore import Segmenter, load_segmenters, segmentation_by_group, segmentation_score
from radsynth.quality.sets import ImageSet, as_numpy, augmentation_of, condition_key, load_set, lung_masked, paired_reals, resize_images
from radsynth.quality.tables import quality_markdown
from radsynth.report.grids import save_grid

RESULTS = "results.json"
TABLE = "results.md"
RESULTS_FORMAT = "radsynth-quality/1"
SEGMENTER_FILE = "segmenter.safetensors"  # what `radsynth evaluate segment --out DIR` writes
HELDOUT_NAME = "Real (held-out)"


def segmenter_path(path: Path) -> Path:
    """A segmenter checkpoint, or an ``evaluate segment`` output folder holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / SEGMENTER_FILE
    if not path.is_file():
        raise InputError(path, "is not a segmenter checkpoint (expected DIR/segmenter.safetensors from `radsynth evaluate segment`)")
    return path


def _subset(data: ImageSet, keep: list[int], name: str) -> ImageSet:
    index = torch.tensor(keep, dtype=torch.long)
    return ImageSet(
        name=name, root=data.root, images=data.images[index], labels=None if data.labels is None else data.labels[index],
        rows=[data.rows[i] for i in keep], info=data.info, lung_only=None if data.lung_only is None else data.lung_only[index],
    )


def _unique_names(names: list[str]) -> list[str]:
    out = []
    for name in names:
        candidate, k = name, 2
        while candidate in out:
            candidate, k = f"{name} ({k})", k + 1
        out.append(candidate)
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "set"


def _jsonable(value: Any) -> Any:
    """+inf -> 'inf' (a PSNR of identical images), NaN -> None, so results.json is strict JSON."""
    if isinstance(value, float):
        return "inf" if value == math.inf else "-inf" if value == -math.inf else None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class Reference:
    """The real reference (one split of --real) with what every set is compared against."""

    def __init__(self, real: ImageSet, split: str, extractor: Extractor | None, config: QualityConfig, with_frd: bool = False) -> None:
        klass = config.reference_class
        if klass and klass not in {row["klass"] for row in real.rows}:
            classes = sorted({row["klass"] for row in real.rows if row["klass"]})
            raise InputError("reference_class", f"no real image of class '{klass}' in {real.root} (classes: {', '.join(classes) or 'none'})")
        chosen = [i for i, row in enumerate(real.rows) if not klass or row["klass"] == klass]
        keep = [i for i in chosen if real.rows[i]["split"] == split]
        if not keep:
            splits = sorted({row["split"] for row in real.rows})
            raise InputError(real.root, f"has no '{split}' split to use as the real reference (splits: {', '.join(splits)})")
        self.all = real
        self.split = split
        self.klass = klass
        self.set = _subset(real, keep, f"Real ({split})")
        kept = set(keep)
        self.heldout = [i for i in chosen if i not in kept]
        self.size = real.size
        self.extractor = extractor
        self.config = config
        self.with_frd = with_frd
        self.ids = {row["id"]: k for k, row in enumerate(self.set.rows)}
        self.fidelity = fidelity(self.set.images, self.set.labels) if self.set.labels is not None else None
        self.pixels = pixel_vectors(self.set.images)
        self.features = extract(extractor, self.set.images, config.batch_size) if extractor else None
        self.lung_features = None
        if extractor and self.set.labels is not None:
            self.lung_features = extract(extractor, lung_masked(self.set.images, self.set.labels), config.batch_size)
        # calibration images: the held-out real images, else the reference itself (leave one patient out)
        calibration = _subset(real, self.heldout, "held-out") if self.heldout else self.set
        source = (
            f"held-out real images ({len(self.heldout)}) vs the reference" if self.heldout
            else "reference images vs the reference images of other patients (no held-out images)"
        )
        q = config.calibration_quantile
        self.calibration = {"pixel": calibrate(pixel_vectors(calibration.images), calibration.patients, self.pixels, self.set.patients, q, source)}
        if extractor:
            features = extract(extractor, calibration.images, config.batch_size) if self.heldout else self.features
            self.calibration["feature"] = calibrate(features, calibration.patients, self.features, self.set.patients, q, source)

    def describe(self) -> dict[str, Any]:
        rows = self.set.rows
        return {
            "path": str(self.all.root.resolve()),
            "reference_split": self.split,
            "reference_class": self.klass or None,
            "images": len(rows),
            "patients": sorted({r["patient"] for r in rows}),
            "size": self.size,
            "heldout_images": len(self.heldout),
            "heldout_patients": sorted({self.all.rows[i]["patient"] for i in self.heldout}),
            "has_labels": self.set.labels is not None,
            "fidelity": self.fidelity,
        }


def _paired(data: ImageSet) -> dict[str, Any]:
    real, why = paired_reals(data)
    if real is None:
        return {"refused": why}
    out: dict[str, Any] = {"against": "the real image of each condition (condition_set / condition_id), at the synthetic size"}
    groups = {"complemented": (data.images, real, None)}
    if data.labels is not None:
        synthetic_lung = data.lung_only if data.lung_only is not None else data.images
        groups["lung_only"] = (synthetic_lung, real, data.labels > 0)
    for group, (synthetic, target, mask) in groups.items():
        values = paired_scores(synthetic, target, mask)
        out[group] = {name: summarise_scores(v) for name, v in values.items()}
        out[group]["per_image"] = {"rmse": values["rmse"].tolist(), "ssim": values["ssim"].tolist()}
    return out


def _distribution(reference: Reference, images: Tensor, lung_images: Tensor | None) -> dict[str, Any] | None:
    extractor, config = reference.extractor, reference.config
    if extractor is None:
        return None
    out: dict[str, Any] = {}
    groups = {"complemented": (reference.features, images)}
    if lung_images is not None and reference.lung_features is not None:
        groups["lung_only"] = (reference.lung_features, lung_images)
    features = None
    for group, (real_features, set_images) in groups.items():
        fake = extract(extractor, set_images, config.batch_size)
        if group == "complemented":
            features = fake
        if len(fake) < 2 or len(real_features) < 2:
            out[group] = {"why_not": "needs at least 2 images on each side"}
            continue
        out[group] = {
            "fd": frechet_distance(real_features, fake),
            "kid": kernel_distance(real_features, fake, config.kid_subsets, config.kid_subset_size, config.kid_degree, config.seed),
        }
    out["_features"] = features
    return out


def _frd(reference: Reference, images: Tensor, labels: Tensor | None, lung_images: Tensor | None) -> dict[str, dict[str, Any]]:
    """FRD of a set's images (at the reference size) against the reference: whole image, and the lung only
    (lung-masked images, features inside the lung mask) when both sides have labels."""
    config, real = reference.config, reference.set
    keep_real = subsample(len(real.images), config.frd_max_images, config.seed, salt=0)
    keep = subsample(len(images), config.frd_max_images, config.seed, salt=1)
    sizes = {"frd_n_real": len(keep_real), "frd_n": len(keep)}
    out = {"complemented": {"frd": frd_score(real.images[keep_real], images[keep]), **sizes}}
    if lung_images is not None and labels is not None and real.labels is not None:
        real_lung = lung_masked(real.images[keep_real], real.labels[keep_real])
        out["lung_only"] = {"frd": frd_score(real_lung, lung_images[keep], real.labels[keep_real] > 0, labels[keep] > 0), **sizes}
    return out


def _own_reference(data: ImageSet, reference: Reference) -> list[int | None] | None:
    """Reference index of each synthetic image's own condition image, when its condition set is the real set."""
    if not data.synthetic:
        return None
    own = [reference.ids.get(row["condition_id"]) if _conditioned_on_real(row, reference) else None for row in data.rows]
    return own if any(v is not None for v in own) else None


def _conditioned_on_real(row: dict[str, str], reference: Reference) -> bool:
    """Whether a synthetic row's condition comes from the real set of ``reference``."""
    return bool(row.get("condition_set")) and Path(row["condition_set"]).resolve() == reference.all.root.resolve()


def _modality_of_each(data: ImageSet, reference: Reference) -> list[str] | None:
    """Each image's modality (a real row's own; a synthetic row's condition's, where its condition set is the
    real set), or None unless every image has one (CoSinGAN Table 1's M1 / M2 columns)."""
    by_id = {row["id"]: row.get("modality", "") for row in reference.all.rows}
    if not data.synthetic:
        found = [row.get("modality", "") for row in data.rows]
    else:
        found = [by_id.get(row["condition_id"], "") if _conditioned_on_real(row, reference) else "" for row in data.rows]
    return found if found and all(found) else None


def _memorisation(data: ImageSet, images: Tensor, features: Tensor | None, reference: Reference) -> dict[str, Any]:
    config = reference.config
    own = _own_reference(data, reference)
    out = {"pixel": audit(pixel_vectors(images), reference.pixels, reference.calibration["pixel"], config.audit_alpha, config.copy_rmse, own)}
    if features is not None:
        out["feature"] = audit(features, reference.features, reference.calibration.get("feature"), config.audit_alpha, None, own)
    return out


def _closest_png(path: Path, images: Tensor, reference: Reference, pixel: dict[str, Any], k: int) -> list[dict[str, Any]]:
    pairs = closest_pairs(pixel, k)
    panels = []
    for i, r, _ in pairs:
        panels += [as_numpy(images[i]), as_numpy(reference.set.images[r])]
    save_grid(path, panels, columns=4)
    return [{"image": i, "reference_id": reference.set.rows[r]["id"], "reference_patient": reference.set.rows[r]["patient"], "rmse": d} for i, r, d in pairs]


SCORE_PARTS = 5  # paired, distribution, segmentation, diversity, memorisation: the progress units of one set


def score_set(data: ImageSet, kind: str, reference: Reference, segmenters: list[Segmenter],
              part_done: Callable[[], None] = lambda: None) -> tuple[dict[str, Any], Tensor]:
    """All scores of one set; returns (the JSON-ready dict, its images at the reference size for the PNG).
    ``part_done()`` after each of the ``SCORE_PARTS`` parts (progress)."""
    config = reference.config
    started = time.perf_counter()
    images, labels = data.at_size(reference.size)
    lung_images = None
    if labels is not None:  # the lung-only synthesis when the set has one, else the image, black outside the lung
        source = data.lung_only if data.lung_only is not None else data.images
        lung_images = lung_masked(resize_images(source, reference.size), labels)
    result: dict[str, Any] = {
        "name": data.name,
        "kind": kind,
        "path": str(data.root.resolve()),
        "n": len(data.rows),
        "size": data.size,
        "model": data.info.get("model"),
        "augment": augmentation_of(data.info) if data.synthetic else None,
        "diversifier": data.info.get("diversify"),
        "patients": sorted({r["patient"] for r in data.rows}),
        "splits": sorted({r["split"] for r in data.rows}),
        "has_labels": labels is not None,
        "region_only": data.lung_only is not None,
    }
    result["paired"] = _paired(data) if kind != "real-heldout" else {"refused": "real images: nothing to pair with"}
    part_done()
    distribution = _distribution(reference, images, lung_images)
    features = distribution.pop("_features") if distribution else None
    if reference.with_frd:
        distribution = distribution or {}
        for group, values in _frd(reference, images, labels, lung_images).items():
            distribution.setdefault(group, {}).update(values)
    result["distribution"] = distribution
    part_done()
    result["segmentation"] = (
        {s.name: segmentation_score(s, data.images, data.labels, batch_size=config.batch_size) for s in segmenters}
        if data.labels is not None else {}
    )
    groups = _modality_of_each(data, reference)
    if groups and result["segmentation"]:
        result["segmentation_groups"] = segmentation_by_group(result["segmentation"], groups)
    part_done()
    if labels is not None and reference.fidelity is not None:
        measured = fidelity(data.images, data.labels)
        result["fidelity"] = {**measured, "ratio_to_reference": ratios(measured, reference.fidelity)}
    result["diversity"] = diversity(data.images, [condition_key(r) for r in data.rows], config.diversity_pairs, config.seed)
    part_done()
    result["memorisation"] = _memorisation(data, images, features, reference)
    part_done()
    result["ids"] = [r["id"] for r in data.rows]
    result["timing_s"] = time.perf_counter() - started
    return result, images


def _library_versions() -> dict[str, str]:
    extra = {}
    for name in ("torchmetrics", "monai", "scipy", "torch-fidelity"):
        try:
            extra[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            extra[name] = "not installed"
    return {**versions(), **extra}


def assess_quality(
    real: Path,
    synth: list[Path],
    out: Path,
    config: QualityConfig | None = None,
    segmenters: list[Path] | None = None,
    features: str = "domain",
    names: list[str] | None = None,
    device: str = "cpu",
    force: bool = False,
    log=None,
) -> dict[str, Any]:
    """Score every ``synth`` set (and the held-out real images) against ``real``; write ``out``; return the results."""
    from radsynth.training.trainer import resolve_device

    config = config or QualityConfig()
    out = Path(out)
    check_output_free(out, force)
    if names and len(names) != len(synth):
        raise InputError("--name", f"{len(names)} names for {len(synth)} --synth sets (give one per set, in order)")
    started = time.perf_counter()
    torch_device = resolve_device(device)
    say = log or (lambda text: None)
    segmenter_paths = [segmenter_path(p) for p in (segmenters or [])]
    extractor_spec, with_frd = split_features(features)
    if with_frd:
        require_frd()
    extractor = build_extractor(extractor_spec, segmenter_paths)
    if extractor is not None:
        extractor = replace(extractor, module=extractor.module.to(torch_device))
    loaded = load_segmenters(segmenter_paths)
    for s in loaded:
        s.net.to(torch_device)

    say(f"reading the real set {real}")
    real_set = load_set(Path(real), name="Real")
    reference = Reference(real_set, config.reference_split, extractor, config, with_frd)
    sets: list[tuple[ImageSet, str]] = []
    if config.heldout_row and reference.heldout:
        sets.append((_subset(real_set, reference.heldout, HELDOUT_NAME), "real-heldout"))
    set_names = _unique_names([HELDOUT_NAME] * bool(sets) + (names or [Path(p).name for p in synth]))[len(sets):]
    for path, name in zip(synth, set_names):
        say(f"reading {path}")
        data = load_set(Path(path), name=name)
        sets.append((data, "synthetic" if data.synthetic else "real"))

    scored = []
    with progress_bar("scoring sets (5 parts each)", SCORE_PARTS * len(sets)) as update:
        parts = [0]

        def part_done() -> None:
            parts[0] += 1
            update(parts[0])

        for data, kind in sets:
            say(f"scoring {data.name} ({len(data.rows)} images)")
            scored.append(score_set(data, kind, reference, loaded, part_done))

    results = {
        "format": RESULTS_FORMAT,
        "reference": reference.describe(),
        "extractor": None if extractor is None else {
            "kind": extractor.kind, "score_name": extractor.score_name, "source": extractor.source,
            "sha256": extractor.sha256, "dims": extractor.dims, "layers": extractor.layers,
        },
        "features_spec": features,
        "frd": {**frd_description(), "max_images": config.frd_max_images} if with_frd else None,
        "segmenters": [s.describe() for s in loaded],
        "calibration": reference.calibration,
        "sets": [],
        "config": config_to_dict(config),
        "seed": config.seed,
        "device": str(torch_device),
        "versions": _library_versions(),
        "provenance": provenance(config.seed, config_to_dict(config)),
    }
    with atomic_output_dir(out, force) as tmp:
        for result, images in scored:
            png = f"memorisation_{_slug(result['name'])}.png"
            result["memorisation"]["closest_pairs"] = _closest_png(tmp / png, images, reference, result["memorisation"]["pixel"], config.closest_pairs)
            result["memorisation"]["closest_pairs_png"] = png
            results["sets"].append(result)
        results["timing"] = {"wall_s": time.perf_counter() - started}
        results = _jsonable(results)
        (tmp / RESULTS).write_text(json.dumps(results, indent=1, allow_nan=False), encoding="utf-8")
        (tmp / TABLE).write_text(quality_markdown(results), encoding="utf-8")
    return results


def read_results(path: Path) -> dict[str, Any]:
    """results.json of a ``radsynth quality`` folder (or the file itself)."""
    return read_results_file(path, RESULTS, RESULTS_FORMAT)
