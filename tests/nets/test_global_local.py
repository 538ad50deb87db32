"""Global-local generator, multi-resolution patch discriminator and SPADE generator: shapes and wiring."""

from __future__ import annotations

import pytest
import torch

from radsynth.nets.global_local import GlobalLocalGenerator
from radsynth.nets.multires_discriminator import MultiResolutionPatchDiscriminator
from radsynth.nets.spade_generator import SpadeGenerator


def test_global_local_modes_have_the_papers_resolutions(ends_in_tanh):
    g = GlobalLocalGenerator(4, 1, ngf=8, global_downsampling=3, global_blocks=1, local_blocks=1)
    x = torch.rand(2, 4, 64, 64)
    assert g(x, "global").shape == (2, 1, 32, 32)  # Fig. 3: half resolution in and out
    assert g(x, "local").shape == (2, 1, 64, 64)
    assert ends_in_tanh(g, lambda: g(x, "joint")).shape == (2, 1, 64, 64)
    ends_in_tanh(g, lambda: g(x, "global"))


def test_joint_mode_adds_the_global_features_and_local_mode_ignores_them():
    torch.manual_seed(0)
    g = GlobalLocalGenerator(4, 1, ngf=8, global_downsampling=2, global_blocks=1, local_blocks=1).eval()
    x = torch.rand(1, 4, 32, 32)
    local, joint = g(x, "local"), g(x, "joint")
    with torch.no_grad():
        for p in g.global_net.parameters():
            p.add_(0.5)
    assert torch.equal(g(x, "local"), local)  # G2 alone does not read G1
    assert not torch.allclose(g(x, "joint"), joint)  # joint: G1's last upsampled features summed into G2
    assert not torch.allclose(local, joint)


def test_global_local_rejects_sizes_it_cannot_halve():
    g = GlobalLocalGenerator(4, 1, ngf=8, global_downsampling=3, global_blocks=1)
    with pytest.raises(ValueError, match="divisible by 16"):
        g(torch.rand(1, 4, 40, 40))
    with pytest.raises(ValueError, match="even"):
        GlobalLocalGenerator(4, 1, ngf=7)


def test_multires_discriminator_judges_the_same_patches_of_real_and_fake():
    d = MultiResolutionPatchDiscriminator(5, num_d=2, ndf=8, n_layers=2, patch_size=24, patches_per_image=3)
    boxes = d.sample_boxes(2, 64, 64, torch.Generator().manual_seed(0))
    assert boxes[0].shape == (6, 2) and boxes[1].shape == (6, 2)  # 64 and 32 px both hold a 24 px patch
    assert int(boxes[0].max()) <= 64 - 24 and int(boxes[1].max()) <= 32 - 24 and int(boxes[0].min()) >= 0
    x = torch.rand(2, 5, 64, 64)
    first, second = d(x, boxes), d(x.clone(), boxes)
    assert len(first) == 2 and first[0][-1].shape[0] == 6
    assert all(torch.equal(a, b) for fa, fb in zip(first, second) for a, b in zip(fa, fb))
    # a patch crop of the input gives the same logits as the discriminator on that crop by hand
    top, left = boxes[0][0].tolist()
    by_hand = d.discriminators[0](x[:1, :, top : top + 24, left : left + 24])[-1]
    assert torch.allclose(by_hand[0], first[0][-1][0])


def test_multires_discriminator_judges_whole_images_when_patches_are_off_or_too_large():
    d = MultiResolutionPatchDiscriminator(5, ndf=8, n_layers=2, patch_size=0)
    assert d.sample_boxes(2, 64, 64, torch.Generator()) == [None, None]
    d = MultiResolutionPatchDiscriminator(5, ndf=8, n_layers=2, patch_size=40)
    boxes = d.sample_boxes(2, 64, 64, torch.Generator().manual_seed(1))
    assert boxes[0] is not None and boxes[1] is None  # 32 px at half resolution is smaller than 40
    out = d(torch.rand(2, 5, 64, 64), boxes)
    assert out[1][-1].shape[0] == 2


def test_spade_generator_shapes_and_range(ends_in_tanh):
    g = SpadeGenerator(4, 32, channels=(16, 8, 8))
    assert ends_in_tanh(g, lambda: g(torch.rand(3, 4, 32, 32))).shape == (3, 1, 32, 32)
    with pytest.raises(ValueError, match="divisible"):
        SpadeGenerator(4, 36, channels=(16, 8, 8))
    with pytest.raises(ValueError, match="expects"):
        g(torch.rand(1, 3, 32, 32))
