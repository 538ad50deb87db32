"""Markdown tables of ``radsynth quality`` results (rows: the sets scored).

1. Image quality, shaped like Jiang Table II: distribution score, PSNR, SSIM, RMSE on the
   complemented image and on the lung only. The distribution column is called "FID" only for
   Inception-v3 features; domain features give "FD (domain UNet encoder)".
2. Segmentation-based quality score, shaped like CoSinGAN Table 1: mean DSC (%) of lung and
   infection per segmenter, and their mean ('Overall').
3. KID and diversity.
4. Memorisation audit.
"""

from __future__ import annotations

import math
from typing import Any

from radsynth.quality.fidelity import OFFSETS, WITHIN

DASH = "–"


def _num(value: Any, digits: int = 4, scale: float = 1.0) -> str:
    if value is None:
        return DASH
    if value == "inf":
        return "∞"
    number = float(value) * scale
    return f"{0.0 if abs(number) < 0.5 * 10**-digits else number:.{digits}f}"  # no '-0.0000'


def _score(group: dict[str, Any] | None, name: str, digits: int) -> str:
    if not group or name not in group:
        return DASH
    entry = group[name]
    text = _num(entry["mean"], digits)
    if entry.get("identical") and entry["mean"] != "inf":
        text += f" ({entry['identical']} ∞)"
    return text


def image_quality_table(results: dict[str, Any]) -> tuple[str, list[str]]:
    """Jiang Table II shape; returns (table, footnotes)."""
    fd = (results.get("extractor") or {}).get("score_name") or "FD"
    frd = bool(results.get("frd"))
    scores = f"{fd} ↓ | FRD ↓" if frd else f"{fd} ↓"
    head = (
        f"| Set | n | Complemented {scores} | PSNR ↑ | SSIM ↑ | RMSE ↓ | Lung only {scores} | PSNR ↑ | SSIM ↑ | RMSE ↓ |\n"
        "|---|---|" + "---|" * (8 + 2 * frd)
    )
    lines, notes = [head], []
    for s in results["sets"]:
        paired = s["paired"]
        dist = s.get("distribution") or {}
        cells = [s["name"], str(s["n"])]
        for group in ("complemented", "lung_only"):
            cells.append(_num((dist.get(group) or {}).get("fd"), 4))
            if frd:
                cells.append(_num((dist.get(group) or {}).get("frd"), 3))
            if "refused" in paired:
                cells += [DASH] * 3
            else:
                g = paired.get(group)
                cells += [_score(g, "psnr", 2), _score(g, "ssim", 4), _score(g, "rmse", 4)]
        if "refused" in paired and s["kind"] == "synthetic":
            notes.append(f"{s['name']}: paired scores refused: {paired['refused']}.")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), notes


