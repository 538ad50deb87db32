"""Fréchet Radiomics Distance (FRD; Konz, Osuala et al.), by the ``frd-score`` package (optional).

``--features ...,frd`` adds FRD beside FD / KID for every set. FRD v1 (the package default):
~464 PyRadiomics features (first order, GLCM, GLRLM, GLSZM, NGTDM on the original, LoG and
wavelet images) per image, z-scored with the real reference's statistics, then
``log`` of the squared Fréchet distance between the two Gaussians. Lower is closer.

The package reads image files, so each side is written to a temporary folder as 8-bit PNGs (the
[-1, 1] images as in the Inception path) with, for the lung-only score, 0/1 lung masks
(label > 0); without masks it uses the whole image. Images whose mask has at most one pixel are
skipped by the package. It recomputes the reference's features for every set (its public API
takes two sets at a time), so ``frd_max_images`` caps the images per side (drawn with the seed).

PyRadiomics, which ``frd-score`` needs, does not install from PyPI with plain pip on Python 3.11:
its 3.1.0 sdist declares version 3.0.1a1 (pip discards it) and the 3.0.1 sdist imports numpy in
setup.py (fails under build isolation). ``FRD_INSTALL`` is what works.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from radsynth.errors import InputError

FRD_INSTALL = (
    "pip install numpy setuptools wheel versioneer && pip install --no-build-isolation pyradiomics==3.0.1 && pip install frd-score==1.0.1"
)
FRD_VERSION = "v1"


def frd_missing() -> str | None:
    """None when frd-score and PyRadiomics import, else what is missing."""
    for module, package in (("frd_score", "frd-score"), ("radiomics", "pyradiomics")):
        try:
            __import__(module)
        except ImportError:
            return package
    return None


def require_frd() -> None:
    """Raise ``InputError`` naming the pip commands when FRD cannot be computed here."""
    missing = frd_missing()
    if missing:
        raise InputError("--features", f"frd needs the {missing} package, which is not installed here; install it with: {FRD_INSTALL}")


def frd_description() -> dict[str, str]:
    """What results.json records about the FRD computation."""
    return {
        "package": f"frd-score {metadata.version('frd-score')}, pyradiomics {metadata.version('pyradiomics')}",
        "version": FRD_VERSION,
        "normalisation": "z-score with the real reference's statistics (frd-score's v1 default)",
        "value": "log of the squared Frechet distance of the radiomics features",
    }


def subsample(n: int, most: int, seed: int, salt: int = 0) -> list[int]:
    """Sorted indices of at most ``most`` of ``n`` items (all when ``most`` is 0), drawn with ``seed``."""
    if most <= 0 or n <= most:
        return list(range(n))
    generator = torch.Generator().manual_seed(seed * 1_000_003 + salt)
    return sorted(torch.randperm(n, generator=generator)[:most].tolist())


def _write(folder: Path, images: Tensor, masks: Tensor | None) -> tuple[list[str], list[str] | None]:
    folder.mkdir()
    pixels = torch.round((images[:, 0].clamp(-1, 1) + 1) * 127.5).to(torch.uint8).numpy()
    files, mask_files = [], [] if masks is not None else None
    for i, image in enumerate(pixels):
        files.append(str(folder / f"{i:06d}.png"))
        Image.fromarray(image).save(files[-1])
        if masks is not None:
            mask_files.append(str(folder / f"{i:06d}_mask.png"))
            Image.fromarray(masks[i].numpy().astype(np.uint8)).save(mask_files[-1])
    return files, mask_files


def frd_score(real: Tensor, fake: Tensor, real_masks: Tensor | None = None, fake_masks: Tensor | None = None,
              workers: int | None = None) -> float | None:
    """FRD v1 between (N, 1, H, W) ``real`` and (M, 1, H, W) ``fake`` images in [-1, 1]; masks (N, H, W)
    bool restrict the features to a region (both or neither). None when it is not finite."""
    require_frd()
    from frd_score import compute_frd

    if (real_masks is None) != (fake_masks is None):
        raise ValueError("give masks for both sides or for neither")
    with tempfile.TemporaryDirectory(prefix="radsynth-frd-") as tmp:
        real_files, real_mask_files = _write(Path(tmp) / "real", real, real_masks)
        fake_files, fake_mask_files = _write(Path(tmp) / "fake", fake, fake_masks)
        masks = None if real_masks is None else [real_mask_files, fake_mask_files]
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # it prints its result; numpy warns on constant features
            warnings.simplefilter("ignore", RuntimeWarning)
            value = float(compute_frd([real_files, fake_files], frd_version=FRD_VERSION, paths_masks=masks, num_workers=workers))
    return value if math.isfinite(value) else None
