"""`radsynth experiment` in miniature on phantom data (32 px, a few steps): stages, resume, report."""

import json

import torch
from rich.console import Console

from radsynth.cli import main
from radsynth.data import phantom
from radsynth.data.slices import SliceSet
from radsynth.experiments.run import rebuild_report, run_experiment
from radsynth.experiments.stages import DONE
from radsynth.report.html import DEPARTURES_LABEL
from test_report_html import check_page

QUIET = Console(quiet=True)
MINI_COSINGAN = {
    "size": 32,
    "cosingan": {"scales": [32], "generator_downs": [4], "discriminator_convs": [6], "ngf": 4, "ndf": 4, "stage1_steps": 2, "stage2_steps": 1,
                 "feature_unet_steps": 1, "sample_every": 2, "checkpoint_every": 2},
    "pix2pix": {"size": 32, "ngf": 4, "ndf": 4, "steps": 2, "feature_unet_steps": 1, "sample_every": 2, "checkpoint_every": 2},
    "segment": {"size": 32, "epochs": 1, "samples_per_epoch": 8, "unet_features": [4, 4, 8, 8, 8, 4]},
    "classify": {"epochs": 1},
    "classify_sizes": [32, 32],
    "synth_limit": None,
}


def test_cosingan_experiment_runs_resumes_and_reports(tmp_path):
    phantom.write_ct_phantom(tmp_path / "ct", 5, 8, 64, 0)
    run = tmp_path / "run"
    # every stage but five of the six classifiers (each ResNet18 costs seconds; one shows the path works)
    only = ["prepare", "choose-slices", "train-*", "synth-*", "seg-*", "cls-resnet18-if-sts", "quality"]
    settings = {**MINI_COSINGAN, "detail_fusion_row": True}  # radsynth's IF-STS row beside the paper's six
    page = run_experiment("cosingan", tmp_path / "ct", run, "quick", settings, only=only, console=QUIET)
    done = sorted(p.parent.name for p in run.glob(f"*/{DONE}"))
    assert len(done) == 2 + 4 + 6 + 7 + 1 + 1 and "cls-resnet18-oc" not in done
    # 3.2's 15 / 5: a quarter of the patients for testing, rounded up (5 -> 3 / 2), no val split
    splits = {r["patient"]: r["split"] for r in SliceSet(run / "prepare" / "set").rows}
    assert sorted(splits.values()).count("test") == 2 and set(splits.values()) == {"train", "test"}
    slices = json.loads((run / "choose-slices" / "slices.json").read_text())
    assert slices["patients"][0] != slices["patients"][1]
    # the synthetic sets: one image per training condition, RC / IF diversified, IF made by both CoSinGANs
    train_ids = {r["id"] for r in SliceSet(run / "prepare" / "set", "train").rows}
    for name, diversifier in (("o-sts", "none"), ("rc-sts", "rc"), ("if-sts", "fusion"), ("if-sts-detail", "fusion")):
        rows = SliceSet(run / f"synth-{name}" / "set").rows
        assert {r["condition_id"] for r in rows} == train_ids and rows[0]["diversifier"] == diversifier
    blend, detail = (SliceSet(run / f"synth-{name}" / "set") for name in ("if-sts", "if-sts-detail"))
    assert (blend.info["model"], detail.info["model"]) == ("fusion", "fusion-detail")
    assert not all(torch.equal(blend[i][0], detail[i][0]) for i in range(len(blend)))  # the same models, fused otherwise
    seg = {n: json.loads((run / f"seg-unet-{n}" / "results.json").read_text()) for n in ("sin", "two", "oc", "if-sts", "if-sts-detail")}
    assert [seg[n]["training_set"]["real_images"] for n in ("sin", "two", "if-sts", "if-sts-detail")] == [1, 2, 0, 0]
    assert seg["oc"]["training_set"]["real_images"] == len(train_ids)
    quality = json.loads((run / "quality" / "quality" / "results.json").read_text())
    assert len(quality["sets"]) >= 3
    parser = check_page(page)
    assert parser.tables >= 2 * 3 and len(parser.images) >= 5  # Tables 4, 2, 1: ours (quality: several) + published
    text = page.read_text()
    assert "IF-STS" in text and "Zhang et al. 2020, CoSinGAN, Table 1" in text
    # one departures line beside each of Tables 4, 2 and 1 (Table 3's classifier ran not)
    assert text.count(DEPARTURES_LABEL) == 3 and "picked automatically" in text and "preset quick: 32 px classifiers" in text
    # run again: every done stage is skipped (the marker times do not change), the report is rewritten
    before = {n: (run / n / DONE).read_text() for n in done}
    run_experiment("cosingan", tmp_path / "ct", run, "quick", settings, only=only, console=QUIET)
    assert {n: (run / n / DONE).read_text() for n in done} == before
    page.unlink()
    assert main(["report", str(run)]) == 0 and page.exists()


