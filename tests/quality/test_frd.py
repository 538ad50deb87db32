"""FRD (Fréchet Radiomics Distance) in ``radsynth quality``: the spec, the missing-package error
everywhere, and (where frd-score and PyRadiomics are installed) real values."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from radsynth.errors import InputError
from radsynth.quality.config import QualityConfig
from radsynth.quality.features import split_features
from radsynth.quality.frd import FRD_INSTALL, frd_missing, require_frd, subsample


def test_features_spec_takes_frd_alone_or_after_one_network():
    assert split_features("frd") == ("none", True)
    assert split_features("domain,frd") == ("domain", True)
    assert split_features("inception:/w/pt_inception.pth,frd") == ("inception:/w/pt_inception.pth", True)
    assert split_features("domain") == ("domain", False)
    with pytest.raises(InputError, match="2 feature networks"):
        split_features("domain,none,frd")


def test_subsample_is_seeded_sorted_and_capped():
    assert subsample(5, 0, seed=0) == [0, 1, 2, 3, 4] and subsample(5, 9, seed=0) == [0, 1, 2, 3, 4]
    picked = subsample(100, 10, seed=3)
    assert len(picked) == 10 and picked == sorted(picked) and len(set(picked)) == 10
    assert picked == subsample(100, 10, seed=3) and picked != subsample(100, 10, seed=4)
    with pytest.raises(ValueError, match="frd_max_images"):
        QualityConfig(frd_max_images=-1)


def test_missing_package_is_one_error_naming_the_pip_commands(cli, monkeypatch, phantom_prepared, tmp_path):
    monkeypatch.setitem(sys.modules, "frd_score", None)  # import frd_score now raises ImportError, installed or not
    assert frd_missing() == "frd-score"
    with pytest.raises(InputError, match="pip install --no-build-isolation pyradiomics"):
        require_frd()
    result = cli("quality", "--real", phantom_prepared, "--synth", phantom_prepared, "--features", "frd", "--out", tmp_path / "q")
    assert result.code == 2 and f"install it with: {FRD_INSTALL}" in result.err
    assert not (tmp_path / "q").exists()  # refused before anything is written


def _phantom_batch(seed: int, n: int = 6, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    from radsynth.data.geometry import fit_to_size
    from radsynth.data.intensity import to_unit
    from radsynth.data.phantom import ct_phantom_slice

    images, labels = [], []
    for k in range(n):
        hu, label = ct_phantom_slice(128, seed=seed * 100 + k)
        image, label = fit_to_size(to_unit(hu, -1000.0, 200.0), label, size)
        images.append(torch.from_numpy(image)[None])
        labels.append(torch.from_numpy(label.astype("int64")))
    return torch.stack(images), torch.stack(labels)


def test_frd_is_lower_for_independent_phantoms_than_for_noise():
    pytest.importorskip("frd_score")
    pytest.importorskip("radiomics")
    from radsynth.quality.frd import frd_score

    real, real_labels = _phantom_batch(1)
    other, other_labels = _phantom_batch(2)
    noise = torch.rand_like(other, generator=torch.Generator().manual_seed(0)) * 2 - 1
    same_kind = frd_score(real, other, workers=1)
    assert same_kind is not None and same_kind < frd_score(real, noise, workers=1) - 1.0  # log scale: e-fold apart at least
    lung = frd_score(real, other, real_labels > 0, other_labels > 0, workers=1)
    assert lung is not None and lung != same_kind


def test_quality_reports_frd_for_every_row(cli, phantom_prepared64, tmp_path):
    pytest.importorskip("frd_score")
    pytest.importorskip("radiomics")
    out = tmp_path / "q"
    result = cli("quality", "--real", phantom_prepared64, "--synth", phantom_prepared64, "--features", "frd", "--out", out,
                 "--preset", "quick", "--set", "frd_max_images=6", "--set", "reference_split=test")
    assert result.code == 0, result.err
    results = json.loads((out / "results.json").read_text())
    assert results["frd"]["version"] == "v1" and results["frd"]["max_images"] == 6
    for s in results["sets"]:  # the held-out real row and the scored set
        for group in ("complemented", "lung_only"):
            assert isinstance(s["distribution"][group]["frd"], float), (s["name"], group)
            assert s["distribution"][group]["frd_n_real"] == 6
    assert "FRD ↓" in (out / "results.md").read_text()
