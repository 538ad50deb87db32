import numpy as np
import pytest

from radsynth.data.geometry import fit_to_size, make_square, resize_image, resize_label


def test_area_downsampling_averages_blocks():
    image = np.array([[0, 2, 4, 6], [2, 4, 6, 8], [1, 1, 0, 0], [1, 1, 0, 0]], np.float32)
    np.testing.assert_allclose(resize_image(image, 2), [[2.0, 6.0], [1.0, 0.0]])


def test_bilinear_upsampling_keeps_constant_images():
    np.testing.assert_allclose(resize_image(np.full((5, 5), 0.25, np.float32), 13), 0.25, atol=1e-6)


@pytest.mark.parametrize("src, dst", [((37, 41), 16), ((16, 16), 57), ((100, 60), 33), ((7, 7), 256)])
def test_resizing_never_invents_label_values(src, dst):
    rng = np.random.default_rng(1)
    label = rng.choice(np.array([0, 1, 3], np.uint8), size=src)  # 2 is absent and must stay absent
    out = resize_label(label, dst)
    assert out.shape == (dst, dst) and out.dtype == np.uint8
    assert set(np.unique(out).tolist()) <= {0, 1, 3}


def test_pad_centres_and_keeps_aspect():
    image = np.ones((2, 4), np.float32)
    label = np.array([[1, 2, 3, 1], [1, 1, 1, 1]], np.uint8)
    squared, squared_label = make_square(image * 5, label, "pad")
    assert squared.shape == (4, 4)
    assert squared_label[1:3].tolist() == label.tolist() and squared_label[[0, 3]].sum() == 0
    resized, resized_label = fit_to_size(image, label, 8)
    assert resized.shape == resized_label.shape == (8, 8)


def test_crop_takes_centre():
    image = np.arange(12, dtype=np.float32).reshape(2, 6)
    squared, _ = make_square(image, None, "crop")
    assert squared.tolist() == [[2, 3], [8, 9]]
