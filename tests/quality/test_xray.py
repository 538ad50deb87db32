"""X-ray translator sets (no label maps): paired scores against the source image, no lung / segmentation
columns, and a reference restricted to one class."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.quality.config import QualityConfig
from radsynth.quality.run import assess_quality
from radsynth.synth.export import SyntheticSlice, write_synthetic_set


def _translated(real, out):
    """'Translations' of the Normal train images: each source image brightened by 0.2 (0.1 on [0, 1])."""
    data = SliceSet(real, split="train", cache=False)
    items = []
    for i, row in enumerate(data.rows):
        if row["klass"] != "Normal":
            continue
        image = data[i][0][0].numpy()
        items.append(SyntheticSlice(image=np.clip(image + 0.2, -1, 1).astype(np.float32), label=None, patient=row["patient"], split=row["split"],
                                    slice_index=0, condition_id=row["id"], seed=0, diversifier="none", klass="COVID-19", source_file=row["source_file"]))
    info = {"scheme": "none", "has_lung": False, "seed": 0, "source_class": "Normal", "target_class": "COVID-19", "config": {"split": "train"}}
    return write_synthetic_set(out, items, "cyclegan", "0" * 64, str(real.resolve()), info), data


def test_translator_set_against_covid_reference(cxr_prepared, tmp_path):
    synth, data = _translated(cxr_prepared, tmp_path / "translated")
    config = QualityConfig(reference_class="COVID-19", kid_subsets=2, diversity_pairs=10)
    results = assess_quality(cxr_prepared, [synth], tmp_path / "out", config, features="none")
    ref = results["reference"]
    assert ref["reference_class"] == "COVID-19" and ref["images"] == sum(r["klass"] == "COVID-19" for r in data.rows)
    row = results["sets"][1]
    assert row["has_labels"] is False and row["segmentation"] == {} and row["distribution"] is None
    paired = row["paired"]
    assert "lung_only" not in paired
    n = len(SliceSet(synth, cache=False))  # every translation is compared with its source image
    assert paired["complemented"]["rmse"]["n"] == n
    # 0.1 where no pixel clipped at 1, less where one did; 1e-5 = 16-bit storage rounding
    assert 0.05 < paired["complemented"]["rmse"]["mean"] <= 0.1 + 1e-5
    assert "feature" not in row["memorisation"] and row["memorisation"]["pixel"]["n"] == n
    with pytest.raises(InputError, match="no real image of class 'Pneumonia'"):
        assess_quality(cxr_prepared, [synth], tmp_path / "out2", QualityConfig(reference_class="Pneumonia"), features="none")
