"""`radsynth train cyclegan|pix2pix-cxr` and `radsynth synth RUN --images`: the synthetic set links every
image to its source, keeps its patient and split, and the wrong input for a run is a clear error."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from radsynth.data.slices import SliceSet
from radsynth.training.checkpoint import file_sha256, latest_checkpoint

TINY_SETS = ["--set=ngf=4", "--set=ndf=4", "--set=batch_size=2", "--set=checkpoint_every=2", "--set=sample_every=2"]


def _rows(path):
    with open(path / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_synth_images_writes_linked_covid_set(cli, cyclegan_run, cxr_prepared, tmp_path):
    out = tmp_path / "gnc"
    result = cli("synth", cyclegan_run, "--images", cxr_prepared, "--out", out, "--seed", "4")
    assert result.code == 0, result.err
    assert "wrote 14 synthetic COVID-19 images (from Normal)" in result.out
    sources = {row["id"]: row for row in SliceSet(cxr_prepared, "train").rows if row["klass"] == "Normal"}
    synthetic = SliceSet(out)
    assert len(synthetic) == len(sources) == 14  # every Normal training image once (the paper's G_NC)
    checkpoint = latest_checkpoint(cyclegan_run / "train")
    assert {r["condition_id"] for r in synthetic.rows} == set(sources)
    for row in synthetic.rows:
        source = sources[row["condition_id"]]
        assert row["klass"] == "COVID-19" and row["label"] == "" and row["has_infection"] == ""
        assert (row["patient"], row["split"], row["source_file"]) == (source["patient"], "train", source["source_file"])
        assert row["model"] == "cyclegan" and row["seed"] == "4" and row["diversifier"] == "none"
        assert row["checkpoint_sha256"] == file_sha256(checkpoint)
        assert row["condition_set"] == str(cxr_prepared.resolve())
    image, label, meta = synthetic[0]
    assert image.shape == (1, 32, 32) and meta["has_label"] == "0"
    info = json.loads((out / "dataset.json").read_text())
    assert info["synthetic"] and info["scheme"] == "none" and info["target_class"] == "COVID-19" and info["slices"] == {"train": 14}
    assert "versions" in info["provenance"]
    assert not (out / "labels").exists() and not (out / "rgb").exists()
    preview = np.asarray(Image.open(out / "preview.png"))
    assert preview.shape == (2 * 32 + 2, 8 * 32 + 7 * 2, 3)  # 8 sources above their 8 translations


def test_synth_n_copies_rgb_and_other_splits(cli, cyclegan_run, cxr_prepared, tmp_path):
    out = tmp_path / "thirty"
    assert cli("synth", cyclegan_run, "--images", cxr_prepared, "--out", out, "--n", "30", "--rgb").code == 0
    rows = _rows(out)
    assert len(rows) == 30
    uses = {}
    for row in rows:
        uses.setdefault(row["condition_id"], []).append(int(row["slice_index"]))
    assert len(uses) == 14 and sorted(len(v) for v in uses.values()) == [2] * 12 + [3] * 2
    assert all(sorted(v) == list(range(len(v))) for v in uses.values())  # slice_index = copy number
    rgb = np.asarray(Image.open(out / "rgb" / "000000.png"))
    grey = np.asarray(Image.open(out / "images" / "000000.png")).astype(np.float64) / 65535 * 255
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb[..., 0] - grey).max() <= 0.51 and (rgb[..., 0] == rgb[..., 2]).all()
    # the test split only when asked for; its rows keep split 'test' so evaluation can refuse them
    test_out = tmp_path / "test"
    assert cli("synth", cyclegan_run, "--images", cxr_prepared, "--out", test_out, "--split", "test").code == 0
    test_rows = _rows(test_out)
    assert len(test_rows) == 4 and {r["split"] for r in test_rows} == {"test"}
    assert {r["patient"] for r in test_rows} <= set(SliceSet(cxr_prepared, "test").patients)


def test_wrong_inputs_are_clear_errors(cli, cyclegan_run, cxr_prepared, cxr_raw, phantom_prepared, tmp_path):
    result = cli("synth", cyclegan_run, "--conditions", cxr_prepared, "--out", tmp_path / "x")
    assert result.code == 2 and "give --images SET" in result.err
    assert "give --images SET" in cli("synth", cyclegan_run, "--out", tmp_path / "x").err
    result = cli("synth", cyclegan_run, "--images", cxr_prepared, "--out", tmp_path / "x", "--diversify", "dropout")
    assert result.code == 2 and "no dropout" in result.err
    assert cli("synth", cyclegan_run, "--images", cxr_prepared, "--out", tmp_path / "x", "--n-per-condition", "2").code == 2
    result = cli("train", "cyclegan", "--data", cxr_raw, "--out", tmp_path / "raw_run", "--steps", "2")
    assert result.code == 2 and "radsynth data prepare" in result.err
    result = cli("train", "cyclegan", "--data", cxr_prepared, "--out", tmp_path / "bad", "--source", "Viral", "--steps", "2")
    assert result.code == 2 and "no train images of class 'Viral'" in result.err
    # a mask-conditional (CT) run still takes --conditions, and refuses --images
    ct_run = tmp_path / "ct"
    assert cli("train", "pix2pix", "--data", phantom_prepared, "--out", ct_run, "--steps", "2", "--device", "cpu",
               "--set=ngf=4", "--set=ndf=4", "--set=size=32", "--set=batch_size=1").code == 0
    result = cli("synth", ct_run, "--images", cxr_prepared, "--out", tmp_path / "y")
    assert result.code == 2 and "give --conditions SET" in result.err
    assert cli("synth", ct_run, "--conditions", phantom_prepared, "--out", tmp_path / "y", "--n", "3").code == 2
    assert cli("synth", ct_run, "--conditions", phantom_prepared, "--out", tmp_path / "ct_synth", "--limit", "2").code == 0
    assert len(_rows(tmp_path / "ct_synth")) == 2


@pytest.mark.parametrize("method", ["cyclegan", "pix2pix-cxr"])
def test_train_flags_reach_the_config_and_outputs_are_not_replaced(cli, cxr_prepared, tmp_path, method):
    run = tmp_path / method
    extra = ["--balance", "none"] if method == "cyclegan" else []
    args = ["train", method, "--data", cxr_prepared, "--out", run, "--size", "32", "--steps", "2", "--device", "cpu",
            "--source", "Pneumonia", "--target", "COVID-19", *extra, *TINY_SETS]
    result = cli(*args)
    assert result.code == 0, result.err
    config = json.loads((run / "run.json").read_text())["config"]
    assert (config["source"], config["target"], config["size"], config["steps"]) == ("Pneumonia", "COVID-19", 32, 2)
    assert method != "cyclegan" or config["balance"] == "none"
    assert cli(*args).code == 2  # the run exists: no --force, no replacement
    out = tmp_path / f"{method}_synth"
    assert cli("synth", run, "--images", cxr_prepared, "--out", out).code == 0
    rows = _rows(out)
    assert len(rows) == 14 and {r["klass"] for r in rows} == {"COVID-19"} and {r["model"] for r in rows} == {method}
    sources = {r["id"]: r["klass"] for r in SliceSet(cxr_prepared).rows}
    assert {sources[r["condition_id"]] for r in rows} == {"Pneumonia"}  # G_PC: translated from Pneumonia
    assert cli("synth", run, "--images", cxr_prepared, "--out", out).code == 2  # exists, no --force
