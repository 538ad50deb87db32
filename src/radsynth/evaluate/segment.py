"""``radsynth evaluate segment``: train a segmenter on a protocol's training set, test it on real patients.

The output folder::

    segment.json                   what was asked: spec, config, data fingerprints, provenance (checked by --resume)
    train/checkpoints/             resumable training checkpoints: the newest while training, then one slim
                                   final checkpoint of the net (see training/checkpoint.py)
    log_train.csv, samples/        loss and lr per logged step; truth / prediction grids
    segmenter.safetensors + .json  the trained segmenter (``radsynth.nets.segmenter.load_segmenter``;
                                   a UNet also works as CoSinGAN's ``unet_features``)
    results.json                   every metric with its interval, per patient, per-image counts,
                                   config, seed, versions, data fingerprints, timings
    results.md                     the tables (CoSinGAN Table 4 / Jiang Tables III-IV shapes)

Nothing is replaced without ``force``; results appear only once complete.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from radsynth import distributed
from radsynth.atomic import atomic_write_text, check_output_free
from radsynth.config import config_to_dict
from radsynth.errors import InputError
from radsynth.results import read_results_file
from radsynth.evaluate.config import SegmentConfig
from radsynth.evaluate.metrics import SegmentationStats
from radsynth.evaluate.protocols import TestSet, TrainingSet, build_training_set, load_test_sets, parse_spec
from radsynth.evaluate.summary import summarise
from radsynth.evaluate.tables import results_markdown
from radsynth.evaluate.train import CLASS_NAMES, SegmenterMethod, epoch_groups, predict
from radsynth.lesions.online import OnlineLesions
from radsynth.nets.segmenter import save_segmenter
from radsynth.progress import progress_bar
from radsynth.provenance import provenance, versions
from radsynth.training.trainer import Trainer, TrainerOptions, resolve_device

RECORD = "segment.json"
RESULTS = "results.json"
TABLE = "results.md"
SEGMENTER = "segmenter.safetensors"
RESULTS_FORMAT = "radsynth-segment-results/1"


def decide_typed(choice: str, pool: TrainingSet, test: TestSet) -> bool:
    """Whether the segmenter separates GGO from consolidation (both the training and test data must)."""
    both = pool.infection_typed and test.infection_typed
    if choice == "separate" and not both:
        raise InputError("typed", "GGO / consolidation asked for, but the training or test data marks infection without its type")
    return both if choice == "auto" else choice == "separate"


def report_regions(test: TestSet, typed: bool) -> list[str]:
    """Classes to score: lung when the test set has lung masks, infection, and GGO / consolidation when typed."""
    return (["lung"] if test.has_lung else []) + ["infection"] + (["ggo", "consolidation"] if typed else [])


def _start(out: Path, record: dict, resume: bool, force: bool, record_name: str = RECORD, defaults: dict | None = None) -> None:
    """Begin (or, with ``resume``, check and continue) a run in ``out``; ``record`` is what was asked.

    ``defaults``: the config's default values; a key missing from a run started by an older radsynth reads its default."""
    path = out / record_name
    if resume and path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        previous["config"] = {**(defaults or {}), **previous.get("config", {})}
        for key in ("spec", "config", "training_ids_sha256", "test_sets", "lesion_run"):
            if previous.get(key) != record.get(key):
                raise InputError(path, f"--resume with a different {key} than the run was started with; start a new output folder")
        return
    if not resume:
        check_output_free(out, force)
        if force and out.exists():
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({**record, "provenance": provenance(record["config"]["seed"], record["config"])}, indent=2))


