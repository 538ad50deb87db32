import os

import nibabel as nib
import numpy as np
import pytest

from radsynth.data.detect import open_source
from radsynth.data.nifti import load_volume, save_volume
from radsynth.data.prepare import PrepareOptions, prepare
from radsynth.data.slices import SliceSet, stack_patient
from tests.conftest import tiny_label_volume


def test_save_and_load_keep_layout_and_spacing(tmp_path):
    volume = tiny_label_volume()
    save_volume(tmp_path / "v.nii.gz", volume, (0.5, 0.6, 3.0))
    stored = np.asanyarray(nib.load(str(tmp_path / "v.nii.gz")).dataobj)
    assert stored.shape == (24, 20, 5)  # (H, W, Z) on disk, like ct-rp9-dev
    np.testing.assert_array_equal(stored[:, :, 2], volume[2])
    loaded, spacing = load_volume(tmp_path / "v.nii.gz")
    np.testing.assert_array_equal(loaded, volume)
    assert spacing == pytest.approx((0.5, 0.6, 3.0))


def test_reader_finds_pairs_and_detects_hu(nifti_pair_dir):
    source = open_source(nifti_pair_dir)
    assert source.format == "nifti" and source.scheme.name == "schema" and source.intensity_kind == "hu"
    assert source.patients == ["PA", "PB"]
    slices = source.units[0].load()
    assert len(slices) == 5 and slices[0].image.shape == (24, 20)


def test_nifti_to_slices_to_nifti_keeps_labels_exactly(tmp_path):
    label = tiny_label_volume(z=6, h=32, w=32)
    image = np.where(label > 0, -800, 30).astype(np.int16)
    src = tmp_path / "src"
    src.mkdir()
    save_volume(src / "P1_image.nii.gz", image)
    save_volume(src / "P1_label.nii.gz", label)
    prepare(open_source(src), tmp_path / "prepared", PrepareOptions(size=32, fractions={"train": 1.0, "val": 0.0, "test": 0.0}))
    _, stacked = stack_patient(SliceSet(tmp_path / "prepared"), "P1")
    save_volume(tmp_path / "back_label.nii.gz", stacked)
    back, _ = load_volume(tmp_path / "back_label.nii.gz")
    np.testing.assert_array_equal(back, label)


@pytest.mark.shared_data
def test_real_rp9_volume_round_trips_labels(shared_data, tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    for suffix in ("image", "label"):  # a link, not a copy, of one real volume
        os.symlink(shared_data / "ct-rp9-dev" / f"DCM8_{suffix}.nii.gz", one / f"DCM8_{suffix}.nii.gz")
    original, _ = load_volume(shared_data / "ct-rp9-dev" / "DCM8_label.nii.gz")
    prepare(open_source(one), tmp_path / "prepared", PrepareOptions(size=630, fractions={"train": 1.0, "val": 0.0, "test": 0.0}))
    _, stacked = stack_patient(SliceSet(tmp_path / "prepared"), "DCM8")
    np.testing.assert_array_equal(stacked, original)
    assert int((stacked == 3).sum()) == 185  # DATA.md: DCM8 consolidation voxels
