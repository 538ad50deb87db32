"""`radsynth demo` end to end, with the step counts cut down (the real demo runs about two minutes)."""

import json

from radsynth import demo
from radsynth.data.slices import SliceSet


def test_demo_writes_every_output(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_STEPS", 4)
    monkeypatch.setattr(demo, "DEMO_CT", {"patients": 3, "slices": 4, "size": 64})
    monkeypatch.setattr(demo, "DEMO_CXR", {"per_class": 3, "size": 32})
    monkeypatch.setattr(demo, "DEMO_COSINGAN", {**demo.DEMO_COSINGAN, "ngf": 8, "ndf": 8, "stage1_steps": 2, "stage2_steps": 2, "feature_unet_steps": 2})
    out = demo.run_demo(tmp_path / "demo")
    for name in ("ct-prepared-grid.png", "ct-real-vs-cosingan.png", "ct-real-vs-pix2pix.png", "cxr-prepared-grid.png", "cosingan-run/scales.png"):
        assert (out / name).stat().st_size > 0, name
    synthetic = SliceSet(out / "ct-synthetic-cosingan")
    assert {row["split"] for row in synthetic.rows} == {"test"} and synthetic.rows[0]["diversifier"] == "rc"
    train_patients = json.loads((out / "cosingan-run" / "run.json").read_text())["data"]["patients"]
    assert len(train_patients) == 1 and train_patients[0] not in {row["patient"] for row in synthetic.rows}
    assert sorted(SliceSet(out / "cxr-prepared").classes) == ["COVID-19", "Normal", "Pneumonia"]
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]
