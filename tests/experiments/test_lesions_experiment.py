"""`radsynth experiment lesions` in miniature on phantom data: every row trains, the report pairs patients."""

import json

import pytest
from rich.console import Console

from radsynth.data import phantom
from radsynth.data.slices import SliceSet
from radsynth.experiments.lesions import paired_table, seeds_table
from radsynth.experiments.run import run_experiment
from radsynth.experiments.stages import DONE
from test_report_html import check_page

QUIET = Console(quiet=True)
MINI = {
    "size": 32, "edits": 4, "seeds": [0, 1], "split": {"train": 0.5, "val": 0.0, "test": 0.5},
    "cosingan_settings": {"scales": [32], "generator_downs": [4], "discriminator_convs": [6], "ngf": 4, "ndf": 4, "stage1_steps": 2,
                          "stage2_steps": 1, "feature_unet_steps": 1, "sample_every": 2, "checkpoint_every": 2},
    "segment": {"size": 32, "epochs": 1, "samples_per_epoch": 8, "unet_features": [4, 4, 8, 8, 8, 4]},
}


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_lesions_experiment_trains_every_row_and_reports_paired_differences(tmp_path, preset):
    phantom.write_ct_phantom(tmp_path / "ct", 4, 6, 64, 0)
    run = tmp_path / "run"
    gap = 2.0 if preset == "full" else 0.0
    page = run_experiment("lesions", tmp_path / "ct", run, preset, {**MINI, "pleura_gap": gap}, console=QUIET)
    done = {p.parent.name for p in run.glob(f"*/{DONE}")}
    rows = ["sin", "paste", "edits", "replace", "real-edited", "oc"] + (["cosingan-masks", "cosingan-layouts"] if preset == "full" else [])
    assert {f"seg-{r}-s{s}" for r in rows for s in (0, 1)} <= done
    assert ("train-cosingan" in done) == (preset == "full")
    slice_a = json.loads((run / "choose-slice" / "slice.json").read_text())["a"]
    edits = SliceSet(run / "edit-one-add" / "set")
    assert len(edits) == 4 and {r["condition_id"] for r in edits.rows} == {slice_a}
    assert edits.info["pleura_gap"] == SliceSet(run / "edit-real-add" / "set").info["pleura_gap"] == gap  # the setting reaches the edits
    if preset == "full":
        assert SliceSet(run / "layouts" / "set").info["pleura_gap"] == gap  # ... and the layouts
    train = SliceSet(run / "prepare" / "set", "train")
    test_patients = set(SliceSet(run / "prepare" / "set", "test").patients)
    real_edited = json.loads((run / "seg-real-edited-s0" / "results.json").read_text())["training_set"]
    assert real_edited["real_images"] == real_edited["synthetic_images"] == len(train)
    assert not set(real_edited["patients"]) & test_patients
    oc = json.loads((run / "seg-oc-s0" / "results.json").read_text())["training_set"]
    assert real_edited["samples_seen"] == oc["samples_seen"]  # every row sees the same number of samples ...
    assert real_edited["epoch_order"] == "grouped" and oc["epoch_order"] == "pool"  # ... real + edited in OC-TS's order
    assert real_edited["epoch_scale"] == oc["epoch_scale"] == 1.0
    one = json.loads((run / "seg-edits-s1" / "results.json").read_text())
    assert one["seed"] == 1 and one["training_set"]["synthetic_images"] == 4 and one["training_set"]["samples_seen"] == 8
    table = seeds_table(run, json.loads((run / "experiment.json").read_text())["settings"], "infection")
    assert "| one slice + lesion edits |" in table and table.count("\n") == len(rows) + 1
    paired = paired_table(run, json.loads((run / "experiment.json").read_text())["settings"])
    assert f"of {len(test_patients)} |" in paired and "real + edited - OC-TS" in paired
    assert "one slice + lesion edits" in (run / "results.md").read_text() and "with epochs=1, samples_per_epoch=8" in (run / "results.md").read_text()
    check_page(page)


def test_experiment_set_overrides_the_segmenter_and_refuses_unknown_keys_before_any_stage(tmp_path, capsys):
    """``radsynth experiment ... --set segment.KEY=VALUE`` reaches the segmenter's config, is recorded in experiment.json,
    and a run directory started with other settings is not resumed; a key the segmenter lacks fails before anything runs."""
    from radsynth.cli import main

    phantom.write_ct_phantom(tmp_path / "ct", 4, 6, 64, 0)
    run = tmp_path / "run"
    common = ["experiment", "lesions", "--data", str(tmp_path / "ct"), "--out", str(run), "--only", "prepare", "--set", "size=32"]
    assert main(common + ["--set", "segment.class_weights=[1,1,1]", "--set", "seeds=[0]"]) == 0
    settings = json.loads((run / "experiment.json").read_text())["settings"]
    assert settings["segment"]["class_weights"] == [1, 1, 1] and settings["seeds"] == [0] and settings["size"] == 32
    assert settings["edits"] == 64  # untouched settings keep the preset's values
    assert main(common + ["--set", "segment.class_weights=[0.1,1,5]"]) == 2
    assert "different settings" in capsys.readouterr().err
    record = json.loads((run / "experiment.json").read_text())  # a folder started before a setting was added to the preset ...
    del record["settings"]["edits"]
    (run / "experiment.json").write_text(json.dumps(record))
    assert main(common + ["--set", "segment.class_weights=[1,1,1]", "--set", "seeds=[0]"]) == 0  # ... resumes at its preset value
    assert main(common + ["--set", "segment.class_weights=[1,1,1]", "--set", "seeds=[0]", "--set", "edits=8"]) == 2  # not at another
    assert "different settings" in capsys.readouterr().err
    bad = ["experiment", "lesions", "--data", str(tmp_path / "ct"), "--out", str(tmp_path / "bad"), "--set"]
    for value, message in [("segment.widths=3", "unknown key(s) widths"), ("stepz=3", "no setting stepz"),
                           ("seeds=0", "seeds must be a list"), ("segment=3", "segment must be a mapping"),
                           ("segment.class_weights=[1,1,-1]", "non-negative"), ("segment.epoch_order=grouped", "chosen per row")]:
        assert main(bad + [value]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_real_plus_edited_takes_every_edited_copy_when_some_slices_have_none(phantom_prepared, tmp_path):
    """Whole CT volumes have slices without lung, which get no lesion and so no edited copy: the real + edited row
    adds the copies there are (add:P with P = copies / real slices), not 1.0, which would ask for more than exist."""
    import csv
    import shutil

    from radsynth.evaluate.protocols import parse_spec
    from radsynth.experiments.common import DATA_RECORD
    from radsynth.experiments.lesions import _spec

    run = tmp_path / "run"
    (run / "prepare").mkdir(parents=True)
    (run / "prepare" / DATA_RECORD).write_text(json.dumps({"prepared": str(phantom_prepared)}))
    edited = run / "edit-real-add" / "set"
    shutil.copytree(phantom_prepared, edited)
    with open(edited / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    train = [r for r in rows if r["split"] == "train"]
    with open(edited / "manifest.csv", "w", newline="") as f:  # one training slice without its edited copy
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(train[1:])
    spec = parse_spec(_spec(run, "real-edited"))
    assert spec.kind == "add" and round(spec.fraction * len(train)) == len(train) - 1
