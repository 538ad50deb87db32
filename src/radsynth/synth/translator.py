"""The contract of an image-to-image translator (X-ray class A -> class B).

Unlike a ``Synthesizer``, which turns condition label maps into images, a translator turns real
images of a source class into images of a target class: ``radsynth synth RUN --images SET``.
Run directories are the same (run.json, ``train/checkpoints``, logs, samples).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch

from radsynth.training.checkpoint import Retention


class Translator(ABC):
    """A trained (or trainable) translator from ``source_class`` to ``target_class`` images."""

    name: ClassVar[str]
    source_class: str
    target_class: str

    @classmethod
    @abstractmethod
    def fit(cls, data: Path, config: Any, out_dir: Path, resume: bool = False, force: bool = False, device: str = "auto",
            retention: Retention = Retention()) -> Translator:
        """Train on the train split of the prepared set ``data`` into ``out_dir``; resumable. ``retention``: which checkpoints stay on disk."""

    @classmethod
    @abstractmethod
    def load(cls, run_dir: Path, device: str = "auto") -> Translator:
        """Rebuild from a run directory's newest checkpoint."""

    @abstractmethod
    def translate(self, images: torch.Tensor, seed: int, diversify: str = "none") -> torch.Tensor:
        """(N, 1, S, S) source-class images in [-1, 1] -> (N, 1, S, S) target-class images in [-1, 1].

        S is ``output_size``; ``diversify='dropout'`` samples the generator's dropout (where it has any).
        """

    @property
    @abstractmethod
    def checkpoint_sha256(self) -> str:
        """Hash of the weights file that ``translate`` uses."""

    @property
    @abstractmethod
    def output_size(self) -> int:
        """Side in pixels of the images ``translate`` takes and returns."""
