"""The procedural chest phantoms: determinism, shapes, HU ranges, label geometry, writers, X-ray classes."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy import ndimage as ndi

from radsynth.data import phantom as P
from radsynth.data.labels import BACKGROUND, CONSOLIDATION, GGO, LUNG


@pytest.fixture(scope="module")
def vol64() -> P.CTPhantom:
    return P.ct_phantom_volume(size=64, n_slices=16, seed=3, infection="mixed")


@pytest.fixture(scope="module")
def vols128() -> list[P.CTPhantom]:
    return [P.ct_phantom_volume(size=128, n_slices=16, seed=s, infection="mixed") for s in range(3)]


# ---------------------------------------------------------------- determinism


def test_ct_slice_same_seed_equal_different_seed_differs():
    a_hu, a_lab = P.ct_phantom_slice(64, seed=5)
    b_hu, b_lab = P.ct_phantom_slice(64, seed=5)
    c_hu, c_lab = P.ct_phantom_slice(64, seed=6)
    assert np.array_equal(a_hu, b_hu) and np.array_equal(a_lab, b_lab)
    assert not np.array_equal(a_lab, c_lab)
    assert float(np.abs(a_hu - c_hu).mean()) > 20.0


def test_ct_volume_same_seed_equal_different_seed_differs(vol64):
    again = P.ct_phantom_volume(size=64, n_slices=16, seed=3, infection="mixed")
    other = P.ct_phantom_volume(size=64, n_slices=16, seed=4, infection="mixed")
    assert np.array_equal(vol64.image_hu, again.image_hu)
    assert np.array_equal(vol64.label, again.label)
    assert vol64.spacing == again.spacing
    assert not np.array_equal(vol64.label, other.label)
    assert vol64.spacing != other.spacing  # body size varies, so does the field of view


def test_cxr_same_seed_equal_different_seed_differs():
    a = P.cxr_phantom(64, "COVID-19", seed=1)
    assert np.array_equal(a, P.cxr_phantom(64, "COVID-19", seed=1))
    assert float(np.abs(a.astype(int) - P.cxr_phantom(64, "COVID-19", seed=2)).mean()) > 2.0


# ---------------------------------------------------------------- shapes and dtypes


@pytest.mark.parametrize("size", [32, 64, 256])
def test_shapes_and_dtypes(size):
    hu, lab = P.ct_phantom_slice(size, seed=0)
    assert hu.shape == (size, size) and hu.dtype == np.float32
    assert lab.shape == (size, size) and lab.dtype == np.uint8
    n_slices = 4 if size == 256 else 6
    vol = P.ct_phantom_volume(size, n_slices=n_slices, seed=0)
    assert vol.image_hu.shape == (n_slices, size, size) and vol.image_hu.dtype == np.float32
    assert vol.label.shape == (n_slices, size, size) and vol.label.dtype == np.uint8
    assert len(vol.spacing) == 3 and all(s > 0 for s in vol.spacing)
    assert vol.spacing[0] == vol.spacing[1]
    assert 300.0 < vol.spacing[0] * size < 450.0  # field of view of a chest CT, in mm
    assert hu.min() >= -1024.0 and hu.max() <= 3071.0
    for k in P.CXR_CLASSES:
        img = P.cxr_phantom(size, k, seed=0)
        assert img.shape == (size, size) and img.dtype == np.uint8


def test_single_slice_volume():
    vol = P.ct_phantom_volume(48, n_slices=1, seed=2)
    assert vol.image_hu.shape == (1, 48, 48)
    assert (vol.label == LUNG).any()


# ---------------------------------------------------------------- HU and labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ct_hu_ranges_without_lesions(seed):
    hu, lab = P.ct_phantom_slice(128, seed=seed, infection="none")
    corner = hu[:10, :10]  # air in front of the patient
    assert abs(float(corner.mean()) + 1000.0) < 15.0
    assert 5.0 < float(corner.std()) < 30.0  # image noise
    lung = hu[lab == LUNG]
    assert lung.size > 0.1 * hu.size
    assert -900.0 < float(lung.mean()) < -750.0
    body = ndi.binary_fill_holes(hu > -500.0)
    assert ((hu > -150) & (hu < -50) & body).sum() > 200  # subcutaneous / mediastinal fat
    assert ((hu > 10) & (hu < 80) & body).sum() > 1000  # muscle, heart, vessels
    assert hu.max() > 500.0  # bone
    assert set(np.unique(lab).tolist()) == {BACKGROUND, LUNG}


def test_lesion_hu_order(vols128):
    for vol in vols128:
        hu, lab = vol.image_hu, vol.label
        lung, ggo, cons = (float(hu[lab == k].mean()) for k in (LUNG, GGO, CONSOLIDATION))
        assert -900.0 < lung < -700.0
        assert -700.0 < ggo < -450.0
        assert -250.0 < cons < 100.0
        assert ggo > lung + 100.0
        assert cons > ggo + 250.0


def test_label_values_and_infection_modes(vols128):
    for vol in vols128:
        assert set(np.unique(vol.label).tolist()) == {BACKGROUND, LUNG, GGO, CONSOLIDATION}
    none = P.ct_phantom_volume(96, n_slices=8, seed=1, infection="none")
    assert set(np.unique(none.label).tolist()) == {BACKGROUND, LUNG}
    ggo = P.ct_phantom_volume(96, n_slices=8, seed=1, infection="ggo")
    assert set(np.unique(ggo.label).tolist()) == {BACKGROUND, LUNG, GGO}
    hu, lab = P.ct_phantom_slice(96, seed=1, infection="none")
    assert lab.max() == LUNG


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_lesions_lie_inside_the_lung(seed):
    # Lesions are drawn after the anatomy, so the same seed without infection gives the same
    # lung: every infected voxel must be a lung voxel of that patient.
    mixed = P.ct_phantom_volume(96, n_slices=12, seed=seed, infection="mixed")
    clean = P.ct_phantom_volume(96, n_slices=12, seed=seed, infection="none")
    infected = mixed.label >= GGO
    assert infected.sum() > 50
    assert np.array_equal(mixed.label > 0, clean.label > 0)
    # and inside the filled lung outline of each slice
    for z in range(mixed.label.shape[0]):
        filled = ndi.binary_fill_holes(mixed.label[z] > 0)
        assert not (infected[z] & ~filled).any()


def test_volume_lesions_span_consecutive_slices(vols128):
    for vol in vols128:
        inf = vol.label >= GGO
        per_slice = inf.reshape(inf.shape[0], -1).any(1)
        idx = np.flatnonzero(per_slice)
        assert len(idx) >= 3
        with_neighbour = [
            z for z in idx if (z > 0 and per_slice[z - 1]) or (z + 1 < len(per_slice) and per_slice[z + 1])
        ]
        assert len(with_neighbour) >= 0.8 * len(idx)
        # consistent position: infected pixels overlap between consecutive slices
        overlap = (inf[1:] & inf[:-1]).sum()
        assert overlap > 20


def test_volume_anatomy_changes_smoothly(vols128):
    for vol in vols128:
        area = (vol.label > 0).reshape(vol.label.shape[0], -1).sum(1)
        mid = area[4:12].max()
        assert area[0] < 0.8 * mid and area[-1] < 0.8 * mid  # base and apex are smaller
        lung = vol.label > 0
        for z in range(3, 13):  # mid chest: neighbouring slices overlap strongly
            iou = (lung[z] & lung[z + 1]).sum() / max(1, (lung[z] | lung[z + 1]).sum())
            assert iou > 0.5


# ---------------------------------------------------------------- writers


def test_write_ct_phantom_roundtrip(tmp_path):
    import nibabel as nib

    paths = P.write_ct_phantom(tmp_path, n_patients=4, n_slices=5, size=48, seed=7)
    names = [p.name for p in paths]
    assert names[-1] == "volumes.csv"
    assert names[:-1] == [f"P00{i}_{kind}.nii.gz" for i in range(1, 5) for kind in ("image", "label")]
    with open(tmp_path / "volumes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0].keys()) == list(P.CT_CSV_FIELDS)
    plan = P.phantom_patients(4, seed=7)
    assert [p[2] for p in plan].count("none") == 1
    for (name, pseed, infection), row in zip(plan, rows, strict=True):
        assert row["name"] == name
        vol = P.ct_phantom_volume(size=48, n_slices=5, seed=pseed, infection=infection)
        img = nib.load(tmp_path / row["image"])
        lab = nib.load(tmp_path / row["label"])
        img_arr, lab_arr = np.asanyarray(img.dataobj), np.asanyarray(lab.dataobj)
        assert img_arr.dtype == np.int16 and lab_arr.dtype == np.uint8
        assert img_arr.shape == (48, 48, 5)
        assert np.array_equal(img_arr, np.round(vol.image_hu).astype(np.int16).transpose(1, 2, 0))
        assert np.array_equal(lab_arr, vol.label.transpose(1, 2, 0))
        assert np.allclose(np.diag(img.affine)[:3], vol.spacing, rtol=1e-6)
        assert np.allclose(img.header.get_zooms(), vol.spacing, rtol=1e-6)
        counts = np.bincount(lab_arr.ravel(), minlength=4)
        assert [int(row[k]) for k in ("vox_bg", "vox_lung", "vox_ggo", "vox_consolidation")] == counts.tolist()
        assert (int(row["H"]), int(row["W"]), int(row["Z"])) == (48, 48, 5)
        assert float(row["spacing_slice_mm"]) == pytest.approx(vol.spacing[2], rel=1e-5)
        if infection == "none":
            assert counts[GGO] == 0 and counts[CONSOLIDATION] == 0
        else:
            assert counts[GGO] > 0
    assert len({p[1] for p in plan}) == 4  # different seeds per patient


def test_write_cxr_phantom(tmp_path):
    from PIL import Image

    paths = P.write_cxr_phantom(tmp_path, n_per_class=3, size=48, seed=1)
    assert paths[-1] == tmp_path / "manifest.csv"
    for k in P.CXR_CLASSES:
        pngs = sorted((tmp_path / k).glob("*.png"))
        assert [p.name for p in pngs] == [f"phantom_{k}_{i:03d}.png" for i in range(3)]
        im = Image.open(pngs[0])
        assert im.mode == "L" and im.size == (48, 48)
    with open(tmp_path / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0].keys()) == list(P.CXR_MANIFEST_FIELDS)
    assert len(rows) == 9
    assert {r["source"] for r in rows} == {"phantom"}
    assert len({r["patient_id"] for r in rows}) == 9
    for r in rows:
        assert (tmp_path / r["path"]).is_file()
        assert r["path"].split("/")[0] == r["label"]
    # images differ within a class
    a, b = (np.asarray(Image.open(tmp_path / rows[i]["path"])) for i in (0, 1))
    assert not np.array_equal(a, b)
    only = P.write_cxr_phantom(tmp_path / "two", n_per_class=1, size=32, classes=("Normal", "Pneumonia"))
    assert len(only) == 3 and not (tmp_path / "two" / "COVID-19").exists()


# ---------------------------------------------------------------- X-ray look and classes


def test_cxr_looks_like_a_pa_radiograph():
    for seed in range(3):
        img, lung = P._cxr_render(128, "Normal", np.random.default_rng(seed))
        assert img[:8, :8].mean() < 40 and img[:8, -8:].mean() < 40  # air above the shoulders
        lung_mean = img[lung].mean()
        mediastinum = img[40:100, 60:68].mean()
        abdomen = img[-12:, 40:88].mean()
        assert lung_mean + 40 < mediastinum and lung_mean + 40 < abdomen
        left, right = lung[:, :64].sum(), lung[:, 64:].sum()
        assert right < left  # the heart takes room from the left lung (image right)


def test_cxr_classes_differ_in_the_lung_fields():
    diffs = {"COVID-19": [], "Pneumonia": []}
    for seed in range(6):
        means = {}
        for k in P.CXR_CLASSES:
            img, lung = P._cxr_render(128, k, np.random.default_rng(seed))
            means[k] = float(img[lung].mean())
        for k in diffs:
            diffs[k].append(means[k] - means["Normal"])
    for k, d in diffs.items():
        assert min(d) > 1.0, (k, d)  # same patient and exposure per seed: disease only adds density
        assert np.mean(d) > 5.0, (k, d)
    # COVID-19 is bilateral, pneumonia mostly one-sided
    bilat = {"COVID-19": 0, "Pneumonia": 0}
    for seed in range(6):
        base, lung = P._cxr_render(128, "Normal", np.random.default_rng(seed))
        for k in bilat:
            img, _ = P._cxr_render(128, k, np.random.default_rng(seed))
            d = img.astype(float) - base
            sides = [d[:, :64][lung[:, :64]].mean(), d[:, 64:][lung[:, 64:]].mean()]
            bilat[k] += min(sides) > 4.0
    assert bilat["COVID-19"] >= 5 and bilat["Pneumonia"] <= 2


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "call",
    [
        lambda: P.ct_phantom_volume(64, infection="covid"),
        lambda: P.ct_phantom_slice(64, infection=""),
        lambda: P.ct_phantom_volume(31),
        lambda: P.ct_phantom_slice(16),
        lambda: P.ct_phantom_volume(64, n_slices=0),
        lambda: P.cxr_phantom(64, klass="normal"),
        lambda: P.cxr_phantom(20),
        lambda: P.phantom_patients(0),
    ],
)
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_bad_writer_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_patients"):
        P.write_ct_phantom(tmp_path / "a", n_patients=0)
    with pytest.raises(ValueError, match="klass"):
        P.write_cxr_phantom(tmp_path / "b", n_per_class=1, classes=("Normal", "TB"))
    with pytest.raises(ValueError, match="n_per_class"):
        P.write_cxr_phantom(tmp_path / "c", n_per_class=0)
