import numpy as np
import pytest

from radsynth.data.detect import open_source
from radsynth.data.dicom import write_dicom_series
from radsynth.errors import InputError


def _volume(z=6, size=16):
    # each slice carries its index in HU so the order can be read back from the pixels
    return np.stack([np.full((size, size), -1000.0 + 100.0 * k) for k in range(z)]).astype(np.float32)


def test_series_is_sorted_by_position_not_file_name_and_rescaled_to_hu(tmp_path):
    volume = _volume()
    shuffled = [3, 0, 5, 1, 4, 2]  # slice z is written as file slice_<shuffled[z]>.dcm
    write_dicom_series(tmp_path / "series", volume, (0.7, 0.7, 2.5), file_order=shuffled)
    source = open_source(tmp_path / "series")
    assert source.format == "dicom" and source.intensity_kind == "hu" and len(source.units) == 1
    slices = source.units[0].load()
    np.testing.assert_array_equal(np.stack([s.image for s in slices]), volume)  # HU after RescaleIntercept -1024
    assert slices[0].image[0, 0] == -1000.0


def test_patient_id_is_pseudonymised(tmp_path):
    write_dicom_series(tmp_path / "s", _volume(2), patient_id="Jane^Doe-12345")
    source = open_source(tmp_path / "s")
    assert source.patients[0].startswith("dcm-") and "12345" not in source.patients[0]


def test_two_series_in_one_folder_are_two_units(tmp_path):
    write_dicom_series(tmp_path / "s" / "a", _volume(2), patient_id="A")
    write_dicom_series(tmp_path / "s" / "b", _volume(3), patient_id="B")
    source = open_source(tmp_path / "s")
    assert sorted(len(u.load()) for u in source.units) == [2, 3]


def test_truncated_dicom_names_the_file(tmp_path):
    paths = write_dicom_series(tmp_path / "s", _volume(3))
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])
    source = open_source(tmp_path / "s")
    with pytest.raises(InputError) as info:
        source.units[0].load()
    assert paths[1].name in str(info.value)
