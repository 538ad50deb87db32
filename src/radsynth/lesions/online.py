"""New lesions drawn into a segmenter's training images while it trains (online lesion synthesis).

``radsynth synth LESION_RUN --edit add|replace`` writes a fixed number of edited copies. Hu et al. (CVPR
2023) and FreeTumor instead synthesize a new lesion every time a training image is drawn, so a segmenter never
sees the same synthetic lesion twice. ``OnlineLesions`` does that for ``radsynth evaluate segment``
(``--set lesions=RUN``): before augmentation, each image of a training batch is edited with probability
``share`` (``edit_one``, the same edits as ``synth --edit`` of the same set), seeded by (segmenter seed, step,
position in the batch), so a run is reproducible and resumes bit for bit; under torchrun each rank edits only
the positions it trains on, as a single process would. Images without lung label are left as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from radsynth.errors import InputError
from radsynth.lesions import ONLINE_EDITS
from radsynth.lesions.run import EditOptions, edit_one, load_lesion_run, run_hash


class OnlineLesions:
    """A lesion run's model, applied to training batches: see the module docstring."""

    def __init__(self, run: Path, edit: str, share: float, typed: bool, seed: int) -> None:
        """``typed``: the training pool labels GGO and consolidation apart (as ``synth --edit`` reads its source set);
        ``seed``: the segmenter's seed, which with the step and position seeds every draw."""
        if edit not in ONLINE_EDITS:
            raise InputError("lesion_edit", f"online lesions draw new lesions: one of {', '.join(ONLINE_EDITS)}, got '{edit}'")
        if not 0 < share <= 1:
            raise InputError("lesion_share", f"the share of training images edited must lie in (0, 1], got {share}")
        record, model, crops = load_lesion_run(Path(run))
        self.run = Path(run)
        if typed and not model.typed:
            raise InputError(run, "was learned from a set that does not label GGO and consolidation apart; its lesions cannot "
                             "be typed for this typed training set (learn the lesion model on a typed set)")
        self.patients = set(record["data"]["patients"])  # whose slices the lesion model was measured on (leakage check)
        self.model = model.for_labels(typed)
        self.crops = crops
        self.options = EditOptions(edit)
        self.share = share
        self.seed = seed
        self.sha256 = run_hash(self.run)

    def apply(self, images: torch.Tensor, labels: torch.Tensor, step: int, positions: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """images (N, 1, H, W) in [-1, 1], labels (N, H, W) schema labels -> the batch with new lesions in about
        ``share`` of its images (a pure function of the seed, the step and the batch). ``positions``: edit only these
        (a torchrun rank's share of the global batch; each position's edit is the same whoever makes it)."""
        rng = np.random.default_rng([self.seed, step, *b"online-lesions"])
        drawn = rng.random(len(images)) < self.share
        chosen = [i for i in (positions if positions is not None else range(len(images))) if drawn[i]]
        if not chosen:
            return images, labels
        images, labels = images.clone(), labels.clone()
        for i in chosen:
            label = labels[i].cpu().numpy()
            if not (label >= 1).any():
                continue
            edited, new_label = edit_one(images[i, 0].float().cpu().numpy(), label, self.model, self.crops,
                                         np.random.default_rng([self.seed, step, i, *b"online-lesion"]), self.options)
            images[i, 0] = torch.from_numpy(np.asarray(edited, dtype=np.float32)).to(images.device, images.dtype)
            labels[i] = torch.from_numpy(np.asarray(new_label)).to(labels.device, labels.dtype)
        return images, labels

    def refuse_test_patients(self, test_patients: set[str]) -> None:
        """A lesion model measured on a test patient's slice would leak that patient's lesions into training."""
        leaked = sorted(self.patients & test_patients)
        if leaked:
            raise InputError(self.run, f"was measured on slices of test patient(s) {', '.join(leaked)}; "
                             "learn the lesion model from training slices only")
