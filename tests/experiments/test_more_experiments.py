"""`ct-cgan` and `cxr-pix2pix` in miniature on phantom data (32 px, a few steps)."""

import json

from rich.console import Console

from radsynth.data import phantom
from radsynth.data.slices import SliceSet
from radsynth.experiments.run import run_experiment
from radsynth.report.html import DEPARTURES_LABEL
from test_report_html import check_page

QUIET = Console(quiet=True)


def test_ct_cgan_experiment_sweeps_and_scores(tmp_path):
    phantom.write_ct_phantom(tmp_path / "ct", 5, 6, 64, 0)
    settings = {
        "size": 32, "methods": ["globallocal", "pix2pix"], "ratios": [0.5],
        "gan": {"ngf": 4, "ndf": 4, "steps": 2, "batch_size": 2, "patch_size": 16, "spade_channels": [8, 8, 8, 8], "sample_every": 2, "checkpoint_every": 2},
        "pix2pix": {"size": 32, "ngf": 4, "ndf": 4, "steps": 2, "feature_unet_steps": 1, "sample_every": 2, "checkpoint_every": 2},
        "segment": {"size": 32, "epochs": 1, "samples_per_epoch": 8, "unet_features": [4, 4, 8, 8, 8, 4], "folds": 2},
    }
    run = tmp_path / "run"
    page = run_experiment("ct-cgan", tmp_path / "ct", run, "quick", settings, console=QUIET)
    prepared = SliceSet(run / "prepare" / "set")
    assert all((prepared[i][1] >= 2).any() for i in range(len(prepared)))  # infection slices only (IV-A)
    test_ids = {r["id"] for r in prepared.rows if r["split"] == "test"}
    assert {r["condition_id"] for r in SliceSet(run / "synth-test-globallocal" / "set").rows} == test_ids
    oc = json.loads((run / "seg-0" / "results.json").read_text())["training_set"]
    replaced = json.loads((run / "seg-replace-50" / "results.json").read_text())["training_set"]
    added = json.loads((run / "seg-add-50" / "results.json").read_text())["training_set"]
    assert replaced["pool_size"] == oc["pool_size"] and replaced["synthetic_images"] == round(0.5 * oc["pool_size"])
    assert added["real_images"] == oc["real_images"] and added["synthetic_images"] == round(0.5 * oc["real_images"])
    # Jiang trains the add sweep on the larger set for the same epochs: 1.5 x the samples; replace keeps the real set's
    assert added["samples_per_epoch"] == round(1.5 * oc["samples_per_epoch"]) and replaced["samples_per_epoch"] == oc["samples_per_epoch"]
    # the pix2pix baseline as Jiang compares it: the four-label condition and the global-local step's steps and batch
    p2p = json.loads((run / "train-pix2pix" / "run.json").read_text())["config"]
    gan = json.loads((run / "train-globallocal" / "run.json").read_text())["config"]
    assert p2p["condition"] == "onehot" and p2p["augment"] == "jiang" and (p2p["steps"], p2p["batch_size"]) == (2, gan["batch_size"])
    parser = check_page(page)
    text = page.read_text()
    assert parser.tables >= 2 + 2 + 2 and "Table III" in text
    assert text.count(DEPARTURES_LABEL) == 3 and "not Inception FID" in text  # Tables II, III, IV


def test_cxr_pix2pix_balances_the_covid_class(tmp_path):
    phantom.write_cxr_phantom(tmp_path / "cxr", 6, 64, 0)
    settings = {"size": 32, "pix2pix": {"size": 32, "ngf": 4, "ndf": 4, "steps": 2, "sample_every": 2, "checkpoint_every": 2},
                "classify": {"size": 32, "epochs": 1}}
    run = tmp_path / "run"
    page = run_experiment("cxr-pix2pix", tmp_path / "cxr", run, "quick", settings, console=QUIET)
    prepared = SliceSet(run / "prepare" / "set")
    assert {r["split"] for r in prepared.rows} == {"train", "test"}  # 80 / 20, no val split
    train = [r["klass"] for r in SliceSet(run / "prepare" / "set", "train").rows]
    # Liang III-C's baseline: the original imbalanced set with each COVID-19 image used 8 times
    plain = json.loads((run / "cls-scratch-original" / "results.json").read_text())["training_set"]
    dup = json.loads((run / "cls-scratch-original-x8" / "results.json").read_text())["training_set"]
    assert plain["class_counts"]["COVID-19"] == train.count("COVID-19") > 0
    assert dup["class_counts"]["COVID-19"] == 8 * plain["class_counts"]["COVID-19"] and dup["positive_copies"] == 8
    assert {c: n for c, n in dup["class_counts"].items() if c != "COVID-19"} == {c: n for c, n in plain["class_counts"].items() if c != "COVID-19"}
    assert dup["pool_size"] == plain["pool_size"] + 7 * plain["class_counts"]["COVID-19"]
    made = len(SliceSet(run / "synth-covid" / "set").rows)
    assert made == max(1, max(train.count(c) for c in set(train)) - train.count("COVID-19"))
    result = json.loads((run / "cls-scratch-balanced" / "results.json").read_text())
    assert result["training_set"]["synthetic_images"] == made and result["task"]["classes"] == ["Normal", "Pneumonia", "COVID-19"]
    parser = check_page(page)
    assert parser.tables == 4 and "Liang et al. 2021" in page.read_text()  # x8, plain, balanced + the published table
    assert "Original imbalanced, COVID-19 x8 (from scratch)" in page.read_text()
    assert page.read_text().count(DEPARTURES_LABEL) == 1 and "real-only test split" in page.read_text()
