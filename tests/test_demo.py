"""`radsynth demo` end to end, with the step counts cut down (the real demo runs a few minutes)."""

import json
from html.parser import HTMLParser

import pytest

from radsynth import demo
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError


def test_demo_writes_every_output(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_STEPS", 4)
    monkeypatch.setattr(demo, "DEMO_CT", {"patients": 3, "slices": 4, "size": 64})
    monkeypatch.setattr(demo, "DEMO_CXR", {"per_class": 3, "size": 32})
    monkeypatch.setattr(demo, "DEMO_COSINGAN", {**demo.DEMO_COSINGAN, "ngf": 8, "ndf": 8, "stage1_steps": 2, "stage2_steps": 2, "feature_unet_steps": 2})
    monkeypatch.setattr(demo, "DEMO_SEGMENT", {**demo.DEMO_SEGMENT, "size": 32, "epochs": 1, "samples_per_epoch": 8, "unet_features": (4, 4, 8, 8, 8, 4)})
    out = demo.run_demo(tmp_path / "demo")
    for name in ("ct-prepared-grid.png", "ct-real-vs-cosingan.png", "ct-real-vs-pix2pix.png", "cxr-prepared-grid.png", "cosingan-run/scales.png"):
        assert (out / name).stat().st_size > 0, name
    synthetic = SliceSet(out / "ct-synthetic-cosingan")
    assert {row["split"] for row in synthetic.rows} == {"test"} and synthetic.rows[0]["diversifier"] == "rc"
    train_patients = json.loads((out / "cosingan-run" / "run.json").read_text())["data"]["patients"]
    assert len(train_patients) == 1 and train_patients[0] not in {row["patient"] for row in synthetic.rows}
    assert sorted(SliceSet(out / "cxr-prepared").classes) == ["COVID-19", "Normal", "Pneumonia"]
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]
    # the comparison: four segmenters tested on the same held-out patients, each seeing 8 samples
    folders = ("seg-a-one-slice", "seg-b-synthetic", "seg-c-all-real", "seg-d-lesion-edits")
    results = [json.loads((out / folder / "results.json").read_text()) for folder in folders]
    assert [r["training_set"]["real_images"] for r in results[:2]] == [1, 0] and results[1]["training_set"]["synthetic_images"] > 1
    edits = SliceSet(out / "ct-lesion-edits")
    slice_id = json.loads((out / "experiment.json").read_text())["slice_id"]
    assert len(edits) == demo.DEMO_EDITS and {r["condition_id"] for r in edits.rows} == {slice_id}
    assert results[3]["training_set"]["synthetic_images"] == demo.DEMO_EDITS
    assert {r["training_set"]["samples_seen"] for r in results} == {8}
    assert len({tuple(r["test"]["patients"]) for r in results}) == 1
    table = (out / "comparison.md").read_text()
    assert all(r["training_set"]["name"] in table for r in results)

    class Page(HTMLParser):
        tables, images = 0, []

        def handle_starttag(self, tag, attrs):
            self.tables += tag == "table"
            if tag == "img":
                self.images.append(dict(attrs)["src"])

    page = Page()
    page.feed((out / "report" / "index.html").read_text())
    assert page.tables == 1 and len(page.images) >= 5 and all(src.startswith("data:image/png;base64,") for src in page.images)


def test_demo_on_a_given_prepared_set(tmp_path, monkeypatch):
    """``radsynth demo --data DIR``: the same steps on a prepared CT set (here a small phantom one), no phantom written."""
    from radsynth.data import phantom
    from radsynth.data.detect import open_source
    from radsynth.data.prepare import PrepareOptions, prepare

    phantom.write_ct_phantom(tmp_path / "raw", 3, 4, 64, 1)
    prepare(open_source(tmp_path / "raw"), tmp_path / "prepared", PrepareOptions(size=32))
    monkeypatch.setattr(demo, "DEMO_STEPS", 2)
    monkeypatch.setattr(demo, "DEMO_CT", {**demo.DEMO_CT, "size": 64})
    with pytest.raises(InputError, match="prepared at 32 px"):
        demo.run_demo(tmp_path / "refused", data=tmp_path / "prepared")
    assert not (tmp_path / "refused").exists()
    monkeypatch.setattr(demo, "DEMO_CT", {**demo.DEMO_CT, "size": 32})
    monkeypatch.setattr(demo, "DEMO_COSINGAN", {**demo.DEMO_COSINGAN, "scales": [32], "generator_downs": [4], "discriminator_convs": [6], "ngf": 4, "ndf": 4,
                                                "stage1_steps": 1, "stage2_steps": 1, "feature_unet_steps": 1})
    monkeypatch.setattr(demo, "DEMO_SEGMENT", {**demo.DEMO_SEGMENT, "size": 32, "epochs": 1, "samples_per_epoch": 4, "unet_features": (4, 4, 8, 8, 8, 4)})
    out = demo.run_demo(tmp_path / "demo", data=tmp_path / "prepared")
    names = {p.name for p in out.iterdir()}
    assert "phantom-ct" not in names and "ct-prepared" not in names and "cxr-prepared" not in names
    record = json.loads((out / "experiment.json").read_text())
    assert record["data"] == str(tmp_path / "prepared") and record["slice_id"] in {r["id"] for r in SliceSet(tmp_path / "prepared", "train").rows}
    results = json.loads((out / "seg-b-synthetic" / "results.json").read_text())
    assert results["test"]["slices"] == len(SliceSet(tmp_path / "prepared", "test").rows)
    assert (out / "report" / "index.html").exists()
