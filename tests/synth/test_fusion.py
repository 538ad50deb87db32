"""IF's two fusions on images with known frequency content: the paper's blend averages two unpaired textures
away, ``detail`` keeps one at full strength while blending the low frequencies as eq. 11 does."""

import pytest
import torch

from radsynth.errors import InputError
from radsynth.synth.diversify import FusedSynthesizer, detail_fusion


def _texture_energy(x: torch.Tensor) -> float:
    """Mean absolute 4-neighbour Laplacian (what radsynth.quality.fidelity calls lung texture)."""
    lap = 4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:]
    return float(lap.abs().mean())


def _pair(size: int = 128):
    """Two images with the same smooth ramp and independent fine noise (a modality's level + unpaired vessels)."""
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(-0.6, 0.2, size)[None, None, None, :].expand(1, 1, size, size)
    return ramp + 0.1 * torch.randn((1, 1, size, size), generator=g), ramp - 0.2 + 0.1 * torch.randn((1, 1, size, size), generator=g)


def test_blend_loses_texture_that_detail_fusion_keeps():
    a, b = _pair()
    half = torch.full((1, 1, 1, 1), 0.5)
    blended = half * a + (1 - half) * b
    detailed = detail_fusion(a, b, half, torch.full((1, 1, 1, 1), 0.2))  # pick < ζ: the first image's detail
    energy = _texture_energy(a)
    assert _texture_energy(blended) / energy == pytest.approx(0.5**0.5, abs=0.03)  # sqrt(ζ² + (1 - ζ)²)
    assert _texture_energy(detailed) / energy == pytest.approx(1.0, abs=0.05)
    inner = (slice(None), slice(None), slice(16, -16), slice(16, -16))  # away from the filter's padded border
    assert float((detailed - blended)[inner].mean()) == pytest.approx(0.0, abs=0.01)  # the same level: the blend's


def test_detail_fusion_at_the_ends_is_one_image():
    a, b = _pair(64)
    one, zero = torch.ones((1, 1, 1, 1)), torch.zeros((1, 1, 1, 1))
    assert torch.allclose(detail_fusion(a, b, one, torch.full((1, 1, 1, 1), 0.5)), a, atol=1e-5)
    assert torch.allclose(detail_fusion(a, b, zero, torch.full((1, 1, 1, 1), 0.5)), b, atol=1e-5)


def test_unknown_fusion_is_refused():
    with pytest.raises(InputError, match="unknown fusion 'mean'"):
        FusedSynthesizer(None, None, mode="mean")
