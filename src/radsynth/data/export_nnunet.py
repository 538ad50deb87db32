"""Export prepared and synthetic slice sets as one nnU-Net v2 raw dataset.

``radsynth data export SET[,SET2...] --format nnunet --out DIR --dataset-id N --name NAME`` writes
``DIR/DatasetNNN_NAME/`` in nnU-Net v2's raw format (nnU-Net documentation, "dataset format"):

* ``imagesTr/<case>_0000.nii.gz`` and ``labelsTr/<case>.nii.gz``: every labelled slice of the train
  and val splits of every set given (real and synthetic together: nnU-Net's own cross-validation
  splits them);
* ``imagesTs/<case>_0000.nii.gz``: the real sets' test split (images only, for ``nnUNetv2_predict``);
  a synthetic image made from a test patient's condition is refused, as in ``evaluate``;
* ``dataset.json``: ``channel_names`` (``CT`` for sets in Hounsfield units, so nnU-Net uses its CT
  normalisation; else ``image``), ``labels`` from radsynth's schema (background, lung, ggo,
  consolidation or infection; consecutive integers as nnU-Net needs: a set without lung masks
  numbers its infection labels from 1), ``numTraining``, ``file_ending``, and a ``radsynth`` entry
  with each case's source set, kind and original id.

Each slice is one 2D case stored as an (H, W, 1) NIfTI with spacing (1, 1, 999), the convention of
nnU-Net's own 2D converters, in the original value range (HU for CT prepared from NIfTI or DICOM). A
synthetic image is in the [-1, 1] space its model learnt, which is its condition's normalisation, so
it is mapped back with its condition slice's range (``condition_set`` / ``condition_id``): real and
synthetic cases then share one intensity scale. Case names say what a case is: ``real_<patient>_<id>`` and ``syn_<model>_<id>``. All sets
must share the label scheme and the image size. The folder appears atomically.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np

from radsynth.atomic import atomic_output_dir
from radsynth.data.images import read_csv_rows
from radsynth.data.intensity import from_unit
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError

FILE_ENDING = ".nii.gz"
SLICE_SPACING = (1.0, 1.0, 999.0)  # nnU-Net's 2D convention: a huge spacing along the single slice
TRAIN_SPLITS = ("train", "val")


def nnunet_labels(has_lung: bool, typed: bool) -> tuple[dict[str, int], dict[int, int]]:
    """(dataset.json ``labels``, radsynth label -> nnU-Net label) for a scheme; nnU-Net needs 0..K."""
    names = ["background"] + (["lung"] if has_lung else []) + (["ggo", "consolidation"] if typed else ["infection"])
    labels = {name: i for i, name in enumerate(names)}
    mapping = {0: 0, 2: labels["ggo" if typed else "infection"], 3: labels["consolidation" if typed else "infection"]}
    if has_lung:
        mapping[1] = labels["lung"]
    return labels, mapping


def _case_name(prefix: str, *parts: str) -> str:
    return "_".join([prefix, *(re.sub(r"[^A-Za-z0-9-]+", "-", p).strip("-") or "x" for p in parts)])


def _write(path: Path, slice_2d: np.ndarray) -> None:
    """(H, W) -> (H, W, 1) NIfTI with spacing SLICE_SPACING."""
    nib.save(nib.Nifti1Image(np.ascontiguousarray(slice_2d[..., None]), np.diag([*SLICE_SPACING, 1.0])), str(path))


def _value_ranges(s: SliceSet) -> list[tuple[float, float, str]]:
    """(lo, hi, intensity mode) of each row: its own, or for a synthetic image its condition slice's."""
    conditions: dict[str, dict[str, dict[str, str]]] = {}
    out = []
    for row in s.rows:
        if row["intensity"] != "synthetic":
            out.append((float(row["value_lo"]), float(row["value_hi"]), row["intensity"]))
            continue
        where = row.get("condition_set", "")
        if where not in conditions:
            if not where or not (Path(where) / "manifest.csv").exists():
                raise InputError(s.root, f"synthetic slice {row['id']} names condition set '{where}', which is not there; "
                                         "its intensity scale comes from that set")
            conditions[where] = {r["id"]: r for r in read_csv_rows(Path(where) / "manifest.csv")}
        condition = conditions[where].get(row.get("condition_id", ""))
        if condition is None:
            raise InputError(s.root, f"synthetic slice {row['id']}: condition {row.get('condition_id')} not in {where}")
        out.append((float(condition["value_lo"]), float(condition["value_hi"]), condition["intensity"]))
    return out


