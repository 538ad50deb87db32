import numpy as np
import pytest

from radsynth.data import labels as L
from radsynth.errors import InputError


def test_schema_constants():
    assert (L.BACKGROUND, L.LUNG, L.GGO, L.CONSOLIDATION) == (0, 1, 2, 3)
    assert L.INFECTION == (2, 3)


def test_lung_infection_mapping_infection_overrides_lung_and_keeps_outside_lung():
    lung = np.array([[0, 255, 255], [0, 0, 255]], np.uint8)
    infection = np.array([[255, 255, 0], [0, 0, 0]], np.uint8)
    assert L.from_lung_infection(lung, infection).tolist() == [[2, 2, 1], [0, 0, 1]]


def test_lung_infection_accepts_01_masks():
    assert L.from_lung_infection(np.array([[1, 0]]), np.array([[0, 0]])).tolist() == [[1, 0]]


def test_medseg_mapping():
    assert L.from_medseg(np.array([[0, 1, 2]])).tolist() == [[0, 2, 3]]


@pytest.mark.parametrize(
    "call",
    [
        lambda: L.from_medseg(np.array([[0, 3]]), "m.png"),
        lambda: L.from_schema(np.array([[0, 4]]), "m.png"),
        lambda: L.from_lung_infection(np.array([[0, 128]]), np.array([[0, 0]]), "m.png"),
    ],
)
def test_values_outside_scheme_are_refused(call):
    with pytest.raises(InputError, match="m.png"):
        call()


def test_shape_mismatch_refused():
    with pytest.raises(InputError, match="differ in shape"):
        L.from_lung_infection(np.zeros((2, 2)), np.zeros((2, 3)))


def test_categories_and_condition_encoding():
    label = np.array([[0, 1, 2, 3]])
    assert L.to_categories(label).tolist() == [[0, 1, 2, 2]]
    # CoSinGAN 3.2.1: 0 / 128 / 255 grey levels, scaled by x / 127.5 - 1
    np.testing.assert_allclose(L.encode_condition(label), [[-1.0, 128 / 127.5 - 1, 1.0, 1.0]], atol=1e-7)


def test_histogram_and_has_infection():
    label = np.array([[0, 0, 1, 3]], np.uint8)
    assert L.histogram(label) == {"background": 2, "lung": 1, "ground-glass": 0, "consolidation": 1}
    assert L.has_infection(label) and not L.has_infection(np.array([[0, 1]]))
