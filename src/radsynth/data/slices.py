"""``SliceSet``: a prepared slice set as a torch Dataset of (image, label, meta)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from radsynth.data.images import read_csv_rows, resolve_inside
from radsynth.data.prepared import FORMAT, MANIFEST_COLUMNS, read_image, read_label
from radsynth.errors import InputError


class SliceSet(Dataset):
    """Slices of a prepared folder (see ``radsynth.data.prepared``), optionally one split only.

    ``dataset[i]`` is ``(image, label, meta)``: image (1, H, W) float32 in [-1, 1]; label (H, W)
    int64 schema labels, or an all-zero map with ``meta['has_label'] = False`` for image-only
    sets; meta a dict of str (id, patient, split, klass, slice_index, ...).
    ``cache=True`` keeps decoded slices in memory after the first read.
    """

    def __init__(self, root: Path | str, split: str | None = None, cache: bool = True) -> None:
        self.root = Path(root)
        info_path = self.root / "dataset.json"
        if not info_path.exists():
            raise InputError(self.root, "is not a prepared slice set (no dataset.json); run `radsynth data prepare` first")
        try:
            self.info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(info_path, f"cannot read ({exc})") from None
        if not isinstance(self.info, dict) or self.info.get("format") != FORMAT:
            found = self.info.get("format") if isinstance(self.info, dict) else type(self.info).__name__
            raise InputError(info_path, f"format '{found}' is not '{FORMAT}'")
        manifest = self.root / "manifest.csv"
        rows = read_csv_rows(manifest, required=MANIFEST_COLUMNS)
        self.rows = [r for r in rows if split is None or r["split"] == split]
        if not self.rows:
            raise InputError(manifest, f"no slices in split '{split}'")
        for row in self.rows:
            resolve_inside(self.root, row["image"], manifest)
            if row["label"]:
                resolve_inside(self.root, row["label"], manifest)
        self.split = split
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def patients(self) -> list[str]:
        return sorted({r["patient"] for r in self.rows})

    @property
    def classes(self) -> list[str]:
        return sorted({r["klass"] for r in self.rows if r["klass"]})

    def _decode(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = self.rows[index]
        image = read_image(self.root / row["image"])
        label = read_label(self.root / row["label"]) if row["label"] else np.zeros(image.shape, np.uint8)
        if label.shape != image.shape:
            raise InputError(self.root / row["label"], f"label shape {label.shape} differs from image shape {image.shape}")
        return torch.from_numpy(image)[None], torch.from_numpy(label.astype(np.int64))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
        if self._cache is not None and index in self._cache:
            image, label = self._cache[index]
        else:
            image, label = self._decode(index)
            if self._cache is not None:
                self._cache[index] = (image, label)
        meta = dict(self.rows[index])
        meta["has_label"] = "1" if meta["label"] else "0"
        return image.clone(), label.clone(), meta


def stack_patient(dataset: SliceSet, patient: str) -> tuple[np.ndarray, np.ndarray]:
    """All slices of one patient in slice order -> ((Z, H, W) float32 image, (Z, H, W) uint8 label).

    With ``radsynth.data.nifti.save_volume`` this turns a prepared (or synthetic) set back into a
    NIfTI volume.
    """
    indices = sorted((int(r["slice_index"]), i) for i, r in enumerate(dataset.rows) if r["patient"] == patient)
    if not indices:
        raise InputError(dataset.root, f"no slices of patient '{patient}'")
    items = [dataset[i] for _, i in indices]
    image = np.stack([img[0].numpy() for img, _, _ in items])
    label = np.stack([lab.numpy().astype(np.uint8) for _, lab, _ in items])
    return image, label
