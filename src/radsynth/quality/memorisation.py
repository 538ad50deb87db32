"""Memorisation audit: is a synthetic set a copy of the training patients?

For every image of a set, the distance to its nearest image of the real reference (the training
split of ``--real``), in two spaces:

* pixel: RMSE on [0, 1] intensities at the real set's size;
* feature: Euclidean distance between the extractor's features (``features.py``), when there is one.

Threshold, calibrated on real-vs-real pairs: how close does an independent real image (another
patient) come to the training data? The calibration distances are those of the held-out images
of ``--real`` (its splits other than the reference; other patients by the patient-level split) to
their nearest reference image -- exactly what an independent real set scores. When ``--real`` has
no held-out images, each reference image's distance to the nearest reference image of another
patient stands in (leave one patient out; it has fewer candidates, so it runs a little larger).
tau = the ``q`` quantile of the calibration distances (default q = 0.05), so about 5 % of
independent real images fall at or under tau (the 'Real (held-out)' row shows it: by
construction, not as a test).

A set's ``share`` is the fraction of its images at or under tau. Under "these images are as far
from the training patients as independent real images are", the number at or under tau is
Binomial(n, q); the set is flagged when P(X >= observed) < alpha (default 0.01), a one-sided
binomial test. It treats images as independent; slices of one patient are not, so read p as a
screen and look at the closest pairs. Exact copies (pixel RMSE under half an 8-bit grey level)
are counted separately.

Conditional synthesizers reproduce the anatomy of their condition, and region-only ones
(global-local cGAN) paste the real non-lung area back: a synthetic image made from a TRAINING
patient's condition is expected to sit close to that patient's slice. ``nn_is_condition`` (the
share whose nearest real image is the image of its own condition) shows when this is the cause;
sharing such images shares that patient's anatomy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import Tensor


def pixel_vectors(images: Tensor) -> Tensor:
    """(N, 1, H, W) in [-1, 1] -> (N, H * W) float64 on [0, 1], scaled by 1 / sqrt(H * W) so that Euclidean distance = RMSE."""
    flat = ((images.double() + 1) / 2).flatten(1)
    return flat / flat.shape[1] ** 0.5


def nearest(queries: Tensor, refs: Tensor, exclude: Tensor | None = None, chunk: int = 256) -> tuple[Tensor, Tensor]:
    """Distance (Q,) and index (Q,) of each query's nearest ref (Euclidean); ``exclude`` (Q, R) True = not allowed
    (inf and -1 where every ref is excluded)."""
    dists, index = [], []
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start : start + chunk].double(), refs.double())
        if exclude is not None:
            d = d.masked_fill(exclude[start : start + chunk], float("inf"))
        value, idx = d.min(dim=1)
        dists.append(value)
        index.append(torch.where(torch.isfinite(value), idx, torch.full_like(idx, -1)))
    return torch.cat(dists), torch.cat(index)


def other_patient_mask(query_patients: list[str], ref_patients: list[str]) -> Tensor:
    """(Q, R) True where query and reference image belong to the same patient."""
    codes = {p: i for i, p in enumerate(dict.fromkeys(query_patients + ref_patients))}
    q = torch.tensor([codes[p] for p in query_patients])
    r = torch.tensor([codes[p] for p in ref_patients])
    return q[:, None] == r[None, :]


def calibrate(real: Tensor, real_patients: list[str], refs: Tensor, ref_patients: list[str], quantile: float, source: str) -> dict[str, Any] | None:
    """tau from the distances of ``real`` images to their nearest reference image of another patient (module
    docstring); None when no real image has another patient's reference. ``source`` says which images these are."""
    distances, _ = nearest(real, refs, other_patient_mask(real_patients, ref_patients))
    finite = distances[torch.isfinite(distances)]
    if len(finite) == 0:
        return None
    values = finite.numpy()
    return {
        "tau": float(np.quantile(values, quantile)),
        "quantile": quantile,
        "source": source,
        "pairs": int(len(values)),
        "median": float(np.median(values)),
        "min": float(values.min()),
    }


def audit(
    vectors: Tensor, refs: Tensor, calibration: dict[str, Any] | None, alpha: float, copy_distance: float | None = None,
    own_reference: list[int | None] | None = None,
) -> dict[str, Any]:
    """Nearest-reference distances of one set's ``vectors`` (N, D) and the verdict (module docstring).

    ``own_reference[i]`` is the reference index of image i's own condition (or None): the share of
    images whose nearest reference is that one is ``nn_is_condition``.
    """
    distances, index = nearest(vectors, refs)
    d = distances.numpy()
    out: dict[str, Any] = {
        "n": int(len(d)),
        "nearest_distance": {"min": float(d.min()), "p05": float(np.quantile(d, 0.05)), "median": float(np.median(d)), "mean": float(d.mean())},
        "nearest_index": index.tolist(),
        "distances": d.tolist(),
    }
    if copy_distance is not None:
        out["exact_copies"] = int((d < copy_distance).sum())
    if own_reference is not None:
        known = [(i, ref) for i, ref in enumerate(own_reference) if ref is not None]
        out["nn_is_condition"] = float(np.mean([int(index[i]) == ref for i, ref in known])) if known else None
    if calibration is None:
        out.update({"tau": None, "share": None, "count": None, "p_value": None, "flagged": None,
                    "why_not": "no calibration: --real needs images of at least two patients"})
        return out
    count = int((d <= calibration["tau"]).sum())
    p_value = float(stats.binom.sf(count - 1, len(d), calibration["quantile"]))
    out.update({"tau": calibration["tau"], "share": count / len(d), "count": count, "p_value": p_value, "flagged": p_value < alpha})
    return out


def closest_pairs(result: dict[str, Any], k: int) -> list[tuple[int, int, float]]:
    """The ``k`` (image index, reference index, distance) with the smallest nearest-reference distance."""
    order = np.argsort(np.asarray(result["distances"]), kind="stable")[:k]
    return [(int(i), int(result["nearest_index"][i]), float(result["distances"][i])) for i in order]