def segmentation_table(results: dict[str, Any]) -> str:
    """CoSinGAN Table 1 shape: DSC (%) of lung and infection per segmenter, the mean over segmenters on each
    modality (M1 / M2, where every image names one: ``segmentation_groups``), then overall."""
    names = [s["name"] for s in results.get("segmenters", [])]
    if not names:
        return "No segmenter given (--segmenter): no segmentation-based score."
    groups = list(dict.fromkeys(g for s in results["sets"] for g in (s.get("segmentation_groups") or {})))
    head = ("| Set | " + " | ".join(f"{n} Lung | {n} Infection" for n in names)
            + "".join(f" | {g} Lung | {g} Infection" for g in groups) + " | Overall Lung | Overall Infection |")
    width = 2 * len(names) + 2 * len(groups) + 2
    lines = [head, "|---|" + "---|" * width]
    for s in results["sets"]:
        seg = s.get("segmentation") or {}
        if not seg:
            lines.append(f"| {s['name']} | " + " | ".join([DASH] * width) + " |")
            continue
        cells, overall = [], {"lung": [], "infection": []}
        for n in names:
            for region in ("lung", "infection"):
                mean = seg[n][region]["mean"]
                cells.append(_num(mean, 1, 100))
                if mean is not None:
                    overall[region].append(mean)
        for g in groups:
            by_segmenter = (s.get("segmentation_groups") or {}).get(g, {})
            for region in ("lung", "infection"):
                values = [v[region] for v in by_segmenter.values() if v.get(region) is not None]
                cells.append(_num(sum(values) / len(values), 1, 100) if values else DASH)
        cells += [_num(sum(v) / len(v), 1, 100) if v else DASH for v in overall.values()]
        lines.append(f"| {s['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def diversity_table(results: dict[str, Any]) -> str:
    head = (
        "| Set | KID ×10³ (complemented) | KID ×10³ (lung only) | MS-SSIM within ↓ | L1 within ↑ | MS-SSIM across ↓ | L1 across ↑ |\n"
        "|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for s in results["sets"]:
        dist = s.get("distribution") or {}
        cells = [s["name"]]
        for group in ("complemented", "lung_only"):
            kid = (dist.get(group) or {}).get("kid")
            cells.append(f"{kid['mean'] * 1e3:.2f} ± {kid['sd'] * 1e3:.2f}" if kid else DASH)
        for kind in ("within", "across"):
            d = s["diversity"].get(kind)
            cells += [_num(d["ms_ssim"]["mean"], 4), _num(d["l1"]["mean"], 4)] if d else [DASH, DASH]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _verdict(s: dict[str, Any]) -> str:
    flagged = [space for space, a in s["memorisation"].items() if isinstance(a, dict) and a.get("flagged")]
    if flagged:
        return "**FLAGGED** (" + ", ".join(flagged) + ")"
    if all(not isinstance(a, dict) or a.get("flagged") is None for a in s["memorisation"].values()):
        return "not calibrated"
    return "not flagged"


def memorisation_table(results: dict[str, Any]) -> str:
    head = (
        "| Set | n | pixel NN RMSE (median) | ≤ τ pixel | p pixel | feature NN (median) | ≤ τ feature | p feature | exact copies | NN = own condition | verdict |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for s in results["sets"]:
        memo = s["memorisation"]
        cells = [s["name"], str(s["n"])]
        for space in ("pixel", "feature"):
            a = memo.get(space)
            if not a:
                cells += [DASH] * 3
                continue
            share = DASH if a.get("share") is None else f"{100 * a['share']:.1f} % ({a['count']})"
            cells += [_num(a["nearest_distance"]["median"], 4), share, _num(a.get("p_value"), 3)]
        cells.append(str(memo["pixel"].get("exact_copies", DASH)))
        own = memo["pixel"].get("nn_is_condition")
        cells.append(DASH if own is None else f"{100 * own:.0f} %")
        cells.append(_verdict(s))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fidelity_table(results: dict[str, Any]) -> str:
    """Offsets of the labelled regions from lung and lung texture, each as a ratio to the real reference's."""
    ref = results["reference"].get("fidelity")
    if not ref:
        return "No label maps in the real reference: no fidelity measures."
    lines = ["| Set | GGO - lung | consolidation - lung | infection - lung | lung texture (HF energy) | GGO - lung, within images "
             "| consolidation - lung, within images | periodic grid (x 10^-3) |", "|---|---|---|---|---|---|---|---|"]

    def cell(value: float | None, ratio: float | None) -> str:
        if value is None or math.isnan(value):
            return DASH
        return f"{value:.3f}" + ("" if ratio is None or math.isnan(ratio) else f" ({ratio:.2f} x)")

    keys = (*OFFSETS, "lung_hf_energy", *WITHIN[:2])  # within images: GGO and consolidation (infection is both together)

    def grid(fid: dict[str, Any]) -> str:
        value = fid.get("grid_amplitude")
        return DASH if value is None else f"{1000 * value:.2f}"

    lines.append("| Real (reference) | " + " | ".join(cell(ref.get(k), None) for k in keys) + f" | {grid(ref)} |")
    for s in results["sets"]:
        fid = s.get("fidelity")
        if not fid:
            lines.append(f"| {s['name']} | " + " | ".join([DASH] * (len(keys) + 1)) + " |")
            continue
        lines.append(f"| {s['name']} | " + " | ".join(cell(fid.get(k), fid["ratio_to_reference"].get(k)) for k in keys) + f" | {grid(fid)} |")
    return "\n".join(lines)


def _names(names: list[str], most: int = 8) -> str:
    if not names:
        return DASH
    return ", ".join(names) if len(names) <= most else ", ".join(names[:most]) + f", ... ({len(names)} in all)"


def quality_markdown(results: dict[str, Any]) -> str:
    """The whole results.md."""
    ref = results["reference"]
    ext = results.get("extractor")
    cal = results["calibration"]
    config = results["config"]
    parts = ["# Image quality, fidelity, diversity and privacy of synthetic sets", ""]
    parts.append(
        f"Real reference: the `{ref['reference_split']}` images"
        + (f" of class `{ref['reference_class']}`" if ref.get("reference_class") else "")
        + f" of `{ref['path']}` ({ref['images']} images, patients "
        f"{_names(ref['patients'])}, {ref['size']} px). 'Real (held-out)': its other {ref['heldout_images']} images "
        f"(patients {_names(ref['heldout_patients'])}), a baseline of independent real images."
    )
    if ext:
        parts.append(
            f"Distribution features: {ext['score_name']} -- {ext['layers']} ({ext['dims']} numbers; weights {ext['source']})."
            + ("" if ext["kind"] == "inception" else " Not Inception-v3: these numbers are not comparable to published FID.")
        )
    else:
        parts.append(f"Distribution features: no network (--features {results.get('features_spec', 'none')}): no FD / KID, no feature-space audit.")
    if results.get("frd"):
        frd = results["frd"]
        most = f"at most {frd['max_images']} images per side, drawn with the seed" if frd["max_images"] else "all images"
        parts.append(
            f"FRD: Fréchet Radiomics Distance {frd['version']} ({frd['package']}): PyRadiomics features of the whole image "
            f"(lung only: inside the lung mask), {frd['normalisation']}, {frd['value']}; {most}."
        )
    table, notes = image_quality_table(results)
    parts += ["", "## Image quality (Jiang Table II)", "", table, ""]
    parts.append(
        "Complemented: the stored image -- for region-only synthesizers (global-local cGAN) the synthetic lung in the real "
        "non-lung area (Jiang's complemented image), for the others the whole synthetic image; for X-ray translators the "
        "'real image of the condition' is the source image. "
        "PSNR (dB, peak 1), SSIM (11 px Gaussian window, sigma 1.5, valid) and RMSE on [0, 1] intensities, each synthetic image "
        "against the real image of its condition, mean over images; lung only: the condition's lung (label > 0) only. "
        "∞ = identical pairs (left out of the PSNR mean and counted). The distribution score compares each set with the "
        "real reference (lung only: both sides black outside their lung)."
    )
    parts += [f"- {n}" for n in notes]
    parts += ["", "## Does the set carry the disease? (fidelity)", "", fidelity_table(results), ""]
    parts.append(
        "Mean intensity on [0, 1] of each labelled region minus that of healthy lung (label 1), pooled over every pixel of the "
        "set; lung texture: mean absolute 4-neighbour Laplacian over healthy-lung pixels whose four neighbours are lung. In "
        "brackets: the ratio to the real reference's value (1 = as real; 0 = no disease / no texture)."
    )
    parts += ["", "## Segmentation-based quality score (CoSinGAN Table 1)", "", segmentation_table(results), ""]
    if results.get("segmenters"):
        described = "; ".join(f"{s['name']}: `{s['path']}` (trained on `{s.get('trained_on')}`, {s.get('num_classes')} classes, {s.get('size')} px)" for s in results["segmenters"])
        parts.append(
            "Mean DSC (%) over images between the segmentation of each image and its condition (lung = label 1, infection = "
            f"labels 2-3; images where a class is absent from both are left out). Segmenters: {described}."
        )
    parts += ["", "## KID and diversity", "", diversity_table(results), ""]
    parts.append(
        f"KID: unbiased MMD² with the cubic polynomial kernel on the same features, {config['kid_subsets']} subsets of "
        "min(1000, set sizes) images, mean ± sd over subsets. Diversity: mean MS-SSIM and L1 ([0, 1]) over pairs of images "
        f"of the same condition (within) and of different conditions (across), at most {config['diversity_pairs']} pairs each."
    )
    parts += ["", "## Memorisation audit", "", memorisation_table(results), ""]
    pix, feat = cal.get("pixel"), cal.get("feature")
    tau = f"τ pixel = {pix['tau']:.4f} (RMSE)" if pix else "τ pixel: not calibrated"
    if feat:
        tau += f", τ feature = {feat['tau']:.4f}"
    parts.append(
        f"Nearest real reference image of every image. {tau}: the {config['calibration_quantile']:.0%} quantile of the "
        f"nearest-reference distances of {(pix or {}).get('source', 'real images')} (other patients only). A set is flagged when its count at or under τ "
        f"is improbable for independent real images (one-sided binomial test, p < {config['audit_alpha']}). Closest pairs: "
        "memorisation_<set>.png (each image, then its nearest real image). 'NN = own condition': share whose nearest real "
        "image is the real image of its own condition (expected for conditional synthesis from training masks)."
    )
    return "\n".join(parts) + "\n"