def test_cxr_cyclegan_experiment_translates_both_ways(tmp_path):
    phantom.write_cxr_phantom(tmp_path / "cxr", 6, 64, 0)
    settings = {"size": 32, "cyclegan": {"ngf": 4, "ndf": 4, "n_blocks": 1, "steps": 2, "sample_every": 2, "checkpoint_every": 2},
                "classify": {"size": 32, "epochs": 3, "early_stop_patience": 1, "umap_points": 20}}
    run = tmp_path / "run"
    page = run_experiment("cxr-cyclegan", tmp_path / "cxr", run, "quick", settings, only=["prepare", "train-*", "synth-*", "cls-resnet18-nc-real"],
                          console=QUIET)
    prepared = SliceSet(run / "prepare" / "set")
    # Zunair 4.2: 80 / 20 by patient, no val split; early stopping (4.5) watches the training loss
    assert {r["split"] for r in prepared.rows} == {"train", "test"}
    patients = {s: {r["patient"] for r in prepared.rows if r["split"] == s} for s in ("train", "test")}
    assert (len(patients["train"]), len(patients["test"])) == (15, 3)  # 6 per class: 4.8 -> 5 train, 1 test per class
    stopping = json.loads((run / "cls-resnet18-nc-real" / "results.json").read_text())["training_set"]
    assert stopping["monitor"].startswith("training pool") and len(stopping["val_loss"]) == stopping["epochs_run"] >= 1
    for key, source in (("nc", "Normal"), ("pc", "Pneumonia")):
        rows = SliceSet(run / f"synth-g-{key}" / "set").rows
        sources = sum(1 for r in prepared.rows if r["split"] == "train" and r["klass"] == source)
        assert len(rows) == sources and {r["klass"] for r in rows} == {"COVID-19"}
    parser = check_page(page)
    assert len(parser.images) >= 2  # the two translation previews (and the classifier's figures)
    assert page.read_text().count(DEPARTURES_LABEL) == 1 and "DenseNet-121 in place" not in page.read_text()  # Table 1 only; quick has no DenseNet
    assert rebuild_report(run) == page


def test_classification_is_skipped_with_its_reason_when_the_train_split_has_no_slice_without_infection(tmp_path):
    """ct-ma20-png keeps only slices with infection: Tables 2-3 cannot run there, and the experiment says
    why instead of failing at the first classifier."""
    import csv

    from radsynth.data.detect import open_source
    from radsynth.data.prepare import PrepareOptions, prepare
    from radsynth.experiments.cosingan import classification_blocker

    phantom.write_ct_phantom(tmp_path / "ct", 4, 6, 64, 1)
    prepare(open_source(tmp_path / "ct"), tmp_path / "set", PrepareOptions(size=32, seed=1, fractions={"train": 0.5, "val": 0.0, "test": 0.5}))
    assert classification_blocker(tmp_path / "set") is None
    manifest = tmp_path / "set" / "manifest.csv"
    rows = list(csv.DictReader(manifest.open()))
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["has_infection"] == "1")
    reason = classification_blocker(tmp_path / "set")
    assert reason.startswith("the train split holds no slice without infection") and "Tables 2-3" in reason
    assert "cannot be trained" in reason
