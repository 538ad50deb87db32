"""Training a segmenter on a protocol's pool with the shared ``Trainer``, and predicting with it.

``SegmenterMethod`` is one training phase for ``radsynth.training.trainer.Trainer`` (per-step
seeding, resume, atomic checkpoints, progress bar, CSV log, sample grids): each step takes the
next mini-batch of the epoch's order (``protocols.epoch_order``), applies the configured paired
augmentation and minimises category-weighted cross-entropy (CoSinGAN 3.3.2). With ``lesions`` set, a
lesion run first draws new lesions into the batch's images (``radsynth.lesions.online``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from radsynth import distributed
from radsynth.data.augment import NONE, STRONG, WEAK, augment_pair
from radsynth.data.labels import to_categories
from radsynth.errors import InputError
from radsynth.evaluate.config import SegmentConfig
from radsynth.evaluate.protocols import TrainingSet, epoch_order, grouped_epoch_order, steps_per_epoch
from radsynth.lesions.online import OnlineLesions
from radsynth.nets.segmenter import build_segmenter
from radsynth.training.schedule import LinearDecay
from radsynth.training.trainer import amp_autocast

AUGMENT_SPECS = {"strong": STRONG, "weak": WEAK, "none": NONE}
CLASS_NAMES = {3: ("background", "lung", "infection"), 4: ("background", "lung", "ggo", "consolidation")}


def class_weight_vector(weights: tuple[float, float, float], typed: bool) -> torch.Tensor:
    """(background, lung, infection) weights -> one per output class; GGO and consolidation both take infection's."""
    background, lung, infection = weights
    return torch.tensor([background, lung, infection, infection] if typed else [background, lung, infection], dtype=torch.float32)


def training_targets(labels: torch.Tensor, typed: bool) -> torch.Tensor:
    """(N, H, W) schema labels -> class indices: the schema itself (typed) or 0 bg / 1 lung / 2 infection."""
    return labels.long() if typed else to_categories(labels).long()


def epoch_groups(pool: TrainingSet, epoch_order: str) -> np.ndarray | None:
    """The pool's groups when ``epoch_order`` is grouped (an add:P pool whose synthetic images name their real slice), else None."""
    if epoch_order == "pool":
        return None
    if not pool.spec.startswith("add:"):
        raise InputError(pool.spec, "epoch_order=grouped draws an add:P pool as OC-TS; this training set is not add:P")
    if pool.groups is None:
        raise InputError(pool.spec, "epoch_order=grouped needs every synthetic image to name its real training slice "
                         "(manifest columns condition_set = this real set, condition_id = the slice): "
                         f"{pool.groups_problem} (made from another set, or from layouts?)")
    return pool.groups


