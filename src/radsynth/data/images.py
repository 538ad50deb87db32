"""2D image files (PNG, JPG, BMP, TIFF) via Pillow, and safe paths from manifests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from radsynth.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def read_grey(path: Path) -> tuple[np.ndarray, int]:
    """Read an image as greyscale -> ((H, W) float32 raw values, maximum of its integer dtype).

    8-bit images (also RGB / palette, converted to luminance) give 255; 16-bit give 65535.
    A truncated or corrupt file raises ``InputError`` naming it.
    """
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(img, dtype=np.int64)
                return array.astype(np.float32), 65535
            if img.mode == "F" and not np.isfinite(np.asarray(img)).all():
                raise InputError(path, "image contains NaN or infinite values")
            if img.mode not in ("L", "P"):
                img = img.convert("L")
            elif img.mode == "P":
                img = img.convert("L")
            return np.asarray(img, dtype=np.uint8).astype(np.float32), 255
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"cannot read image ({type(exc).__name__}: {exc})") from None


def read_index_png(path: Path) -> np.ndarray:
    """Read a mask PNG as stored integer values (palette indices for 'P' images), (H, W) int64."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in ("L", "P", "1", "I", "I;16", "I;16B", "I;16L"):
                img = img.convert("L")
            return np.asarray(img).astype(np.int64)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except Exception as exc:
        raise InputError(path, f"cannot read mask ({type(exc).__name__}: {exc})") from None


def resolve_inside(root: Path, relative: str, manifest: Path) -> Path:
    """``root / relative``, refusing absolute paths and paths that leave ``root``."""
    if not relative:
        raise InputError(manifest, "a row has an empty file path")
    candidate = Path(relative)
    if candidate.is_absolute():
        raise InputError(manifest, f"path '{relative}' is absolute; manifest paths must be relative to its folder")
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise InputError(manifest, f"path '{relative}' points outside the manifest's folder")
    if not resolved.exists():
        raise InputError(manifest, f"names '{relative}', which does not exist")
    return resolved


def read_csv_rows(path: Path, required: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """Rows of a comma-separated UTF-8 file (with or without the byte-order mark Excel writes) as dicts;
    missing required columns, another delimiter or an unreadable file raise InputError."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            # short rows get "" (not None) and cells beyond the header are dropped
            rows = [{k: v or "" for k, v in row.items() if k is not None} for row in reader]
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"cannot read CSV ({type(exc).__name__}: {exc})") from None
    missing = [c for c in required if c not in columns]
    if len(columns) == 1:  # one column whose name holds a delimiter: the file is not comma-separated
        other = next((d for d in (";", "\t", "|") if d in columns[0]), None)
        if other:
            name = {";": "semicolons (';')", "\t": "tabs", "|": "'|'"}[other]
            raise InputError(path, f"separates its columns with {name}; radsynth reads comma-separated files "
                                   f"(in Excel: save as 'CSV UTF-8 (comma delimited)')")
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)} (has {', '.join(columns) or 'none'})")
    if not rows:
        raise InputError(path, "has a header but no rows")
    return rows
