"""CoSinGAN's protocol where it meets the data: the 3 : 1 patient split (3.2) and Tables 2-3 on a second set
when the main one (like ct-ma20-png) has no slice without infection."""

import json
from pathlib import Path

import pytest
from rich.console import Console

from radsynth.data import phantom
from radsynth.data.detect import open_source
from radsynth.data.prepare import PrepareOptions, assign_splits, prepare
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.experiments.cosingan import SKIPPED, split_fractions
from radsynth.experiments.run import run_experiment
from radsynth.report.html import DEPARTURES_LABEL
from test_experiments import MINI_COSINGAN
from test_report_html import check_page

QUIET = Console(quiet=True)
MA20 = Path("/work/shared/data/ct-ma20-png")


@pytest.mark.skipif(not (MA20 / "manifest.csv").exists(), reason="needs the shared ct-ma20-png set")
def test_split_leaves_four_test_patients_on_ct_ma20_png():
    """ct-ma20-png has 14 volumes: 70 / 10 / 20 left 3 test patients, a quarter rounded up leaves 4 (20 scans: 15 / 5)."""
    source = open_source(MA20)
    patients = set(source.patients)
    splits, _ = assign_splits(source, PrepareOptions(fractions=split_fractions(len(patients))))
    counts = {s: list(splits.values()).count(s) for s in ("train", "val", "test")}
    assert len(patients) == 14 and counts == {"train": 10, "val": 0, "test": 4}
    assert split_fractions(20)["test"] * 20 == pytest.approx(5)


def _infection_only(tmp_path: Path) -> Path:
    """A prepared phantom set with only slices with infection (as ct-ma20-png)."""
    phantom.write_ct_phantom(tmp_path / "ct", 5, 8, 64, 0)
    source = open_source(tmp_path / "ct")
    out = tmp_path / "infection-only"
    prepare(source, out, PrepareOptions(size=32, seed=0, keep="infection", fractions=split_fractions(len(set(source.patients)))))
    assert {r["has_infection"] for r in SliceSet(out).rows} == {"1"}
    return out


def test_tables_2_and_3_run_on_the_classification_set(tmp_path):
    main = _infection_only(tmp_path)
    phantom.write_ct_phantom(tmp_path / "ct2", 4, 8, 64, 1)
    run = tmp_path / "run"
    settings = {**MINI_COSINGAN, "classify_data": str(tmp_path / "ct2")}
    only = ["prepare", "tables23-*", "cls-resnet18-sin", "cls-large-resnet18-if-sts"]
    page = run_experiment("cosingan", main, run, "quick", settings, only=only, console=QUIET)
    second = SliceSet(run / "tables23-prepare" / "set")
    assert {r["has_infection"] for r in second.rows} == {"0", "1"}
    splits = {r["patient"]: r["split"] for r in second.rows}
    assert sorted(splits.values()) == ["test", "train", "train", "train"]  # 4 patients: 3 / 1
    for stage in ("cls-resnet18-sin", "cls-large-resnet18-if-sts"):
        assert not (run / stage / SKIPPED).exists()
        result = json.loads((run / stage / "results.json").read_text())
        assert result["test"]["sets"][0]["path"] == str((run / "tables23-prepare" / "set").resolve())
    fused = json.loads((run / "cls-large-resnet18-if-sts" / "results.json").read_text())["training_set"]
    assert fused["real_images"] == 0 and set(fused["class_counts"]) == {"absent", "present"} and min(fused["class_counts"].values()) > 0
    text = page.read_text()
    assert "Table 2, 32 px" in text and "Table 3, 32 px" in text and "Not run" not in text and "Zhang et al. 2020, CoSinGAN, Table 3" in text
    assert text.count(DEPARTURES_LABEL) == 2 and "run on a second set (ct2)" in text
    check_page(page)


def test_a_classification_set_without_both_classes_is_refused_before_training(tmp_path):
    main = _infection_only(tmp_path)
    with pytest.raises(InputError, match="no slice without infection"):
        run_experiment("cosingan", main, tmp_path / "run", "quick", {**MINI_COSINGAN, "classify_data": str(main)}, console=QUIET)
    assert not (tmp_path / "run" / "train-cosingan-a").exists()
    with pytest.raises(InputError, match="no setting classify_data"):
        run_experiment("cxr-pix2pix", main, tmp_path / "run2", "quick", {"classify_data": str(main)}, console=QUIET)


def test_cpu_preset_renames_nothing_and_trains_the_measured_cosingan():
    """The ``cpu`` preset names every setting the paper preset names (the report and --classify-data read them), trains
    CoSinGAN's ``cpu`` preset (quick's schedule at twice the steps, resize upsampling, carried weights) and a longer segmenter."""
    from radsynth.config import build_config
    from radsynth.experiments.cosingan import PRESETS
    from radsynth.synth import cosingan

    assert set(PRESETS["cpu"]) == set(PRESETS["paper"]) == set(PRESETS["quick"])
    cpu = build_config(cosingan.CoSinGANConfig, cosingan.PRESETS, PRESETS["cpu"]["cosingan_preset"], {})
    quick = build_config(cosingan.CoSinGANConfig, cosingan.PRESETS, "quick", {})
    assert (cpu.upsample, cpu.reuse_weights, quick.upsample, quick.reuse_weights) == ("resize", True, "transpose", False)
    assert (cpu.stage1_steps, cpu.stage2_steps) == (2 * quick.stage1_steps, 2 * quick.stage2_steps)
    same = {"upsample", "reuse_weights", "stage1_steps", "stage2_steps", "sample_every", "checkpoint_every"}
    assert {k: v for k, v in vars(cpu).items() if k not in same} == {k: v for k, v in vars(quick).items() if k not in same}
    samples = {name: PRESETS[name]["segment"]["epochs"] * PRESETS[name]["segment"]["samples_per_epoch"] for name in ("quick", "cpu")}
    assert samples["cpu"] == 8 * samples["quick"]
