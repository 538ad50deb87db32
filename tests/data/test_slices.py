import numpy as np
import pytest
import torch

from radsynth.data.detect import open_source
from radsynth.data.prepare import PrepareOptions, prepare
from radsynth.data.prepared import uint16_to_unit, unit_to_uint16
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError


def test_uint16_storage_precision():
    values = np.linspace(-1, 1, 1001, dtype=np.float32)
    assert np.abs(uint16_to_unit(unit_to_uint16(values)) - values).max() < 2 / 65535


@pytest.fixture
def prepared(nifti_pair_dir, tmp_path):
    out = tmp_path / "prepared"
    prepare(open_source(nifti_pair_dir), out, PrepareOptions(size=16, fractions={"train": 0.5, "val": 0.0, "test": 0.5}))
    return out


def test_slice_set_items(prepared):
    data = SliceSet(prepared)
    assert len(data) == 10
    image, label, meta = data[0]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32
    assert -1.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert label.shape == (16, 16) and label.dtype == torch.int64
    assert set(label.unique().tolist()) <= {0, 1, 2, 3}
    assert meta["patient"] in {"PA", "PB"} and meta["has_label"] == "1"


def test_hu_window_applied(nifti_pair_dir, tmp_path):
    # size 24 = the padded side: no resampling. Lung window [-1350, 150]: HU -850 (lung) ->
    # 500 / 1500 * 2 - 1 = -1/3; HU 40 (soft tissue) -> 1390 / 1500 * 2 - 1
    prepare(open_source(nifti_pair_dir), tmp_path / "p24", PrepareOptions(size=24))
    data = SliceSet(tmp_path / "p24")
    image, label, _ = data[0]
    assert data.info["intensity"] == "hu"
    assert float(image[0][label == 1].median()) == pytest.approx(-1 / 3, abs=1e-4)
    tissue = image[0][label == 0]
    assert float((tissue - (1390 / 1500 * 2 - 1)).abs().lt(1e-4).float().mean()) > 0.5


def test_split_filter_is_patient_level(prepared):
    train, test = SliceSet(prepared, "train"), SliceSet(prepared, "test")
    assert len(train) == len(test) == 5
    assert not set(train.patients) & set(test.patients)


def test_missing_split_and_non_prepared_folder(prepared, tmp_path):
    with pytest.raises(InputError, match="no slices in split 'val'"):
        SliceSet(prepared, "val")
    with pytest.raises(InputError, match="not a prepared slice set"):
        SliceSet(tmp_path)


def test_a_prepared_set_can_be_prepared_again_without_loss(prepared, tmp_path):
    source = open_source(prepared)
    assert source.intensity_kind == "radsynth" and source.scheme.name == "schema"
    prepare(source, tmp_path / "again", PrepareOptions(size=16))
    first, second = SliceSet(prepared), SliceSet(tmp_path / "again")
    by_key = {(r["patient"], r["slice_index"]): i for i, r in enumerate(second.rows)}
    for i, row in enumerate(first.rows):
        j = by_key[(row["patient"], row["slice_index"])]
        assert torch.equal(first[i][0], second[j][0]) and torch.equal(first[i][1], second[j][1])


def test_a_manifest_modality_column_reaches_the_prepared_set(tmp_path):
    """ct-ma20-png's manifest names each slice's modality; prepare keeps it, so --group-by modality works."""
    from PIL import Image

    src = tmp_path / "src"
    for folder in ("images", "lung", "infection"):
        (src / folder).mkdir(parents=True)
    rows = ["image,lung_mask,infection_mask,volume,slice_index,modality"]
    for k, (volume, modality) in enumerate([("v1", "coronacases"), ("v1", "coronacases"), ("v2", "radiopaedia")]):
        image = np.full((16, 16), 40 + 20 * k, np.uint8)
        lung = np.zeros((16, 16), np.uint8)
        lung[4:12, 4:12] = 255
        Image.fromarray(image).save(src / "images" / f"{k}.png")
        Image.fromarray(lung).save(src / "lung" / f"{k}.png")
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(src / "infection" / f"{k}.png")
        rows.append(f"images/{k}.png,lung/{k}.png,infection/{k}.png,{volume},{k},{modality}")
    (src / "manifest.csv").write_text("\n".join(rows) + "\n")
    prepare(open_source(src), tmp_path / "out", PrepareOptions(size=16))
    dataset = SliceSet(tmp_path / "out")
    assert sorted((r["patient"], r["modality"]) for r in dataset.rows) == [("v1", "coronacases"), ("v1", "coronacases"), ("v2", "radiopaedia")]
    assert dataset[0][2]["modality"] in {"coronacases", "radiopaedia"}
    # prepared again (a prepared set is a manifest too), the column survives
    prepare(open_source(tmp_path / "out"), tmp_path / "again", PrepareOptions(size=16))
    assert sorted(r["modality"] for r in SliceSet(tmp_path / "again").rows) == ["coronacases", "coronacases", "radiopaedia"]


def test_a_set_prepared_before_the_modality_column_still_reads(prepared, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(prepared, old)
    lines = (old / "manifest.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[-1] == "modality"
    (old / "manifest.csv").write_text("\n".join(",".join(line.split(",")[:-1]) for line in lines) + "\n")
    dataset = SliceSet(old)
    assert len(dataset) == len(SliceSet(prepared)) and dataset[0][2].get("modality", "") == ""
