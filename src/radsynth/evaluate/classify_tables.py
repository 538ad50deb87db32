"""Markdown tables of classification results, shaped like the papers' tables.

* ``zunair_table``: Zunair & Hamza Tables 1-2 - per training set: SEN (%) and FN of the positive
  class and the training skew.
* ``cosingan_table``: CoSinGAN Tables 2-3 - sensitivity, specificity, accuracy with the 95 %
  t-interval over test patients in brackets.
* ``liang_table``: Liang et al. Table I - accuracy, then precision / recall / F1 per class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MODEL_TITLES = {"resnet18": "ResNet18", "resnet50": "ResNet-50", "vgg16": "VGG-16", "densenet121": "DenseNet-121"}


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def _interval(point: float | None, entry: dict) -> str:
    if entry["n"] < 2 or entry["lo"] is None:
        return f"{_num(point)} (NaN, NaN)"
    return f"{_num(point)} ({_num(entry['lo'])}, {_num(entry['hi'])})"


def _label(r: dict, several: bool) -> str:
    return r["training_set"]["name"] + (f" ({MODEL_TITLES[r['model']['kind']]})" if several else "")


def zunair_table(all_results: Sequence[dict]) -> str:
    several = len({r["model"]["kind"] for r in all_results}) > 1
    lines = ["| Training set | Model | Positive | SEN (%) | FN | Skew | Real / synthetic images |", "|---|---|---|---|---|---|---|"]
    for r in all_results:
        positive = r["task"]["positive"]
        c = r["metrics"]["pooled"]["per_class"][positive]
        sen = None if c["sensitivity"] is None else 100 * c["sensitivity"]
        ts = r["training_set"]
        lines.append(f"| {_label(r, several)} | {MODEL_TITLES[r['model']['kind']]} | {positive} | {_num(sen, 2)} | {c['fn']} | {_num(ts['skew'], 2)} | {ts['real_images']} / {ts['synthetic_images']} |")
    lines += ["", "SEN: sensitivity of the positive class; FN: its false negatives on the test set; Skew: negatives / positives "
              "in the training set (Zunair & Hamza eq. 6), as in their Tables 1-2."]
    return "\n".join(lines)


def cosingan_table(all_results: Sequence[dict]) -> str:
    several = len({r["model"]["kind"] for r in all_results}) > 1
    lines = ["| Training set | Real images | Sensitivity | Specificity | Accuracy |", "|---|---|---|---|---|"]
    for r in all_results:
        m = r["metrics"]
        positive = r["task"]["positive"]
        pooled, intervals = m["pooled"]["per_class"][positive], m["intervals"]["per_class"][positive]
        cells = [
            _interval(intervals["sensitivity"]["mean"], intervals["sensitivity"]),
            _interval(intervals["specificity"]["mean"], intervals["specificity"]),
            _interval(m["intervals"]["accuracy"]["mean"], m["intervals"]["accuracy"]),
        ]
        pooled_cells = f"{_num(pooled['sensitivity'])} | {_num(pooled['specificity'])} | {_num(m['pooled']['accuracy'])} |"
        if r["config"].get("ci", True):
            lines.append(f"| {_label(r, several)} | {r['training_set']['real_images']} | " + " | ".join(cells) + " |")
            lines.append(f"| (pooled over all test images) | | {pooled_cells}")
        else:  # the recipe's paper gives no intervals: all test images pooled
            lines.append(f"| {_label(r, several)} | {r['training_set']['real_images']} | {pooled_cells}")
    units = sorted({str(r["metrics"]["units"]) for r in all_results})
    lines += ["", f"Mean over the {' / '.join(units)} test patients with the 95 % Student-t interval (n - 1 degrees of freedom) in brackets, "
              "as in CoSinGAN Tables 2-3 (a score undefined for a patient, e.g. sensitivity without positives, is left out of its mean; "
              "NaN when fewer than 2 patients define it)."]
    return "\n".join(lines)


def liang_table(results: dict) -> str:
    classes = results["task"]["classes"]
    per = results["metrics"]["pooled"]["per_class"]
    lines = ["| Measure | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    lines.append(f"| Accuracy | {_num(results['metrics']['pooled']['accuracy'])} |" + " |" * (len(classes) - 1))
    for score, title in (("precision", "Precision"), ("recall", "Recall"), ("f1", "F1 score"), ("specificity", "Specificity"), ("fn", "False negatives")):
        lines.append(f"| {title} | " + " | ".join(str(per[c][score]) if score == "fn" else _num(per[c][score]) for c in classes) + " |")
    return "\n".join(lines)


def confusion_table(results: dict) -> str:
    classes = results["task"]["classes"]
    lines = ["| true \\ predicted | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    for name, row in zip(classes, results["metrics"]["confusion_matrix"]):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def localisation_table(loc: dict) -> str:
    """Grad-CAM and occlusion scored against the lesion masks (``saliency_check``) as Markdown."""
    head = (f"{loc['images']} correctly classified positive test images with a lesion mask; the lesion covers "
            f"{_num(100 * loc['lesion_area'], 1)} % of the image on average, so a map blind to it puts about that share there.")
    rows = ["| Explanation | Mass in lesion (95 % CI over images) | Mass / area | Peak in lesion |", "|---|---|---|---|"]
    for name, title in (("gradcam", f"Grad-CAM ({loc['gradcam']['layer']})"), ("occlusion", f"Occlusion ({loc['occlusion']['square_px']} px squares)")):
        entry = loc[name]
        lo, hi = entry["interval"]
        ci = f" ({_num(lo)}, {_num(hi)})" if lo is not None and hi is not None else ""
        rows.append(f"| {title} | {_num(entry['mass_in_lesion'])}{ci} | {_num(entry['mass_over_area'], 1)} | {_num(entry['pointing_game'], 2)} |")
    text = head + "\n\n" + "\n".join(rows)
    peaks = [loc[name]["pointing_game"] for name in ("gradcam", "occlusion")]
    if all(p is not None and p < 0.5 for p in peaks):
        text += ("\n\nNeither explanation peaks inside the lesion on most of these images: the classifier may decide by "
                 "something other than the disease (where in the body the image lies, the scanner, the patient's age).")
    return text


def classify_markdown(results: dict) -> str:
    """The results.md of one classification run."""
    ts, test, timing = results["training_set"], results["test"], results["timing"]
    init = results["initialisation"]
    stopping = f", stopped early after {ts['epochs_run']} epochs ({ts['steps_run']} steps)" if ts.get("stopped_early") else ""
    parts = [
        f"# Classification evaluation: {ts['name']} ({MODEL_TITLES[results['model']['kind']]}, {' vs '.join(results['task']['classes'])})",
        "",
        f"Training set `{ts['spec']}`: {ts['pool_size']} images ({ts['real_images']} real, {ts['synthetic_images']} synthetic), "
        f"classes {ts['class_counts']}, skew {_num(ts['skew'], 2)}; {ts['epochs']} epochs of {ts['samples_per_epoch']} samples in "
        f"{ts['steps']} steps of batch {ts['batch']}{stopping}; augmentation {ts['augment']}; initialisation: {init['kind']}. "
        f"Test: {test['images']} real images of {test['patients']} patient(s), classes {test['class_counts']}. "
        f"Train {timing['train_s']:.0f} s, test {timing['test_s']:.1f} s.",
        "",
        "## Sensitivity, false negatives, skew (Zunair & Hamza Tables 1-2)",
        "",
        zunair_table([results]),
        "",
        "## Sensitivity, specificity, accuracy (CoSinGAN Tables 2-3)",
        "",
        cosingan_table([results]),
        "",
        "## Per class (Liang et al. Table I)",
        "",
        liang_table(results),
        "",
        "## Confusion matrix",
        "",
        confusion_table(results),
        "",
    ]
    if results.get("saliency_localisation"):
        parts += ["## Do the explanations sit on the lesion?", "", localisation_table(results["saliency_localisation"]), ""]
    if results.get("figures"):
        parts += ["## Figures", ""] + [f"![{k}]({v})" for k, v in results["figures"].items()] + [""]
    return "\n".join(parts)
