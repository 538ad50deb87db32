"""Fidelity measures: region offsets and lung texture, against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from radsynth.quality.fidelity import fidelity, ratios


def _image_and_labels():
    unit = np.full((1, 8, 8), 0.9, np.float32)  # body
    labels = np.zeros((1, 8, 8), np.int64)
    labels[0, 1:7, 1:7] = 1
    unit[0][labels[0] == 1] = 0.3
    labels[0, 2, 2] = 2
    unit[0, 2, 2] = 0.5
    labels[0, 5, 5] = 3
    unit[0, 5, 5] = 0.8
    return torch.from_numpy(unit * 2 - 1)[:, None], torch.from_numpy(labels)


def test_offsets_and_texture_match_a_hand_computation():
    images, labels = _image_and_labels()
    measured = fidelity(images, labels)
    assert measured["lung"] == pytest.approx(0.3, abs=1e-6)
    assert measured["ggo_minus_lung"] == pytest.approx(0.2, abs=1e-6)
    assert measured["consolidation_minus_lung"] == pytest.approx(0.5, abs=1e-6)
    assert measured["infection_minus_lung"] == pytest.approx(0.35, abs=1e-6)
    # healthy pixels with four healthy neighbours: rows/cols 2..5 inside the 6x6 lung, minus (2,2), (5,5) and their neighbours.
    # Only pixels next to the GGO (0.2 brighter) or consolidation (0.5 brighter) pixel have a non-zero Laplacian.
    labels0 = labels[0].numpy()
    inner = [(r, c) for r in range(1, 7) for c in range(1, 7)
             if labels0[r, c] == 1 and all(labels0[r + dr, c + dc] == 1 for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)))]
    unit = (images[0, 0].numpy() + 1) / 2
    expected = np.mean([abs(unit[r - 1, c] + unit[r + 1, c] + unit[r, c - 1] + unit[r, c + 1] - 4 * unit[r, c]) for r, c in inner])
    assert measured["lung_hf_energy"] == pytest.approx(expected, abs=1e-6) and expected == 0.0  # the lesions' neighbours are not "inner"
    assert measured["pixels"]["lung_texture"] == len(inner)


def test_texture_sees_vessels_and_ratios_divide_by_the_reference():
    images, labels = _image_and_labels()
    flat = fidelity(images, labels)
    vessel = images.clone()
    vessel[0, 0, 4, 3] = 0.2 * 2 - 1 + 0.6  # one healthy pixel 0.3 brighter than its neighbours
    textured = fidelity(vessel, labels)
    assert textured["lung_hf_energy"] > 0
    half = images.clone()
    half[0, 0][labels[0] == 2] = (0.4 * 2 - 1)  # GGO offset 0.1 instead of 0.2
    r = ratios(fidelity(half, labels), flat)
    assert r["ggo_minus_lung"] == pytest.approx(0.5, abs=1e-5) and r["consolidation_minus_lung"] == pytest.approx(1.0, abs=1e-5)
    assert math.isnan(r["lung_hf_energy"])  # the reference has no texture: no ratio


def test_a_set_without_consolidation_has_no_consolidation_offset():
    images, labels = _image_and_labels()
    labels = torch.where(labels == 3, torch.ones_like(labels), labels)
    measured = fidelity(images, labels)
    assert math.isnan(measured["consolidation"]) and math.isnan(measured["consolidation_minus_lung"])


def test_within_image_offsets_are_not_fooled_by_two_lung_levels():
    """Two images: A (lung 0.4, GGO 0.5) and B (lung 0.2, no GGO, twice the lung). Pooled, GGO - lung compares A's GGO
    with both lungs; within images it is A's own 0.1."""
    labels = torch.zeros((2, 8, 8), dtype=torch.int64)
    labels[0, 2:6, 2:6] = 1
    labels[0, 3, 3] = 2
    labels[1, 1:7, 1:7] = 1
    unit = torch.full((2, 8, 8), 0.9)
    unit[0][labels[0] == 1] = 0.4
    unit[0, 3, 3] = 0.5
    unit[1][labels[1] == 1] = 0.2
    measured = fidelity((unit * 2 - 1)[:, None], labels)
    pooled_lung = (15 * 0.4 + 36 * 0.2) / 51
    assert measured["ggo_minus_lung"] == pytest.approx(0.5 - pooled_lung, abs=1e-6)
    assert measured["ggo_minus_lung_within"] == pytest.approx(0.1, abs=1e-6)
    assert measured["infection_minus_lung_within"] == pytest.approx(0.1, abs=1e-6)
    assert math.isnan(measured["consolidation_minus_lung_within"])


def test_grid_amplitude_reads_a_planted_checkerboard_and_stripes():
    """Smooth images read ~0; a checkerboard or a cosine stripe of amplitude a, added to them, reads a."""
    from radsynth.quality.fidelity import grid_amplitude

    size = 64
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    from scipy import ndimage

    noise = np.random.default_rng(0).standard_normal((6, size, size))
    blobs = torch.from_numpy(ndimage.gaussian_filter(noise, (0, 3, 3), mode="wrap"))
    smooth = 0.3 + 0.4 * (blobs - blobs.amin()) / (blobs.amax() - blobs.amin())
    assert grid_amplitude(smooth) < 0.002
    checker = 0.01 * (-1.0) ** (x + y)
    assert grid_amplitude(smooth + checker) == pytest.approx(0.01, rel=0.1)
    stripes = 0.005 * torch.cos(2 * math.pi * y / 4)  # rows brighter every 4 px
    assert grid_amplitude(smooth + stripes) == pytest.approx(0.005, rel=0.15)
    measured = fidelity((smooth + checker)[:, None] * 2 - 1, torch.zeros(6, size, size, dtype=torch.int64))
    assert measured["grid_amplitude"] == pytest.approx(0.01, rel=0.1)