def _library_versions() -> dict[str, str]:
    extra = {}
    for name in ("monai", "torchmetrics", "scipy", "safetensors"):
        try:
            extra[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            extra[name] = "not installed"
    return {**versions(), **extra}


@torch.no_grad()
def score_test_set(net: torch.nn.Module, test: TestSet, regions: list[str], config: SegmentConfig, typed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Predict every test slice; returns (index (M,), counts (M, R, 4)) in test-row order."""
    stats = SegmentationStats(regions)
    offset = 0
    total = sum(len(x) for x in test.images)
    with progress_bar("testing", total) as update:
        for images, labels in zip(test.images, test.labels):
            for start in range(0, len(images), config.eval_batch_size):
                chunk = slice(start, start + config.eval_batch_size)
                pred = predict(net, images[chunk], config.size, typed, config.amp).cpu()
                stats.update(pred, labels[chunk], torch.arange(offset + start, offset + start + len(pred)))
                update(offset + start + len(pred))
            offset += len(images)
    index, counts = stats.compute()
    order = torch.argsort(index)
    return index[order].numpy(), counts[order].numpy()


def evaluate_segmentation(
    spec_text: str,
    tests: list[Path],
    out: Path,
    config: SegmentConfig,
    real: Path | None = None,
    test_split: str = "test",
    name: str | None = None,
    device: str = "auto",
    resume: bool = False,
    force: bool = False,
    console: Console | None = None,
    on_step=None,
) -> dict:
    """Build the training set of ``spec_text``, train, test on the real ``tests``; write and return results."""
    out = Path(out)
    started = time.perf_counter()
    spec = parse_spec(spec_text)
    test = load_test_sets([Path(t) for t in tests], test_split)
    pool = build_training_set(spec, Path(real) if real else Path(tests[0]), test, config.size, config.seed, name)
    epoch_groups(pool, config.epoch_order)  # refuse a grouped order the pool cannot take before anything is written
    typed = decide_typed(config.typed, pool, test)
    lesions = OnlineLesions(Path(config.lesions), config.lesion_edit, config.lesion_share, pool.infection_typed, config.seed) if config.lesions else None
    if lesions is not None:
        lesions.refuse_test_patients(test.patients)
    row_name = pool.name if lesions is None else f"{pool.name} + online lesions ({config.lesion_edit})"
    regions = report_regions(test, typed)
    torch_device = resolve_device(device)
    config_dict = config_to_dict(config)
    ids_sha = hashlib.sha256("\n".join(pool.ids).encode()).hexdigest()
    record = {
        "spec": spec.text,
        "name": row_name,
        "config": config_dict,
        "training_ids_sha256": ids_sha,
        "training_sets": [asdict(s) for s in pool.sources],
        "test_sets": [asdict(s) for s in test.sources],
    }
    if lesions is not None:
        record["lesion_run"] = {"path": str(lesions.run.resolve()), "sha256": lesions.sha256, "patients": sorted(lesions.patients)}
    distributed.on_main(lambda: _start(out, record, resume, force, defaults=config_to_dict(SegmentConfig())))  # rank 0 of a torchrun run writes

    method = SegmenterMethod(config, pool, typed, torch_device, lesions)
    options = TrainerOptions(
        steps=method.total_steps, seed=config.seed, log_every=config.log_every,
        sample_every=config.sample_every, checkpoint_every=config.checkpoint_every, phase="train",
    )
    train_start = time.perf_counter()
    Trainer(method, out, options, console=console, on_step=on_step).fit(resume=resume)
    train_s = time.perf_counter() - train_start

    def finish() -> dict:  # rank 0 saves the segmenter, tests it and writes; every rank gets the results
        info = {
            "model": config.model,
            "num_classes": method.num_classes,
            "in_channels": 1,
            "features": list(config.unet_features),
            "classes": list(CLASS_NAMES[method.num_classes]),
            "size": config.size,
            "trained_on": spec.text,
        }
        sha = save_segmenter(out / SEGMENTER, method.net, info)

        test_start = time.perf_counter()
        _, counts = score_test_set(method.net, test, regions, config, typed)
        test_s = time.perf_counter() - test_start
        metrics = summarise(counts, test.rows, regions, config.ci, config.folds, config.group_by)
        units = len(dict.fromkeys(r["unit"] for r in test.rows)) if config.ci == "patient" else config.folds
        results = {
            "format": RESULTS_FORMAT,
            "training_set": {
                "name": row_name,
                "spec": spec.text,
                "pool_size": len(pool.ids),
                "real_images": pool.real_images,
                "synthetic_images": pool.synthetic_images,
                "patients": pool.patients,
                "ids": pool.ids if len(pool.ids) <= 20 else pool.ids[:20] + [f"... {len(pool.ids) - 20} more"],
                "ids_sha256": ids_sha,
                "samples_per_epoch": method.samples_per_epoch,
                "epoch_scale": method.epoch_scale,
                "epoch_order": config.epoch_order,
                "lesion_run": record.get("lesion_run"),  # online lesions (radsynth.lesions.online), or None
                "epochs": config.epochs,
                "batch": config.batch,
                "steps": method.total_steps,
                "samples_seen": config.epochs * method.samples_per_epoch,
                "sources": [asdict(s) for s in pool.sources],
            },
            "test": {
                "split": test_split,
                "sets": [asdict(s) for s in test.sources],
                "slices": len(test.rows),
                "patients": sorted(dict.fromkeys(r["unit"] for r in test.rows)),
                "classes": regions,
                "typed": typed,
                "ci": config.ci,
                "units": units,
                "group_by": config.group_by,
            },
            "model": {"kind": config.model, **info, "parameters": sum(p.numel() for p in method.net.parameters()), "checkpoint": SEGMENTER, "sha256": sha},
            "metrics": metrics,
            "counts": {
                "columns": ["tp", "fp", "fn", "tn"],
                "regions": regions,
                "ids": [f"{r['set']}:{r['id']}" for r in test.rows],
                "values": counts.tolist(),
            },
            "config": config_dict,
            "seed": config.seed,
            "device": str(torch_device),
            "versions": _library_versions(),
            "timing": {"train_s": train_s, "test_s": test_s, "wall_s": time.perf_counter() - started, "resumed": resume},
            "provenance": provenance(config.seed, config_dict),
        }
        results = _finite_or_null(results)
        atomic_write_text(out / RESULTS, json.dumps(results, indent=1, allow_nan=False))
        atomic_write_text(out / TABLE, results_markdown(results))
        return results

    return distributed.on_main(finish)


def _finite_or_null(value):
    """NaN / inf (an undefined ratio, an interval of one unit) -> None, so results.json is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(v) for v in value]
    return value


def read_results(path: Path) -> dict:
    """results.json of an evaluation folder (or the file itself)."""
    return read_results_file(path, RESULTS, RESULTS_FORMAT)
