"""``radsynth quality`` end to end on phantom sets: copies are flagged, independent real images are not,
augmented conditions refuse paired scores, and the CLI writes results.json / results.md / PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from radsynth.data.slices import SliceSet
from radsynth.nets.segmenter import save_segmenter, unet_segmenter
from radsynth.quality.config import QualityConfig
from radsynth.quality.run import assess_quality
from radsynth.synth.export import SyntheticSlice, write_synthetic_set

NARROW = (4, 4, 8, 8, 16, 4)
CONFIG = QualityConfig(kid_subsets=5, diversity_pairs=30)


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory) -> Path:
    """An untrained narrow UNet: enough to exercise the domain features and the segmentation score."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("seg") / "segmenter.safetensors"
    save_segmenter(path, unet_segmenter(3, 1, NARROW), {"model": "unet", "num_classes": 3, "in_channels": 1, "features": list(NARROW), "size": 64, "trained_on": "oc"})
    return path


def _write(real: Path, out: Path, augment: str = "none", region_only: bool = False) -> Path:
    """A 'synthetic' set whose images are exact copies of the real training images of their condition."""
    data = SliceSet(real, split="train", cache=False)
    items = []
    for i, row in enumerate(data.rows):
        image, label, _ = data[i]
        image = image[0].numpy()
        lung_only = np.where(label.numpy() > 0, image, -1.0).astype(np.float32) if region_only else None
        items.append(SyntheticSlice(image=image, label=label.numpy().astype(np.uint8), patient=row["patient"], split=row["split"],
                                    slice_index=int(row["slice_index"]), condition_id=row["id"], seed=0, diversifier="none", lung_only=lung_only))
    info = {"seed": 0, "diversify": "none", "n_per_condition": 1, "size": 64, "config": {"split": "train", "augment": augment}}
    return write_synthetic_set(out, items, "copy", "0" * 64, str(real.resolve()), info)


@pytest.fixture(scope="module")
def independent(tmp_path_factory) -> Path:
    """Phantom patients generated with another seed: independent real images of the same kind."""
    from radsynth.data import phantom
    from radsynth.data.detect import open_source
    from radsynth.data.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("independent")
    phantom.write_ct_phantom(root / "ct", n_patients=2, n_slices=6, size=128, seed=11)
    prepare(open_source(root / "ct"), root / "prepared", PrepareOptions(size=64, fractions={"train": 0.5, "val": 0.0, "test": 0.5}))
    return root / "prepared"


