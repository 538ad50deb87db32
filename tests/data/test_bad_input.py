"""Each bad input ends with one line naming the file and the problem, exit code 2, nothing half-written."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radsynth.data.dicom import write_dicom_series
from radsynth.data.nifti import save_volume
from radsynth.progress import without_progress


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def _slice_set(root: Path, lung: np.ndarray | None = None, infection: np.ndarray | None = None, image_path: str = "images/0.png",
               delimiter: str = ",", encoding: str = "utf-8") -> Path:
    _png(root / "images" / "0.png", np.full((16, 16), 100))
    _png(root / "lung" / "0.png", np.zeros((16, 16)) if lung is None else lung)
    _png(root / "infection" / "0.png", np.zeros((16, 16)) if infection is None else infection)
    with open(root / "manifest.csv", "w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["image", "lung_mask", "infection_mask", "volume"])
        writer.writerow([image_path, "lung/0.png", "infection/0.png", "v1"])
    return root


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def case_missing_path(tmp: Path) -> tuple[Path, str, str]:
    return tmp / "nope", "nope", "does not exist"


def case_truncated_nifti(tmp: Path):
    root = tmp / "nii"
    root.mkdir()
    save_volume(root / "P_image.nii.gz", np.random.default_rng(0).integers(-1000, 400, (8, 32, 32)).astype(np.int16))
    save_volume(root / "P_label.nii.gz", np.zeros((8, 32, 32), np.uint8))
    _truncate(root / "P_image.nii.gz")
    return root, "P_image.nii.gz", "cannot read NIfTI"


def case_nifti_shape_mismatch(tmp: Path):
    root = tmp / "nii"
    root.mkdir()
    save_volume(root / "P_image.nii.gz", np.zeros((4, 8, 8), np.int16))
    save_volume(root / "P_label.nii.gz", np.zeros((4, 8, 9), np.uint8))
    return root, "P_label.nii.gz", "differs from image"


def case_nifti_label_values(tmp: Path):
    root = tmp / "nii"
    root.mkdir()
    save_volume(root / "P_image.nii.gz", np.zeros((2, 8, 8), np.int16))
    save_volume(root / "P_label.nii.gz", np.full((2, 8, 8), 7, np.uint8))
    return root, "P_label.nii.gz", "outside the 'schema' scheme"


def case_truncated_dicom(tmp: Path):
    paths = write_dicom_series(tmp / "dcm", np.zeros((3, 16, 16), np.float32))
    _truncate(paths[2])
    return tmp / "dcm", paths[2].name, "cannot read DICOM"


def case_truncated_png(tmp: Path):
    root = _slice_set(tmp / "png")
    _png(root / "images" / "0.png", np.random.default_rng(0).integers(0, 255, (64, 64)))
    _truncate(root / "images" / "0.png")
    return root, "0.png", "cannot read image"


def case_png_shape_mismatch(tmp: Path):
    return _slice_set(tmp / "png", lung=np.zeros((16, 17))), "lung/0.png", "differs from image shape"


def case_png_mask_values(tmp: Path):
    return _slice_set(tmp / "png", infection=np.full((16, 16), 77)), "infection/0.png", "binary mask expected"


def case_manifest_missing_file(tmp: Path):
    return _slice_set(tmp / "png", image_path="images/404.png"), "manifest.csv", "images/404.png"


def case_manifest_escapes_folder(tmp: Path):
    return _slice_set(tmp / "png", image_path="../secret.png"), "manifest.csv", "outside the manifest's folder"


def case_manifest_with_semicolons(tmp: Path):  # Excel's "CSV" in locales with a decimal comma
    return _slice_set(tmp / "png", delimiter=";", encoding="utf-8-sig"), "manifest.csv", "separates its columns with semicolons"


def case_empty_folder(tmp: Path):
    (tmp / "empty").mkdir()
    return tmp / "empty", "empty", "folder is empty"


def case_empty_class_folder(tmp: Path):
    _png(tmp / "cxr" / "COVID-19" / "a.png", np.zeros((8, 8)))
    (tmp / "cxr" / "Normal").mkdir()
    return tmp / "cxr", "Normal", "class folder has no images"


CASES = [v for k, v in sorted(globals().items()) if k.startswith("case_")]


@pytest.mark.parametrize("verb", ["inspect", "prepare"])
@pytest.mark.parametrize("make_case", CASES, ids=lambda f: f.__name__[5:])
def test_bad_input_is_one_clear_line_and_leaves_nothing(cli, tmp_path, make_case, verb):
    path, names, problem = make_case(tmp_path)
    out = tmp_path / "out" / "prepared"
    args = ("data", "inspect", path) if verb == "inspect" else ("data", "prepare", path, "--out", out, "--size", "16")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli(*args)
    assert result.code == 2
    lines = without_progress(result.err).strip().splitlines()  # progress lines (radsynth.progress) may come before it
    assert len(lines) == 1 and lines[0].startswith("radsynth: error: ")
    assert names in lines[0] and problem in lines[0]
    assert "Traceback" not in result.err and result.out == ""
    assert not out.exists()
    leftovers = list((tmp_path / "out").iterdir()) if (tmp_path / "out").exists() else []
    assert leftovers == []  # no temporary folder either
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "out") == [b for b in before if b != "out"]


def test_existing_output_is_not_overwritten_without_force(cli, nifti_pair_dir, tmp_path):
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    result = cli("data", "prepare", nifti_pair_dir, "--out", out, "--size", "16")
    assert result.code == 2 and "--force" in result.err
    assert (out / "keep.txt").read_text() == "precious"
    assert cli("data", "prepare", nifti_pair_dir, "--out", out, "--size", "16", "--force").code == 0
    assert not (out / "keep.txt").exists() and (out / "manifest.csv").exists()


def test_console_script_exits_2_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "radsynth.cli", "data", "inspect", str(tmp_path / "missing")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"radsynth: error: {tmp_path / 'missing'}: does not exist"


def test_manifest_saved_by_excel_with_a_byte_order_mark_reads(cli, tmp_path):
    """Excel's 'CSV UTF-8' starts with a BOM; the first column must still be called 'image'."""
    root = _slice_set(tmp_path / "png", lung=np.pad(np.ones((8, 8)), 4) * 255, encoding="utf-8-sig")
    assert (root / "manifest.csv").read_bytes().startswith(b"\xef\xbb\xbfimage,")
    result = cli("data", "inspect", root)
    assert result.code == 0, result.err
    prepared = cli("data", "prepare", root, "--out", tmp_path / "prepared", "--size", "16")
    assert prepared.code == 0, prepared.err
    assert (tmp_path / "prepared" / "manifest.csv").read_text(encoding="utf-8").startswith("id,")
