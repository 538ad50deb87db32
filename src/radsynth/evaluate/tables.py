"""Markdown tables from one or more ``results.json`` files, shaped like the papers' tables.

* ``dsc_table``: CoSinGAN Table 4 - one row per training set; per model, the DSC (%) of each class
  on each subgroup ("modality"), then overall with the 95 % interval in brackets.
* ``score_table``: Jiang Tables III-IV - Dice / Sen / Spec (%) per class as mean +- 95 % half-width.
* ``patient_table``: each test patient's DSC (%), to see what the interval is made of.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from radsynth.evaluate.metrics import REGION_TITLES

MODEL_TITLES = {"unet": "UNet", "enet": "ENet"}


def _pct(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.1f}"


def _with_interval(entry: dict | None) -> str:
    if entry is None:
        return "–"
    if entry["n"] < 2:
        return f"{_pct(entry['mean'])} (n={entry['n']})"
    return f"{_pct(entry['mean'])} ({_pct(entry['lo'])}, {_pct(entry['hi'])})"


def _plus_minus(entry: dict | None) -> str:
    if entry is None or entry["mean"] is None or not math.isfinite(entry["mean"]):
        return "–"
    if entry["n"] < 2:
        return f"{_pct(entry['mean'])} (n={entry['n']})"
    return f"{100 * entry['mean']:.2f}±{100 * entry['half']:.2f}"


def _ordered(values) -> list:
    return list(dict.fromkeys(values))


def _row(results: dict) -> str:
    return results["training_set"]["name"]


def dsc_table(all_results: Sequence[dict]) -> str:
    """CoSinGAN Table 4 layout (DSC in %, one decimal)."""
    models = _ordered(r["model"]["kind"] for r in all_results)
    regions = _ordered(c for r in all_results for c in r["test"]["classes"])
    groups = {m: _ordered(g for r in all_results if r["model"]["kind"] == m for g in r["metrics"]["groups"]) for m in models}
    header = ["Training set", "Real images"]
    for m in models:
        header += [f"{MODEL_TITLES[m]} {g} {REGION_TITLES[c]}" for g in groups[m] for c in regions]
        header += [f"{MODEL_TITLES[m]} overall {REGION_TITLES[c]}" for c in regions]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in _ordered(_row(r) for r in all_results):
        mine = [r for r in all_results if _row(r) == name]
        cells = [name, str(mine[0]["training_set"]["real_images"])]
        for m in models:
            result = next((r for r in mine if r["model"]["kind"] == m), None)
            metrics = result["metrics"] if result else {"groups": {}, "overall": {}}
            for g in groups[m]:
                cells += [_pct(metrics["groups"].get(g, {}).get(c, {}).get("dsc", {}).get("mean")) for c in regions]
            cells += [_with_interval(metrics["overall"].get(c, {}).get("dsc")) for c in regions]
        lines.append("| " + " | ".join(cells) + " |")
    units = _ordered(f"{r['test']['units']} {r['test']['ci']}s" for r in all_results)
    lines.append("")
    lines.append(
        f"DSC in %. Overall: mean over {' / '.join(units)} of the test set with the 95 % Student-t interval (n - 1 degrees of freedom) "
        "in brackets, as in CoSinGAN Table 4. Real images: real slices in the segmenter's training set "
        "(a synthetic set's own synthesizer training images are not counted here)."
    )
    return "\n".join(lines)


def score_table(all_results: Sequence[dict]) -> str:
    """Jiang Tables III-IV layout: Dice, Sen, Spec (%) per class, mean ± 95 % half-width."""
    regions = _ordered(c for r in all_results for c in r["test"]["classes"])
    header = ["Training set"] + [f"{REGION_TITLES[c]} {s}" for c in regions for s in ("Dice", "Sen", "Spec")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    several_models = len({r["model"]["kind"] for r in all_results}) > 1
    for r in all_results:
        name = _row(r) + (f" ({MODEL_TITLES[r['model']['kind']]})" if several_models else "")
        overall = r["metrics"]["overall"]
        cells = [name] + [_plus_minus(overall.get(c, {}).get(s)) for c in regions for s in ("dsc", "sensitivity", "specificity")]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("In %, mean ± half-width of the 95 % Student-t interval over the CI units, as in Jiang et al. Tables III-IV.")
    return "\n".join(lines)


def patient_table(results: dict) -> str:
    """One row per test patient: slices and DSC (%) of each class."""
    regions = results["test"]["classes"]
    lines = ["| Patient | Slices | " + " | ".join(f"{REGION_TITLES[c]} DSC" for c in regions) + " |", "|" + "---|" * (2 + len(regions))]
    for patient, values in results["metrics"]["per_patient"].items():
        lines.append(f"| {patient} | {values['slices']} | " + " | ".join(_pct(values[c]["dsc"]) for c in regions) + " |")
    return "\n".join(lines)


def _order_note(ts: dict) -> str:
    """How an epoch drew the pool, where it differs from shuffles of the whole pool."""
    if ts.get("epoch_order") == "grouped":
        return " (grouped: each epoch draws the real slices as OC-TS does, each one shown as itself or one of its synthetic images)"
    return ""


def results_markdown(results: dict) -> str:
    """The results.md of one evaluation run."""
    ts, model, timing = results["training_set"], results["model"], results["timing"]
    parts = [
        f"# Segmentation evaluation: {ts['name']} ({MODEL_TITLES[model['kind']]})",
        "",
        f"Training set `{ts['spec']}`: {ts['pool_size']} slices ({ts['real_images']} real, {ts['synthetic_images']} synthetic); "
        f"{ts['epochs']} epochs of {ts['samples_per_epoch']} samples = {ts['samples_seen']} samples seen in {ts['steps']} steps of batch {ts['batch']}"
        f"{_order_note(ts)}. "
        f"Test: {results['test']['slices']} real slices of {len(results['test']['patients'])} patient(s). "
        f"Train {timing['train_s']:.0f} s, test {timing['test_s']:.1f} s.",
        "",
        "## DSC (CoSinGAN Table 4)",
        "",
        dsc_table([results]),
        "",
        "## Dice / sensitivity / specificity (Jiang Tables III-IV)",
        "",
        score_table([results]),
        "",
        "## Per test patient",
        "",
        patient_table(results),
        "",
    ]
    return "\n".join(parts)
