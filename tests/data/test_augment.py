import pytest
import torch

from radsynth.data.augment import NONE, STRONG, WEAK, AugmentSpec, augment_pair, weakened


def _pair(n=3, size=48):
    label = torch.zeros(n, size, size, dtype=torch.int64)
    label[:, 8:40, 6:22] = 1
    label[:, 14:24, 8:16] = 2
    label[:, 30:36, 30:42] = 3
    image = torch.tensor([-1.0, -0.6, 0.1, 0.7])[label][:, None]  # one grey level per label
    return image, label


def test_identity_spec_changes_nothing():
    image, label = _pair()
    out, out_label = augment_pair(image, label, NONE, torch.Generator().manual_seed(0))
    assert torch.allclose(out, image, atol=1e-5) and torch.equal(out_label, label)


@pytest.mark.parametrize("spec", [STRONG, WEAK])
def test_image_and_label_move_together_and_labels_are_never_invented(spec):
    image, label = _pair(n=8)
    label[:, :, :] = torch.where(label == 2, 3, label)  # no label 2 left: it must not appear
    image = torch.tensor([-1.0, -0.6, 0.1, 0.7])[label][:, None]
    out, out_label = augment_pair(image, label, spec, torch.Generator().manual_seed(1))
    assert set(out_label.unique().tolist()) <= {0, 1, 3}
    assert not torch.equal(out_label, label)
    # where the label says 3 the image must carry the label-3 grey level (allowing edge blur)
    assert (out[:, 0][out_label == 3] - 0.7).abs().median() < 0.05
    assert (out[:, 0][out_label == 1] + 0.6).abs().median() < 0.05


def test_same_seed_same_result_and_device_independent_shapes():
    image, label = _pair()
    a = augment_pair(image, label, STRONG, torch.Generator().manual_seed(5))
    b = augment_pair(image, label, STRONG, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == image.shape and a[1].dtype == torch.int64


def test_weakened_scales_intensity():
    half = weakened(STRONG, 0.5)
    assert half.crop == (0.75, 1.0) and half.rotate_deg == pytest.approx(5.0) and half.elastic_alpha == pytest.approx(0.015)
    assert weakened(STRONG, 0.0).crop == (1.0, 1.0)


def test_bad_spec():
    with pytest.raises(ValueError, match="crop range"):
        AugmentSpec(crop=(0.0, 1.0))