class SegmenterMethod:
    """One segmenter training phase for the ``Trainer``.

    steps = epochs x ceil(samples_per_epoch / batch); samples_per_epoch defaults to the OC-TS size,
    so every protocol sees the same number of samples, times the pool's ``epoch_scale`` (add:P: the
    larger set's epochs, as Jiang trains on real + synthetic for the same epochs; with epoch_order
    grouped, an add:P pool keeps OC-TS's samples and order, each real slice or one of its edits). The learning rate is constant for the first
    ``decay_start`` of the epochs and then falls linearly to 0 at the last step.
    """

    def __init__(self, config: SegmentConfig, pool: TrainingSet, typed: bool, device: torch.device, lesions: OnlineLesions | None = None) -> None:
        self.config = config
        self.device = device
        self.typed = typed
        self.num_classes = 4 if typed else 3
        self.images = pool.images.to(device)
        self.labels = pool.labels.to(device)
        self.groups = epoch_groups(pool, config.epoch_order)
        self.epoch_scale = 1.0 if self.groups is not None else pool.epoch_scale  # grouped: the groups are drawn as OC-TS draws its slices
        self.samples_per_epoch = round((config.samples_per_epoch or pool.reference_size) * self.epoch_scale)
        self.steps_per_epoch = steps_per_epoch(self.samples_per_epoch, config.batch)
        self.total_steps = config.epochs * self.steps_per_epoch
        torch.manual_seed(config.seed)  # from scratch (3.3.2); initialisation is part of the run's reproducibility
        self.net = build_segmenter(config.model, self.num_classes, 1, config.unet_features).to(device)
        self._optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
        self._schedule = LinearDecay(config.lr, round(config.decay_start * config.epochs) * self.steps_per_epoch, self.total_steps)
        self.weights = class_weight_vector(config.class_weights, typed).to(device)
        self.augment = AUGMENT_SPECS[config.augment]
        self.lesions = lesions
        self._order: tuple[int, np.ndarray] | None = None

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"segmenter": self.net}

    def kept_modules(self) -> tuple[str, ...]:
        """After training: the net (no optimizer state). Results come from the net in memory and
        segmenter.safetensors; a resume after training but before the results restores it from here."""
        return ("segmenter",)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"segmenter": self._optimizer}

    def schedules(self) -> dict[str, LinearDecay]:
        return {"segmenter": self._schedule}

    def batch_indices(self, step: int) -> np.ndarray:
        """Pool indices of training step ``step`` (a pure function of the seed and the step)."""
        epoch, within = divmod(step, self.steps_per_epoch)
        if self._order is None or self._order[0] != epoch:
            if self.groups is None:
                order = epoch_order(len(self.images), self.samples_per_epoch, self.config.seed, epoch)
            else:
                order = grouped_epoch_order(self.groups, self.samples_per_epoch, self.config.seed, epoch)
            self._order = (epoch, order)
        batch = self.config.batch
        return self._order[1][within * batch : (within + 1) * batch]

    def train_step(self, step: int, generator: torch.Generator) -> dict[str, float]:
        self.net.train()
        index = torch.from_numpy(self.batch_indices(step)).to(self.device)
        image, label = self.images[index], self.labels[index]
        if self.lesions is not None:  # new lesions drawn into this draw of the images, before augmentation; only this rank's rows
            image, label = self.lesions.apply(image, label, step, distributed.rank_share(torch.arange(len(index)))[0].tolist())
        image, label = augment_pair(image, label, self.augment, generator)
        image, label = distributed.rank_share(image, label)  # config.batch is the global batch; this rank's slice of it
        with amp_autocast(self.device, self.config.amp):
            logits = self.net(image)
        loss = F.cross_entropy(logits.float(), training_targets(label, self.typed), weight=self.weights)
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._optimizer.step()
        return {"loss": loss.item(), "lr": self._optimizer.param_groups[0]["lr"]}

    @torch.no_grad()
    def samples(self) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        """4 pool slices spread over the pool, each twice: with its true labels, then with the prediction."""
        chosen = torch.linspace(0, len(self.images) - 1, min(4, len(self.images))).round().long().unique().to(self.device)
        predicted = predict(self.net, self.images[chosen], self.config.size, self.typed, self.config.amp)
        self.net.train()
        images, labels = [], []
        for k, i in enumerate(chosen.tolist()):
            image = self.images[i, 0].cpu().numpy()
            images += [image, image]
            labels += [self.labels[i].cpu().numpy().astype(np.uint8), predicted[k].cpu().numpy().astype(np.uint8)]
        return images, labels


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrinking = size[0] <= x.shape[-2] and size[1] <= x.shape[-1]
    return F.interpolate(x, size=size, mode="area") if shrinking else F.interpolate(x, size=size, mode="bilinear", align_corners=False)


@torch.no_grad()
def predict(net: torch.nn.Module, images: torch.Tensor, size: int, typed: bool, amp: bool = True) -> torch.Tensor:
    """(N, 1, H, W) images in [-1, 1] -> (N, H, W) int64 schema labels (an untyped net's infection is 2).

    Images are resized to the network's ``size`` and the class scores back to H x W, so scores are
    always computed against the label maps as stored.
    """
    net.eval()
    device = next(net.parameters()).device
    height, width = images.shape[-2:]
    with amp_autocast(device, amp):
        logits = net(_resize(images.to(device), (size, size))).float()
    logits = _resize(logits, (height, width)) if (height, width) != (size, size) else logits
    return logits.argmax(1)
