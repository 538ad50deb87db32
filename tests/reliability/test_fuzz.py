"""Fuzz every reader and the manifest parser: random bytes, mutated valid files and random shapes give
either a result or the clear ``InputError`` (which the CLI prints as one line, exit 2) - never another
exception, and never a hang (each example is cut off after ``HANG_S`` seconds).

Bounded for CI: ``derandomize=True`` (the same examples on every run), no example database, at most
40 examples per property.
"""

from __future__ import annotations

import contextlib
import io
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from radsynth.config import config_from_dict, load_yaml, parse_set
from radsynth.data.detect import open_source
from radsynth.data.dicom import write_dicom_series
from radsynth.data.images import read_grey, read_index_png
from radsynth.data.nifti import load_volume, save_volume
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.nets.state_file import read_state_file
from radsynth.training.checkpoint import read_checkpoint, save_checkpoint
from radsynth.synth.pix2pix import Pix2PixConfig

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the invalid values these tests write
HANG_S = 20
FUZZ = settings(max_examples=40, deadline=5000, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = settings(FUZZ, max_examples=20)


@contextlib.contextmanager
def _no_hang() -> Iterator[None]:
    def fire(signum, frame):
        raise AssertionError(f"a reader hung for more than {HANG_S} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(HANG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def clear_or_fine(read: Callable[[], object]) -> str:
    """Run ``read``: 'ok', or 'input-error' for the clear error; any other exception fails the test."""
    with _no_hang(), contextlib.redirect_stderr(io.StringIO()):
        try:
            result = read()
            if hasattr(result, "units"):  # a Source loads its units lazily: load them too
                for unit in result.units:
                    unit.load()
        except InputError as exc:
            assert exc.where and exc.problem
            return "input-error"
    return "ok"


def _mutate(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    buffer = bytearray(data)
    for position, value in flips:
        buffer[position % len(buffer)] = value
    return bytes(buffer[:cut] if cut is not None else buffer)


MUTATIONS = st.tuples(st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=12), st.one_of(st.none(), st.integers(0, 2000)))


def _valid(kind: str) -> bytes:
    """A small valid file of each kind, as bytes (the seed that mutations start from)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if kind == "nii":
            save_volume(root / "v.nii", np.arange(2 * 6 * 5, dtype=np.int16).reshape(2, 6, 5) - 1000)
            return (root / "v.nii").read_bytes()
        if kind == "nii.gz":
            save_volume(root / "v.nii.gz", np.arange(2 * 6 * 5, dtype=np.int16).reshape(2, 6, 5) - 1000)
            return (root / "v.nii.gz").read_bytes()
        if kind == "dcm":
            return write_dicom_series(root, np.full((1, 6, 6), -500.0, np.float32))[0].read_bytes()
        if kind == "png":
            Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(root / "a.png")
            return (root / "a.png").read_bytes()
        if kind == "png16":
            Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).save(root / "a.png")
            return (root / "a.png").read_bytes()
        raise ValueError(kind)


VALID = {kind: _valid(kind) for kind in ("nii", "nii.gz", "dcm", "png", "png16")}


# ---- NIfTI


@FUZZ
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".nii", ".nii.gz"]))
def test_nifti_random_bytes(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"P_image{suffix}"
        path.write_bytes(data)
        assert clear_or_fine(lambda: load_volume(path)) == "input-error" or len(data) > 348
        clear_or_fine(lambda: open_source(Path(tmp)))


@FUZZ
@given(mutation=MUTATIONS, suffix=st.sampled_from(["nii", "nii.gz"]))
def test_nifti_mutated(mutation, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"P_image.{suffix}"
        path.write_bytes(_mutate(VALID[suffix], *mutation))
        clear_or_fine(lambda: open_source(Path(tmp)))


SHAPES = st.lists(st.integers(1, 5), min_size=1, max_size=5).map(tuple)


@FUZZ
@given(image_shape=SHAPES, label_shape=SHAPES, dtype=st.sampled_from([np.int16, np.uint8, np.float32, np.float64]),
       labels=st.integers(0, 6), special=st.sampled_from([None, np.nan, np.inf]))
def test_nifti_random_shapes_and_values(image_shape, label_shape, dtype, labels, special):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        image = np.full(image_shape, 7, dtype)
        if special is not None and np.issubdtype(dtype, np.floating):
            image.flat[0] = special
        nib.save(nib.Nifti1Image(image, np.eye(4)), str(root / "P_image.nii"))
        nib.save(nib.Nifti1Image(np.full(label_shape, labels, np.uint8), np.eye(4)), str(root / "P_label.nii"))
        outcome = clear_or_fine(lambda: open_source(root))
        squeezed = tuple(d for i, d in enumerate(image_shape) if i < 3 or d != 1)
        if image_shape != label_shape or labels > 3 or len(squeezed) > 3 or (special is not None and np.issubdtype(dtype, np.floating)):
            assert outcome == "input-error"


# ---- DICOM


@FUZZ
@given(mutation=MUTATIONS)
def test_dicom_mutated(mutation):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "s.dcm").write_bytes(_mutate(VALID["dcm"], *mutation))
        clear_or_fine(lambda: open_source(Path(tmp)))


@SMALL
@given(data=st.binary(max_size=1500), magic=st.booleans())
def test_dicom_random_bytes(data, magic):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "s.dcm").write_bytes((b"\0" * 128 + b"DICM" if magic else b"") + data)
        assert clear_or_fine(lambda: open_source(Path(tmp))) == "input-error"


# ---- PNG and other 2D images


@FUZZ
@given(data=st.binary(max_size=1500))
def test_image_random_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.png"
        path.write_bytes(data)
        assert clear_or_fine(lambda: read_grey(path)) == "input-error"
        assert clear_or_fine(lambda: read_index_png(path)) == "input-error"


@FUZZ
@given(mutation=MUTATIONS, kind=st.sampled_from(["png", "png16"]))
def test_image_mutated(mutation, kind):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.png"
        path.write_bytes(_mutate(VALID[kind], *mutation))
        clear_or_fine(lambda: read_grey(path))
        clear_or_fine(lambda: read_index_png(path))


@FUZZ
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple),
       mode=st.sampled_from(["L", "I;16", "F", "RGB", "LA", "1", "P"]), special=st.sampled_from([0.0, np.nan, np.inf]))
def test_image_random_shapes_and_modes(shape, mode, special):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("a.tif" if mode == "F" else "a.png")
        array = np.zeros(shape, np.float32)
        array.flat[0] = special
        try:
            image = Image.fromarray(array if mode == "F" else np.nan_to_num(array, posinf=0.0).astype(np.uint8 if mode != "I;16" else np.uint16))
            image = image if mode == "F" else image.convert(mode) if mode != "I;16" else image
            image.save(path)
        except (TypeError, ValueError, OSError, KeyError):
            return  # Pillow cannot write this shape / mode; nothing to read
        outcome = clear_or_fine(lambda: read_grey(path))
        if mode == "F" and not np.isfinite(special):
            assert outcome == "input-error"


# ---- CSV manifests


CELLS = st.one_of(st.sampled_from(["a.png", "m.png", "../x.png", "/abs.png", "", "p1", "train", "test", "3", "x", "missing.png"]), st.text(max_size=8))
COLUMNS = st.lists(st.sampled_from(["image", "mask", "label", "lung_mask", "infection_mask", "patient", "split", "slice_index", "volume"]), min_size=1, max_size=5, unique=True)


@FUZZ
@given(columns=COLUMNS, rows=st.lists(st.lists(CELLS, min_size=0, max_size=6), max_size=4))
def test_manifest_random_rows(columns, rows):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        Image.fromarray(np.full((8, 8), 100, np.uint8)).save(root / "a.png")
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "m.png")
        lines = [",".join(columns)] + [",".join(f'"{c}"' for c in row) for row in rows]
        (root / "manifest.csv").write_text("\n".join(lines) + "\n")
        clear_or_fine(lambda: open_source(root))


@FUZZ
@given(data=st.binary(max_size=600))
def test_manifest_random_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "manifest.csv").write_bytes(data)
        clear_or_fine(lambda: open_source(Path(tmp)))
        (Path(tmp) / "dataset.json").write_text('{"format": "radsynth-slices/1"}')
        clear_or_fine(lambda: SliceSet(Path(tmp)))


# ---- configs, checkpoints, weights files


@FUZZ
@given(data=st.binary(max_size=400))
def test_yaml_config_random_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_bytes(data)
        clear_or_fine(lambda: config_from_dict(Pix2PixConfig, load_yaml(path)))


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(), st.text(max_size=6), st.lists(st.integers(-3, 3), max_size=4))


@FUZZ
@given(values=st.dictionaries(st.sampled_from(["lr", "steps", "size", "ngf", "batch_size", "dropout", "wppl_weights", "norm", "bogus", "seed", "amp"]), SCALARS, max_size=4),
       items=st.lists(st.text(max_size=12), max_size=3))
def test_config_random_values(values, items):
    clear_or_fine(lambda: config_from_dict(Pix2PixConfig, values))
    clear_or_fine(lambda: parse_set(items))


@SMALL
@given(data=st.binary(max_size=800), suffix=st.sampled_from([".safetensors", ".pt", ".pth"]))
def test_weights_and_checkpoints_random_bytes(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"w{suffix}"
        path.write_bytes(data)
        assert clear_or_fine(lambda: read_state_file(path)) == "input-error"
        assert clear_or_fine(lambda: read_checkpoint(path)) == "input-error"


@SMALL
@given(mutation=MUTATIONS)
def test_checkpoint_mutated(mutation):
    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(Path(tmp), 1, {"net": torch.nn.Linear(3, 2)}, {})
        original = path.read_bytes()
        path.write_bytes(_mutate(original, *mutation))
        outcome = clear_or_fine(lambda: read_checkpoint(path))
        assert outcome == ("ok" if path.read_bytes() == original else "input-error")  # the hash catches every change


@pytest.mark.parametrize("reader", [load_volume, read_grey, read_index_png, read_state_file, load_yaml, SliceSet, open_source])
def test_missing_file_is_a_clear_error(reader, tmp_path):
    assert clear_or_fine(lambda: reader(tmp_path / "nothing.nii.gz")) == "input-error"