def _check_sets(sets: list[SliceSet]) -> tuple[bool, bool]:
    """(has_lung, typed) shared by every set; mixed schemes, sizes or unlabelled sets are refused."""
    schemes = {(bool(s.info.get("has_lung", True)), bool(s.info.get("infection_typed", True))) for s in sets}
    if len(schemes) > 1:
        raise InputError("--format nnunet", f"the sets use different label schemes (has_lung, infection_typed): {sorted(schemes)}")
    sizes = {int(s.info.get("size") or s[0][0].shape[-1]) for s in sets}
    if len(sizes) > 1:
        raise InputError("--format nnunet", f"the sets have different image sizes {sorted(sizes)}; prepare / synthesize them at one size")
    for s in sets:
        if s.info.get("scheme") == "none" or not any(r["label"] for r in s.rows):
            raise InputError(s.root, "has no label maps; nnU-Net trains segmenters, so every set must be labelled")
    return schemes.pop()


def export_nnunet(set_dirs: list[Path], out: Path, dataset_id: int, name: str, force: bool = False) -> Path:
    """Write ``out/DatasetNNN_NAME`` from the sets (module docstring); returns that folder."""
    if not 1 <= dataset_id <= 999:
        raise InputError("--dataset-id", f"must be between 1 and 999 (nnU-Net's three digits), got {dataset_id}")
    if not re.fullmatch(r"[A-Za-z0-9-]+", name or ""):
        raise InputError("--name", f"'{name}' must be letters, digits and '-' only (nnU-Net splits folder names at '_')")
    sets = [SliceSet(Path(d), cache=False) for d in set_dirs]
    has_lung, typed = _check_sets(sets)
    ranges = [_value_ranges(s) for s in sets]
    hu = all(mode == "hu" for per_set in ranges for _, _, mode in per_set)
    labels, mapping = nnunet_labels(has_lung, typed)
    folder = Path(out) / f"Dataset{dataset_id:03d}_{name}"
    cases: dict[str, dict] = {}
    for s in sets:
        synthetic = s.info.get("synthetic") is True
        leaked = [r["id"] for r in s.rows if synthetic and r["split"] == "test"]
        if leaked:
            raise InputError(s.root, f"holds {len(leaked)} synthetic image(s) made from test patients' conditions (e.g. {leaked[0]}); "
                                     "synthesize from the train split (radsynth synth RUN --conditions DIR --split train)")
    with atomic_output_dir(folder, force) as tmp:
        for sub in ("imagesTr", "labelsTr", "imagesTs"):
            (tmp / sub).mkdir()
        for s, per_row in zip(sets, ranges):
            synthetic = s.info.get("synthetic") is True
            for index, row in enumerate(s.rows):
                split = row["split"]
                if split not in TRAIN_SPLITS and split != "test":
                    continue
                image, label, meta = s[index]
                model = str(meta.get("model") or s.info.get("model") or "synthetic")
                case = _case_name("syn", model, meta["id"]) if synthetic else _case_name("real", meta["patient"], meta["id"])
                if case in cases:
                    raise InputError(s.root, f"case name '{case}' occurs twice (the same set given twice?)")
                lo, hi, _ = per_row[index]
                values = from_unit(image[0].numpy(), lo, hi)
                if split == "test":
                    _write(tmp / "imagesTs" / f"{case}_0000{FILE_ENDING}", values)
                else:
                    if not meta["label"]:
                        raise InputError(s.root, f"slice {meta['id']} has no label map")
                    _write(tmp / "imagesTr" / f"{case}_0000{FILE_ENDING}", values)
                    mapped = np.vectorize(mapping.__getitem__, otypes=[np.uint8])(label.numpy())
                    _write(tmp / "labelsTr" / f"{case}{FILE_ENDING}", mapped)
                cases[case] = {"set": str(s.root.resolve()), "kind": "synthetic" if synthetic else "real", "id": meta["id"],
                               "patient": meta["patient"], "split": "test" if split == "test" else "train"}
        training = sum(c["split"] == "train" for c in cases.values())
        if training == 0:
            raise InputError("SET", "no labelled train / val slices to export")
        dataset = {
            "channel_names": {"0": "CT" if hu else "image"},
            "labels": labels,
            "numTraining": training,
            "file_ending": FILE_ENDING,
            "name": name,
            "description": "exported by radsynth: real and synthetic chest CT slices, one 2D case per slice",
            "radsynth": {"sets": [str(s.root.resolve()) for s in sets], "cases": cases},
        }
        (tmp / "dataset.json").write_text(json.dumps(dataset, indent=2), encoding="utf-8")
    return folder
