"""``radsynth evaluate classify``: train a classifier on a protocol's pool, test it on real patients.

The output folder::

    classify.json                  what was asked (spec, config, data fingerprints), checked by --resume
    train/checkpoints/, log_train.csv   resumable training (the newest checkpoint; once finished, a slim one of the net)
    early_stopping.json            validation loss per epoch (only with early stopping)
    classifier.safetensors + .json the trained classifier (``radsynth.nets.classifiers.build_classifier``)
    results.json                   every metric (pooled, per patient, 95 % t-intervals), confusion matrix,
                                   per-image probabilities, skew, initialisation, config, seed, versions
    results.md                     tables shaped like Zunair Tables 1-2, CoSinGAN Tables 2-3, Liang Table I
    figures/confidence.png, gradcam_correct.png, gradcam_wrong.png, occlusion_correct.png, occlusion_wrong.png, umap.png

Nothing is replaced without ``force``; results appear only once complete.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from safetensors.torch import save as save_safetensors

from radsynth.atomic import atomic_write_bytes, atomic_write_text
from radsynth.config import config_to_dict
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.results import read_results_file
from radsynth.evaluate.classify_config import ClassifyConfig
from radsynth.evaluate.classify_data import ClassPool, ClassSet, build_class_pool, image_class, load_class_test_set, parse_classify_spec, resolve_classes
from radsynth.evaluate.classify_figures import confidence_plot, gradcam_figure, gradcam_maps, occlusion_maps, umap_figure
from radsynth.evaluate.classify_metrics import summarise_classification
from radsynth.evaluate.classify_tables import classify_markdown
from radsynth.evaluate.saliency_check import choose_for_localisation, localisation_scores
from radsynth.evaluate.classify_train import ClassifierMethod, choose_augment, decide, mean_loss, new_classifier, predict_proba
from radsynth.evaluate.segment import _finite_or_null, _library_versions, _start
from radsynth.nets.classifiers import gradcam_layer, load_imagenet
from radsynth.provenance import provenance
from radsynth.training.trainer import Trainer, TrainerOptions, resolve_device

RECORD = "classify.json"
RESULTS = "results.json"
TABLE = "results.md"
CLASSIFIER = "classifier.safetensors"
RESULTS_FORMAT = "radsynth-classify-results/1"
EARLY = "early_stopping.json"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _save_classifier(path: Path, net: torch.nn.Module, info: dict) -> str:
    blob = save_safetensors({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()})
    digest = hashlib.sha256(blob).hexdigest()
    atomic_write_bytes(path, blob)
    atomic_write_text(path.with_suffix(".json"), json.dumps({"format": "radsynth-classifier/1", **info, "sha256": digest}, indent=1))
    return digest


class _EarlyStop(Exception):
    """Raised from the Trainer's step callback to end training early (the weights in memory are final)."""


def _train(method: ClassifierMethod, out: Path, config: ClassifyConfig, val: ClassSet | None, resume: bool, console, on_step) -> dict:
    """Run the Trainer. With early stopping, the loss on the real val split (or, without one, the
    training pool) is computed after every epoch and training stops once ``patience`` epochs passed
    without a lower value (Keras' EarlyStopping; the last weights are kept). The history is written
    to early_stopping.json each epoch; a resumed run rewrites it from its checkpoint's epoch on."""
    options = TrainerOptions(steps=method.total_steps, seed=config.seed, log_every=config.log_every,
                             sample_every=config.sample_every, checkpoint_every=config.checkpoint_every, phase="train")
    if not config.early_stop_patience:
        Trainer(method, out, options, console=console, on_step=on_step).fit(resume=resume)
        return {"epochs_run": config.epochs, "stopped_early": False}
    path = out / EARLY
    history: list[float] = json.loads(path.read_text())["val_loss"] if resume and path.exists() else []
    monitor = "real val split" if val is not None else "training pool (the real set has no val split)"
    images, targets = (val.images, val.targets) if val is not None else (method.images.cpu(), method.targets.cpu())

    def after_step(done: int) -> None:
        if done % method.steps_per_epoch == 0:
            epoch = done // method.steps_per_epoch
            history[epoch - 1 :] = [mean_loss(method.net, images, targets, config)]
            atomic_write_text(path, json.dumps({"monitor": monitor, "val_loss": history, "best": min(history)}, indent=1))
            if len(history) - 1 - int(np.argmin(history)) >= config.early_stop_patience:
                raise _EarlyStop
        if on_step is not None:
            on_step(done)

    try:
        Trainer(method, out, options, console=console, on_step=after_step).fit(resume=resume)
    except _EarlyStop:
        pass
    return {"epochs_run": len(history), "stopped_early": len(history) < config.epochs, "monitor": monitor, "val_loss": history}


def _pick(mask: np.ndarray, confidence: np.ndarray, targets: np.ndarray, n: int) -> list[int]:
    """Up to n images of ``mask``, taking the true classes in turn, the most confident of each first."""
    per_class = [list(np.flatnonzero(mask & (targets == k))[np.argsort(-confidence[mask & (targets == k)])]) for k in np.unique(targets)]
    chosen: list[int] = []
    while len(chosen) < n and any(per_class):
        for queue in per_class:
            if queue and len(chosen) < n:
                chosen.append(int(queue.pop(0)))
    return chosen