@pytest.fixture(scope="module")
def scored(phantom_prepared64, independent, segmenter, tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    copies = _write(phantom_prepared64, root / "copies", region_only=True)
    augmented = _write(phantom_prepared64, root / "augmented", augment="jiang")
    out = root / "out"
    results = assess_quality(phantom_prepared64, [copies, independent, augmented], out, CONFIG, segmenters=[segmenter], names=["Copies", "Independent", "Augmented"])
    return results, out


def _set(results: dict, name: str) -> dict:
    return next(s for s in results["sets"] if s["name"] == name)


@pytest.mark.outcome
def test_memorisation_flags_copies_and_not_independent_real_images(scored, outcome):
    results, _ = scored
    for space in ("pixel", "feature"):
        outcome(f"independent_share_{space}", _set(results, "Independent")["memorisation"][space]["share"])
    assert results["calibration"]["pixel"]["source"].startswith("held-out real images (12)")
    copies, independent = _set(results, "Copies"), _set(results, "Independent")
    for space in ("pixel", "feature"):
        assert copies["memorisation"][space]["flagged"] is True, space
        assert copies["memorisation"][space]["share"] == 1.0
        assert independent["memorisation"][space]["flagged"] is False, (space, independent["memorisation"][space]["share"])
        assert independent["memorisation"][space]["share"] <= 0.25
    assert copies["memorisation"]["pixel"]["exact_copies"] == 12
    assert copies["memorisation"]["pixel"]["nn_is_condition"] == 1.0
    assert independent["memorisation"]["pixel"]["exact_copies"] == 0
    assert independent["kind"] == "real" and _set(results, "Real (held-out)")["kind"] == "real-heldout"


def test_copies_score_as_identical_and_their_distribution_distance_is_zero(scored):
    results, _ = scored
    copies = _set(results, "Copies")
    assert copies["region_only"] is True
    for group in ("complemented", "lung_only"):
        paired = copies["paired"][group]
        assert paired["psnr"]["mean"] == "inf" and paired["psnr"]["identical"] + paired["psnr"]["undefined"] == 12
        assert paired["rmse"]["mean"] == 0.0
        assert paired["ssim"]["mean"] == pytest.approx(1.0)
    # the copies ARE the reference: FD ~ 0; KID <= 0 (the unbiased estimate's cross term keeps k(x, x), which
    # the within-set terms leave out, so identical sets score slightly below 0), far below independent images
    independent = _set(results, "Independent")["distribution"]["complemented"]
    assert abs(copies["distribution"]["complemented"]["fd"]) < 1e-5 < 1e-3 < independent["fd"]
    assert copies["distribution"]["complemented"]["kid"]["mean"] <= 0 < independent["kid"]["mean"]


def test_augmented_conditions_refuse_paired_scores_but_keep_the_rest(scored):
    results, _ = scored
    augmented = _set(results, "Augmented")
    assert "augment=jiang" in augmented["paired"]["refused"]
    assert augmented["distribution"]["complemented"]["fd"] is not None
    assert set(augmented["segmentation"]["UNet"]) >= {"lung", "infection"}
    assert "refused" in _set(results, "Independent")["paired"]


def test_output_files_and_table(scored):
    results, out = scored
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["format"] == "radsynth-quality/1" and [s["name"] for s in on_disk["sets"]] == ["Real (held-out)", "Copies", "Independent", "Augmented"]
    for s in on_disk["sets"]:
        assert (out / s["memorisation"]["closest_pairs_png"]).stat().st_size > 0
    table = (out / "results.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| Set | n | Complemented"))
    assert "FD (domain UNet encoder)" in header and "FID" not in header
    assert "| Copies | 12 | 0.0000 | ∞ | 1.0000 | 0.0000 |" in table
    assert "**FLAGGED** (pixel, feature)" in table
    assert "Augmented: paired scores refused" in table
    fidelity_header = next(line for line in table.splitlines() if line.startswith("| Set | GGO - lung"))
    assert fidelity_header.endswith("| periodic grid (x 10^-3) |")
    copies = next(line for line in table.splitlines() if line.startswith("| Copies | ") and "x)" in line)
    reference = next(line for line in table.splitlines() if line.startswith("| Real (reference) | "))
    assert copies.rsplit("|", 2)[1] == reference.rsplit("|", 2)[1]  # copies of the real images: the same grid amplitude
    assert on_disk["extractor"]["dims"] == sum(NARROW[:5]) and on_disk["segmenters"][0]["trained_on"] == "oc"


def test_cli(cli, phantom_prepared64, independent, segmenter, tmp_path):
    out = tmp_path / "q"
    args = ["quality", "--real", phantom_prepared64, "--synth", independent, "--segmenter", segmenter.parent, "--out", out, "--preset", "quick"]
    result = cli(*args)
    assert result.code == 0, result.err
    assert "FD (domain UNet encoder)" in result.out and (out / "results.md").exists()
    again = cli(*args)
    assert again.code == 2 and "--force" in again.err
    no_segmenter = cli("quality", "--real", phantom_prepared64, "--synth", independent, "--out", tmp_path / "q2")
    assert no_segmenter.code == 2 and "--segmenter" in no_segmenter.err
    none = cli("quality", "--real", phantom_prepared64, "--synth", independent, "--features", "none", "--out", tmp_path / "q3", "--set", "reference_split=test")
    assert none.code == 0, none.err
    assert json.loads((tmp_path / "q3" / "results.json").read_text())["reference"]["reference_split"] == "test"
    bad = cli("quality", "--real", phantom_prepared64, "--synth", independent, "--features", "none", "--out", tmp_path / "q4", "--set", "audit_alpha=2")
    assert bad.code == 2 and "audit_alpha" in bad.err
