"""Bad input -> one line ``radsynth: error: <file>: <problem>``, exit code 2, no traceback, nothing written.

Every case runs the real command in-process (``radsynth.cli.main``). Cases already covered by
tests/data/test_bad_input.py (truncated NIfTI / DICOM / PNG, NIfTI and PNG image-mask shape
mismatch, label values outside the scheme, manifest naming a missing file or a path outside its
folder, empty folders) are not repeated here; these are the others.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

from radsynth.data.dicom import write_dicom_series
from radsynth.data.nifti import save_volume
from tests.reliability.helpers import TINY_PIX2PIX, assert_one_line_error, run_cli, tree

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the invalid values these tests write
Case = tuple[list, str, str]  # (command after `radsynth`, text naming the file or option, the problem)
RNG = np.random.default_rng(0)
GARBAGE = RNG.integers(0, 256, 600, dtype=np.uint8).tobytes()


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _prepare(src: Path, out: Path) -> list:
    return ["data", "prepare", src, "--out", out, "--size", "16"]


def _train(data: Path, out: Path, *extra: str) -> list:
    return ["train", "pix2pix", "--data", data, "--out", out, "--steps", "2", *TINY_PIX2PIX, *extra]


def _copy(prepared: Path, tmp: Path) -> tuple[Path, list[dict]]:
    import csv

    root = tmp / "set"
    shutil.copytree(prepared, root)
    return root, list(csv.DictReader(open(root / "manifest.csv")))


# ---- raw sources: NIfTI


def nifti_random_bytes(tmp, out, prepared) -> Case:
    (tmp / "nii").mkdir()
    (tmp / "nii" / "P_image.nii.gz").write_bytes(GARBAGE)
    return _prepare(tmp / "nii", out), "P_image.nii.gz", "cannot read NIfTI"


def nifti_uncompressed_random_bytes(tmp, out, prepared) -> Case:
    (tmp / "nii").mkdir()
    (tmp / "nii" / "P_image.nii").write_bytes(GARBAGE)
    return _prepare(tmp / "nii", out), "P_image.nii", "cannot read NIfTI"


def nifti_4d(tmp, out, prepared) -> Case:
    (tmp / "nii").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3, 2), np.float32), np.eye(4)), str(tmp / "nii" / "P_image.nii.gz"))
    return _prepare(tmp / "nii", out), "P_image.nii.gz", "expected a 3D volume"


def nifti_nan(tmp, out, prepared) -> Case:
    (tmp / "nii").mkdir()
    volume = np.full((3, 8, 8), -500.0, np.float32)
    volume[1, 4, 4] = np.nan
    save_volume(tmp / "nii" / "P_image.nii.gz", volume)
    return _prepare(tmp / "nii", out), "P_image.nii.gz", "NaN or infinite"


def nifti_inf(tmp, out, prepared) -> Case:
    (tmp / "nii").mkdir()
    volume = np.full((3, 8, 8), -500.0, np.float32)
    volume[2, 0, 0] = -np.inf
    save_volume(tmp / "nii" / "P_image.nii.gz", volume)
    return _prepare(tmp / "nii", out), "P_image.nii.gz", "NaN or infinite"


def nifti_fractional_labels(tmp, out, prepared) -> Case:
    (tmp / "nii").mkdir()
    save_volume(tmp / "nii" / "P_image.nii.gz", np.zeros((2, 8, 8), np.int16))
    save_volume(tmp / "nii" / "P_label.nii.gz", np.full((2, 8, 8), 0.5, np.float32))
    return _prepare(tmp / "nii", out), "P_label.nii.gz", "non-integer values"


def nifti_some_labels_missing(tmp, out, prepared) -> Case:
    (tmp / "nii").mkdir()
    for name in ("P", "Q"):
        save_volume(tmp / "nii" / f"{name}_image.nii.gz", np.zeros((2, 8, 8), np.int16))
    save_volume(tmp / "nii" / "P_label.nii.gz", np.zeros((2, 8, 8), np.uint8))
    return _prepare(tmp / "nii", out), "Q_image.nii.gz", "some volumes have label files"


# ---- raw sources: DICOM


def dicom_random_bytes(tmp, out, prepared) -> Case:
    (tmp / "dcm").mkdir()
    (tmp / "dcm" / "x.dcm").write_bytes(GARBAGE)
    return _prepare(tmp / "dcm", out), "x.dcm", "cannot read DICOM header"


def dicom_magic_then_garbage(tmp, out, prepared) -> Case:
    (tmp / "dcm").mkdir()
    (tmp / "dcm" / "x.dcm").write_bytes(b"\0" * 128 + b"DICM" + GARBAGE)
    return _prepare(tmp / "dcm", out), "x.dcm", "cannot read DICOM"


def _edit_dicom(tmp: Path, edit: Callable[[pydicom.Dataset], None]) -> Path:
    paths = write_dicom_series(tmp / "dcm", np.full((3, 8, 8), -500.0, np.float32))
    ds = pydicom.dcmread(paths[1])
    edit(ds)
    ds.save_as(paths[1])
    return paths[1]


def dicom_rows_lie(tmp, out, prepared) -> Case:
    path = _edit_dicom(tmp, lambda ds: setattr(ds, "Rows", 4000))
    return _prepare(tmp / "dcm", out), path.name, "cannot read DICOM pixels"


def dicom_nan_rescale(tmp, out, prepared) -> Case:
    path = _edit_dicom(tmp, lambda ds: setattr(ds, "RescaleSlope", "NaN"))
    return _prepare(tmp / "dcm", out), path.name, "NaN or infinite"


def dicom_bad_orientation(tmp, out, prepared) -> Case:
    path = _edit_dicom(tmp, lambda ds: setattr(ds, "ImageOrientationPatient", [1, 0]))
    return _prepare(tmp / "dcm", out), path.name, "unusable ImagePositionPatient"


def dicom_slice_shapes_differ(tmp, out, prepared) -> Case:
    paths = write_dicom_series(tmp / "dcm", np.zeros((3, 8, 8), np.float32))
    ds = pydicom.dcmread(paths[2])
    ds.Rows, ds.Columns = 4, 16
    ds.save_as(paths[2])
    return _prepare(tmp / "dcm", out), "slice_0002.dcm", "differs from the series'"


# ---- raw sources: PNG / CSV manifests


def _manifest(tmp: Path, text: str | bytes, images: tuple[str, ...] = ("a.png",)) -> Path:
    root = tmp / "png"
    for name in images:
        _png(root / name, np.full((8, 8), 100, np.uint8))
    path = root / "manifest.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def png_random_bytes(tmp, out, prepared) -> Case:
    root = _manifest(tmp, "image\nb.png\n")
    (root / "b.png").write_bytes(GARBAGE)
    return _prepare(root, out), "b.png", "cannot read image"


def float_tiff_nan(tmp, out, prepared) -> Case:
    root = _manifest(tmp, "image\nf.tif\n")
    array = np.zeros((8, 8), np.float32)
    array[3, 3] = np.nan
    Image.fromarray(array, mode="F").save(root / "f.tif")
    return _prepare(root, out), "f.tif", "NaN or infinite"


def csv_not_utf8(tmp, out, prepared) -> Case:
    return _prepare(_manifest(tmp, b"image\n\xff\xfe\x00a.png\n"), out), "manifest.csv", "cannot read CSV"


def csv_header_only(tmp, out, prepared) -> Case:
    return _prepare(_manifest(tmp, "image,lung_mask\n"), out), "manifest.csv", "has a header but no rows"


def csv_no_image_column(tmp, out, prepared) -> Case:
    return _prepare(_manifest(tmp, "picture\na.png\n"), out), "manifest.csv", "neither an 'image' column"


def csv_short_row(tmp, out, prepared) -> Case:
    return _prepare(_manifest(tmp, "image,mask\na.png\n"), out), "manifest.csv", "empty file path"


def csv_slice_index_not_integer(tmp, out, prepared) -> Case:
    return _prepare(_manifest(tmp, "image,slice_index\na.png,abc\n"), out), "manifest.csv", "slice_index 'abc'"


def csv_absolute_path(tmp, out, prepared) -> Case:
    return _prepare(_manifest(tmp, f"image\n{tmp / 'png' / 'a.png'}\n"), out), "manifest.csv", "is absolute"


def csv_patient_in_two_splits(tmp, out, prepared) -> Case:
    root = _manifest(tmp, "image,patient,split\na.png,p1,train\nb.png,p1,test\n", images=("a.png", "b.png"))
    return _prepare(root, out), "manifest.csv", "carry different splits"


def medseg_mask_unknown_value(tmp, out, prepared) -> Case:
    root = _manifest(tmp, "image,mask\na.png,m.png\n")
    _png(root / "m.png", np.full((8, 8), 5, np.uint8))
    return _prepare(root, out), "m.png", "outside the 'medseg' scheme"


# ---- prepared sets given to `train`


def prepared_label_shape_mismatch(tmp, out, prepared) -> Case:
    root, rows = _copy(prepared, tmp)
    train = [r for r in rows if r["split"] == "train"]
    for row in train:
        _png(root / row["label"], np.zeros((16, 16), np.uint8))
    return _train(root, out), train[0]["label"], "differs from image shape"


def prepared_unknown_label_value(tmp, out, prepared) -> Case:
    root, rows = _copy(prepared, tmp)
    row = next(r for r in rows if r["split"] == "train")
    _png(root / row["label"], np.full((32, 32), 9, np.uint8))
    return _train(root, out), row["label"], "outside the schema"


def prepared_all_masks_empty(tmp, out, prepared) -> Case:
    root, rows = _copy(prepared, tmp)
    for row in rows:
        _png(root / row["label"], np.zeros((32, 32), np.uint8))
    return _train(root, out), "set", "empty (all background)"


def prepared_chosen_slice_empty(tmp, out, prepared) -> Case:
    root, rows = _copy(prepared, tmp)
    _png(root / rows[0]["label"], np.zeros((32, 32), np.uint8))
    return ["train", "cosingan", "--data", root, "--slice", rows[0]["id"], "--out", out, "--preset", "quick", "--device", "cpu"], rows[0]["id"], "empty label map"


def prepared_8bit_image(tmp, out, prepared) -> Case:
    root, rows = _copy(prepared, tmp)
    row = next(r for r in rows if r["split"] == "train")
    _png(root / row["image"], np.zeros((32, 32), np.uint8))
    return _train(root, out), row["image"], "must be 16-bit PNG"


def prepared_dataset_json_corrupt(tmp, out, prepared) -> Case:
    root, _ = _copy(prepared, tmp)
    (root / "dataset.json").write_text('{"format": "radsynth-slices/1", ')
    return _train(root, out), "dataset.json", "cannot read"


def prepared_dataset_json_not_a_mapping(tmp, out, prepared) -> Case:
    root, _ = _copy(prepared, tmp)
    (root / "dataset.json").write_text("[1, 2]")
    return _train(root, out), "dataset.json", "is not 'radsynth-slices/1'"


def prepared_manifest_missing_image(tmp, out, prepared) -> Case:
    root, rows = _copy(prepared, tmp)
    row = next(r for r in rows if r["split"] == "train")
    (root / row["image"]).unlink()
    return _train(root, out), "manifest.csv", f"names '{row['image']}', which does not exist"


def prepared_manifest_escapes(tmp, out, prepared) -> Case:
    root, rows = _copy(prepared, tmp)
    row = next(r for r in rows if r["split"] == "train")
    text = (root / "manifest.csv").read_text().replace(row["image"], "../../secret.png")
    (root / "manifest.csv").write_text(text)
    return _train(root, out), "manifest.csv", "outside the manifest's folder"


# ---- configs


def config_unknown_key(tmp, out, prepared) -> Case:
    return _train(prepared, out, "--set", "bogus=1"), "config", "unknown key(s) bogus"


def config_out_of_range(tmp, out, prepared) -> Case:
    return _train(prepared, out, "--set", "lr=-1"), "config", "lr must be positive"


def config_nan(tmp, out, prepared) -> Case:
    return _train(prepared, out, "--set", "lr=.nan"), "config.lr", "must be a finite number"


def config_zero_steps(tmp, out, prepared) -> Case:
    return _train(prepared, out, "--set", "steps=0"), "config", "steps must be >= 1"


def config_wrong_type(tmp, out, prepared) -> Case:
    return _train(prepared, out, "--set", "batch_size=true"), "config.batch_size", "expected an integer"


def config_unknown_preset(tmp, out, prepared) -> Case:
    return _train(prepared, out, "--preset", "fastest"), "--preset", "unknown preset 'fastest'"


def config_yaml_unknown_key(tmp, out, prepared) -> Case:
    (tmp / "c.yaml").write_text("steps: 3\nlearning_rate: 0.1\n")
    return _train(prepared, out, "--config", tmp / "c.yaml"), "config", "unknown key(s) learning_rate"


def config_yaml_broken(tmp, out, prepared) -> Case:
    (tmp / "c.yaml").write_text("steps: [1, 2\n")  # the parser's message spans several lines
    return _train(prepared, out, "--config", tmp / "c.yaml"), "c.yaml", "cannot read YAML"


def config_yaml_binary(tmp, out, prepared) -> Case:
    (tmp / "c.yaml").write_bytes(GARBAGE)
    return _train(prepared, out, "--config", tmp / "c.yaml"), "c.yaml", "cannot read YAML"


def config_yaml_not_a_mapping(tmp, out, prepared) -> Case:
    (tmp / "c.yaml").write_text("- 1\n- 2\n")
    return _train(prepared, out, "--config", tmp / "c.yaml"), "c.yaml", "must hold a mapping"


def config_contradicts_the_method(tmp, out, prepared) -> Case:
    return _train(prepared, out, "--set", "variant=enhanced"), "--set", "variant=enhanced contradicts 'pix2pix'"


def config_yaml_contradicts_the_method(tmp, out, prepared) -> Case:
    (tmp / "c.yaml").write_text("variant: enhanced\n")
    return _train(prepared, out, "--config", tmp / "c.yaml"), "--config", "variant=enhanced contradicts 'pix2pix'"


def config_unused_weights_file(tmp, out, prepared) -> Case:
    return _train(prepared, out, "--set", f"vgg_weights={tmp / 'vgg.safetensors'}"), "config", "plain pix2pix has none"


def config_segment_out_of_range(tmp, out, prepared) -> Case:
    return ["evaluate", "segment", "--train", "oc", "--test", prepared, "--out", out, "--set", "lr=-5"], "config", "lr must be positive"


# ---- runs given to `synth`


def synth_all_conditions_empty(tmp, out, prepared) -> Case:
    root, rows = _copy(prepared, tmp)
    for row in rows:
        _png(root / row["label"], np.zeros((32, 32), np.uint8))
    run = tmp / "run"
    code, _, err = run_cli(*_train(prepared, run))
    assert code == 0, err
    return ["synth", run, "--conditions", root, "--out", out, "--device", "cpu"], "set", "every label map is empty"


def synth_not_a_run(tmp, out, prepared) -> Case:
    return ["synth", prepared, "--conditions", prepared, "--out", out], str(prepared), "is not a radsynth run"


CASES = [v for k, v in list(globals().items()) if callable(v) and getattr(v, "__annotations__", {}).get("return") == "Case"]


def test_cases_are_collected():
    assert len(CASES) >= 40


@pytest.mark.parametrize("make_case", CASES, ids=lambda f: f.__name__)
def test_bad_input_is_one_clear_line_and_leaves_nothing(make_case, tmp_path, phantom_prepared):
    out_parent = tmp_path / "out"
    args, names, problem = make_case(tmp_path, out_parent / "result", phantom_prepared)
    before = tree(tmp_path)
    code, out, err = run_cli(*args)
    assert_one_line_error(code, out, err, names, problem)
    assert tree(tmp_path) == before  # no output, no temporary folder, inputs untouched


def test_every_case_is_listed_in_the_readme():
    readme = (Path(__file__).parent / "README.md").read_text()
    missing = [f.__name__ for f in CASES if f"`{f.__name__}`" not in readme]
    assert missing == []