def write_figures(out: Path, net, pool: ClassPool, test: ClassSet, probs: torch.Tensor, preds: torch.Tensor, feats_test: torch.Tensor, config: ClassifyConfig, title: str) -> dict:
    """confidence.png, gradcam_{correct,wrong}.png, occlusion_{correct,wrong}.png, umap.png under out/figures; returns their names."""
    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    classes = test.classes
    targets = test.targets.numpy()
    p_pos = probs[:, -1].numpy()
    confidence_plot(folder / "confidence.png", p_pos, targets, classes, config.threshold, f"{title}: confidence per test image")
    written = {"confidence": "figures/confidence.png"}
    correct = (preds == test.targets).numpy()
    p_pred = probs.gather(1, preds[:, None])[:, 0].numpy()
    for tag, mask in (("correct", correct), ("wrong", ~correct)):
        chosen = _pick(mask, p_pred, targets, config.gradcam_examples)
        maps = gradcam_maps(net, test.images[chosen], config, preds[chosen]) if chosen else torch.zeros(0)
        captions = [f"{test.rows[i]['id']} true {classes[targets[i]]}\npred {classes[int(preds[i])]} p={p_pred[i]:.2f}" for i in chosen]
        layer = gradcam_layer(net, test.images.shape[-1])
        lesions = test.lesions[chosen] if test.lesions is not None and chosen else None
        gradcam_figure(folder / f"gradcam_{tag}.png", test.images[chosen], maps, captions, f"{title}: Grad-CAM at {layer}, {tag}ly classified", lesions)
        written[f"gradcam_{tag}"] = f"figures/gradcam_{tag}.png"
        maps = occlusion_maps(net, test.images[chosen], config, preds[chosen]) if chosen else torch.zeros(0)
        side = max(1, round(config.occlusion_size * test.images.shape[-1]))
        gradcam_figure(folder / f"occlusion_{tag}.png", test.images[chosen], maps, captions,
                       f"{title}: occlusion sensitivity ({side} px dark squares), {tag}ly classified", lesions)
        written[f"occlusion_{tag}"] = f"figures/occlusion_{tag}.png"
    rng = np.random.default_rng(config.seed)
    pick = np.sort(rng.choice(len(pool.targets), size=min(len(pool.targets), config.umap_points), replace=False))
    _, feats_pool = predict_proba(net, pool.images[pick], config)
    features = np.concatenate([feats_pool.numpy(), feats_test.numpy()])
    sources = [f"train {'synthetic' if pool.rows[i]['source'] == 'synth' else 'real'}" for i in pick] + ["test real"] * len(targets)
    labels = [classes[int(pool.targets[i])] for i in pick] + [classes[int(t)] for t in targets]
    if len(features) >= 5:
        umap_figure(folder / "umap.png", features, labels, sources, config.seed, f"{title}: UMAP of pooled features")
        written["umap"] = "figures/umap.png"
    return written


def _has_split(path: Path, split: str, classes: tuple[str, ...]) -> bool:
    """Whether the prepared set at ``path`` has an image of ``classes`` in ``split``; a broken set raises, it is not taken for an empty split."""
    if not any(row["split"] == split for row in SliceSet(path).rows):
        return False
    dataset = SliceSet(path, split=split)
    return any(image_class(dataset, i) in classes for i in range(len(dataset)))


def saliency_localisation(net, test: ClassSet, preds: torch.Tensor, config: ClassifyConfig) -> dict | None:
    """Grad-CAM and occlusion of the positive class scored against the test set's lesion masks
    (``saliency_check``); None when the set has no lesion masks, no image qualifies or it is turned off."""
    if test.lesions is None or config.localisation_images == 0:
        return None
    positive = len(test.classes) - 1
    correct_positive = ((preds == positive) & (test.targets == positive)).numpy()
    chosen = choose_for_localisation(correct_positive, test.lesions.flatten(1).sum(1).numpy(), config.localisation_images, config.seed)
    if not chosen:
        return None
    return localisation_scores(net, test.images[chosen], test.lesions[chosen], positive, config, [test.rows[i]["id"] for i in chosen])


