"""Fixtures for the evaluation tests (this folder only)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The CPU is two cores shared with other jobs: one torch thread runs these small nets several
    times faster than two threads fighting for them (measured 24 s -> under 2 s for an ENet backward)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- classification (tests/evaluate/test_classify_*.py)

CLS_SIZE = 64
CLS_PER_CLASS = 30


def cls_seed(index: int) -> int:
    """Phantom seed of pair ``index`` of ``cxr_cls_set``."""
    return 1000 + index


def _paired_cxr_set(root, disease: str):
    """30 patients, each rendered as Normal and as ``disease`` with the same seed, prepared at 64 px."""
    import csv

    from PIL import Image

    from radsynth.data import phantom
    from radsynth.data.detect import open_source
    from radsynth.data.prepare import PrepareOptions, prepare

    rows = []
    for klass in ("Normal", disease):
        (root / "raw" / klass).mkdir(parents=True)
    for i in range(CLS_PER_CLASS):
        for klass in ("Normal", disease):
            rel = f"{klass}/p{i:03d}.png"
            Image.fromarray(phantom.cxr_phantom(CLS_SIZE, klass, cls_seed(i))).save(root / "raw" / rel)
            rows.append([rel, klass, "phantom", f"pair{i:03d}"])
    with open(root / "raw" / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(phantom.CXR_MANIFEST_FIELDS)
        writer.writerows(rows)
    prepare(open_source(root / "raw"), root / "prepared", PrepareOptions(size=CLS_SIZE))
    return root / "prepared"


@pytest.fixture(scope="session")
def cxr_cls_set(tmp_path_factory):
    """Paired phantom X-rays at 64 px: 30 patients, each rendered as Normal and as COVID-19 with the same
    seed (same anatomy and exposure; the disease, drawn last, is the only difference, so its region
    ``phantom.cxr_lesion_mask`` is where a classifier must look). Prepared at 64 px with the patient-level
    split 0.7 / 0.1 / 0.2 (21 / 3 / 6 patients, both images of a patient on the same side)."""
    return _paired_cxr_set(tmp_path_factory.mktemp("cls"), "COVID-19")


@pytest.fixture(scope="session")
def cxr_pneumonia_set(tmp_path_factory):
    """As ``cxr_cls_set`` with Pneumonia (a focal lobar opacity, usually on one side) as the disease."""
    return _paired_cxr_set(tmp_path_factory.mktemp("pneu"), "Pneumonia")


@pytest.fixture(scope="session")
def cls_lesion():
    """(row of a paired set's manifest, disease) -> (64, 64) bool mask of its disease (min 4 grey levels)."""
    from radsynth.data import phantom

    def lesion(row: dict, disease: str = "COVID-19") -> np.ndarray:
        index = int(row["source_file"].split("/p")[-1].split(".")[0])
        return phantom.cxr_lesion_mask(CLS_SIZE, disease, cls_seed(index), min_grey=4)

    return lesion