def evaluate_classification(
    spec_text: str,
    test_path: Path,
    out: Path,
    config: ClassifyConfig,
    real: Path | None = None,
    test_split: str = "test",
    name: str | None = None,
    weights: Path | None = None,
    device: str = "auto",
    resume: bool = False,
    force: bool = False,
    figures: bool = True,
    console: Console | None = None,
    on_step=None,
) -> dict:
    """Build the pool of ``spec_text``, train, test on the real ``test_path``; write and return results."""
    out = Path(out)
    started = time.perf_counter()
    spec = parse_classify_spec(spec_text)
    classes = resolve_classes(SliceSet(test_path, split=test_split), config.class_list)
    test = load_class_test_set(Path(test_path), classes, test_split, config.size)
    real_path = Path(real) if real else Path(test_path)
    pool = build_class_pool(spec, real_path, test, config.size, config.seed, config.skew, name, config.positive_copies)
    if config.frozen_epochs and weights is None:
        raise InputError("--weights", "frozen_epochs (Liang's transfer recipe) needs ImageNet weights; without them use the 'liang' preset (from scratch)")
    if weights is not None and config.in_channels != 3:
        raise InputError("--weights", "ImageNet weights need in_channels = 3")
    val = None
    if config.early_stop_patience and _has_split(real_path, "val", classes):  # without val images of the task: the training loss
        val = load_class_test_set(real_path, classes, "val", config.size)
    torch_device = resolve_device(device)
    config_dict = config_to_dict(config)
    ids = [f"{r['source']}:{r['set']}:{r['id']}" for r in pool.rows]
    ids_sha = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    record = {
        "spec": spec.text, "name": pool.name, "config": config_dict, "training_ids_sha256": ids_sha,
        "training_sets": [asdict(s) for s in pool.sources], "test_sets": [asdict(s) for s in test.sources],
        "weights": str(Path(weights).resolve()) if weights else None,
    }
    net = new_classifier(config, len(classes))
    initialisation = {"kind": "from scratch", "note": "no ImageNet weights file given (--weights); the papers start from ImageNet"}
    if weights is not None:  # loaded (and so checked) before the output folder is made or an old one cleared
        initialisation = {"kind": "ImageNet", **load_imagenet(net, Path(weights))}
    _start(out, record, resume, force, RECORD, defaults=config_to_dict(ClassifyConfig()))
    augment = choose_augment(config.augment, pool)
    method = ClassifierMethod(config, pool, net, torch_device, augment)
    train_start = time.perf_counter()
    stopping = _train(method, out, config, val, resume, console, on_step)
    train_s = time.perf_counter() - train_start
    info = {"model": config.model, "in_channels": config.in_channels, "num_classes": len(classes), "outputs": net.fc.out_features,
            "classes": list(classes), "size": config.size, "intensity": config.intensity, "trained_on": spec.text}
    sha = _save_classifier(out / CLASSIFIER, method.net, info)

    test_start = time.perf_counter()
    probs, feats = predict_proba(method.net, test.images, config)
    preds = decide(probs, config.threshold)
    units = [r["unit"] for r in test.rows]
    metrics = summarise_classification(test.targets.tolist(), preds.tolist(), units, classes)
    test_s = time.perf_counter() - test_start
    figure_files = write_figures(out, method.net, pool, test, probs, preds, feats, config, pool.name) if figures else {}
    localisation = saliency_localisation(method.net, test, preds, config) if figures else None
    counts = pool.counts()
    results = {
        "format": RESULTS_FORMAT,
        "task": {"classes": list(classes), "positive": classes[-1], "binary": len(classes) == 2},
        "training_set": {
            "name": pool.name, "spec": spec.text, "pool_size": len(pool.rows), "real_images": pool.real_images,
            "synthetic_images": pool.synthetic_images, "class_counts": counts,
            "class_counts_synthetic": {c: sum(1 for r, t in zip(pool.rows, pool.targets.tolist()) if r["source"] == "synth" and t == k) for k, c in enumerate(classes)},
            "skew": pool.skew, "skew_target": pool.skew_target or None, "positive_copies": config.positive_copies, "notes": pool.notes,
            "patients": len(pool.patients), "ids_sha256": ids_sha, "samples_per_epoch": method.samples_per_epoch,
            "epochs": config.epochs, "batch": config.batch_size, "steps": method.total_steps,
            "steps_run": stopping["epochs_run"] * method.steps_per_epoch, "augment": augment,
            "sources": [asdict(s) for s in pool.sources], **stopping,
        },
        "test": {"split": test_split, "sets": [asdict(s) for s in test.sources], "images": len(test.rows),
                 "patients": len(set(units)), "class_counts": test.counts(), "skew": test.skew},
        "model": {"kind": config.model, **info, "parameters": sum(p.numel() for p in method.net.parameters()), "checkpoint": CLASSIFIER, "sha256": sha},
        "initialisation": initialisation,
        "metrics": metrics,
        "predictions": {"ids": [r["id"] for r in test.rows], "patients": units, "targets": test.targets.tolist(),
                        "predicted": preds.tolist(), "probabilities": probs.numpy().round(5).tolist()},
        "figures": figure_files,
        "saliency_localisation": localisation,
        "config": config_dict, "seed": config.seed, "device": str(torch_device), "versions": {**_library_versions(), "umap-learn": _version("umap-learn")},
        "timing": {"train_s": train_s, "test_s": test_s, "wall_s": time.perf_counter() - started, "resumed": resume},
        "provenance": provenance(config.seed, config_dict),
    }
    results = _finite_or_null(results)
    atomic_write_text(out / RESULTS, json.dumps(results, indent=1, allow_nan=False))
    atomic_write_text(out / TABLE, classify_markdown(results))
    return results


def read_classify_results(path: Path) -> dict:
    """results.json of a classification folder (or the file itself)."""
    return read_results_file(path, RESULTS, RESULTS_FORMAT)
