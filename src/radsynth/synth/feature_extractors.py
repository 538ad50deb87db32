"""Feature networks for the feature-level reconstruction losses (CoSinGAN MS-FVL and MS-FUL).

* VGG term (MS-FVL): VGG19 features when the user gives a local ImageNet weights file
  (``vgg_weights``); none can be downloaded here. Without one, the documented fallback is the
  domain UNet below: its term takes the VGG weight as well (lambda_vgg + lambda_unet), so the
  feature-level share of the loss is unchanged, and ``losses`` has no 'vgg' entry. The run
  records which one was used.
* UNet term (MS-FUL): the encoder of a segmentation UNet. By default it is trained on the SAME
  slices the GAN learns from (strong augmentation, CoSinGAN's category weights 0.1 / 1.0 / 5.0),
  so the run uses no more real images than it is allowed; ``unet_features`` may name a segmenter
  checkpoint of the user's instead. The trained UNet is saved in the run so a resume reuses it.
"""

from __future__ import annotations

from pathlib import Path
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from rich.console import Console
from safetensors.torch import save_file

from radsynth import distributed
from radsynth.data.augment import STRONG, augment_pair, resize_batch
from radsynth.data.labels import to_categories
from radsynth.losses import FeatureLoss, ModuleFeatures, VGG19Features
from radsynth.nets.segmenter import ENCODER_LAYERS, unet_from_weights, unet_segmenter
from radsynth.synth.base import TrainingData
from radsynth.progress import progress_bar
from radsynth.training.trainer import step_seed

FEATURE_UNET_FILE = "feature_unet.safetensors"
SEGMENTATION_CLASS_WEIGHTS = (0.1, 1.0, 5.0)  # CoSinGAN 3.3.2: background, lung, infection
FEATURE_UNET_CHANNELS = (16, 32, 64, 128, 256, 16)  # a light UNet: it only has to encode these slices
UNET_LAYER_WEIGHTS = (0.2, 0.2, 0.2, 0.2, 0.2)  # gamma_k of eq. 9 (not given in the paper): the mean over the 5 encoder blocks


def train_feature_unet(
    data: TrainingData, steps: int, seed: int, device: torch.device, batch_size: int = 4, sizes: tuple[int, ...] = ()
) -> torch.nn.Module:
    """Train a segmentation UNet on ``data`` with strong augmentation; returns it in eval mode.

    With ``sizes`` each step resizes its batch to one of them at random, so that the features mean
    something at every scale of a pyramid (CoSinGAN applies MS-FUL at every scale).
    """
    torch.manual_seed(seed)
    model = unet_segmenter(3, 1, FEATURE_UNET_CHANNELS).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    weights = torch.tensor(SEGMENTATION_CLASS_WEIGHTS, device=device)
    images, labels = data.images.to(device), data.labels.to(device)
    model.train()
    with progress_bar("feature UNet", steps) as update:
        for step in range(steps):
            generator = torch.Generator().manual_seed(step_seed(seed, "feature_unet", step))
            index = torch.randint(len(images), (batch_size,), generator=generator).to(device)
            image, label = augment_pair(images[index], labels[index], STRONG, generator)
            if sizes:
                size = sizes[int(torch.randint(len(sizes), (1,), generator=generator))]
                image, label = resize_batch(image, label, size)
            loss = F.cross_entropy(model(image), to_categories(label).long(), weight=weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            update(step + 1, {"loss": loss.item()})
    return model.eval()


@dataclass(frozen=True)
class FeatureSpec:
    """Where the feature networks come from (the config values of a run)."""

    vgg_weights: str = ""  # local VGG19 weights file; empty: the domain UNet stands in
    unet_features: str = ""  # user segmenter weights (safetensors); empty: train one on the run's slices
    unet_steps: int = 300
    seed: int = 0
    sizes: tuple[int, ...] = ()  # train the domain UNet at these sizes (a pyramid's scales)


@dataclass(frozen=True)
class GivenExtractors:
    """The feature networks the user named by file, loaded (and so checked) before a run writes anything."""

    vgg: VGG19Features | None = None
    unet: torch.nn.Module | None = None


def load_given_extractors(spec: FeatureSpec) -> GivenExtractors:
    """Load ``spec.vgg_weights`` and ``spec.unet_features`` when given; a missing or unfitting file raises
    ``InputError`` here, before the run directory is created or an old run is cleared."""
    vgg = VGG19Features.from_file(spec.vgg_weights) if spec.vgg_weights else None
    unet = unet_from_weights(Path(spec.unet_features), FEATURE_UNET_CHANNELS).eval() if spec.unet_features else None
    return GivenExtractors(vgg, unet)


def _domain_unet(spec: FeatureSpec, given: GivenExtractors, data: TrainingData, device: torch.device, run_dir: Path,
                 console: Console | None) -> tuple[torch.nn.Module, str]:
    saved = run_dir / FEATURE_UNET_FILE
    if given.unet is not None:
        return given.unet.to(device), f"user segmenter {Path(spec.unet_features)}"
    if saved.exists():
        model = unet_from_weights(saved, FEATURE_UNET_CHANNELS)
        return model.to(device).eval(), f"UNet trained on the run's {len(data.ids)} training slice(s)"
    if console:
        console.print(f"training the feature UNet on {len(data.ids)} slice(s) for {spec.unet_steps} steps")
    model = train_feature_unet(data, spec.unet_steps, spec.seed, device, sizes=spec.sizes)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.cpu().contiguous() for k, v in model.state_dict().items()}, str(saved))
    return model, f"UNet trained on the run's {len(data.ids)} training slice(s) ({spec.unet_steps} steps)"


def build_feature_losses(
    spec: FeatureSpec, data: TrainingData, device: torch.device, run_dir: Path, console: Console | None = None, stop_early: bool = True,
    given: GivenExtractors | None = None,
) -> tuple[dict[str, FeatureLoss], dict[str, str]]:
    """The 'vgg' (MS-FVL) and 'unet' (MS-FUL) feature losses, and what each one uses.

    ``given``: the user's networks from ``load_given_extractors`` (loaded here when None).
    ``stop_early=False`` runs the whole UNet for its encoder features (the plain path; same values).
    """
    given = given if given is not None else load_given_extractors(spec)
    unet, unet_source = distributed.main_first(lambda: _domain_unet(spec, given, data, device, run_dir, console))  # rank 0 trains and saves, the others load
    unet_loss = FeatureLoss(ModuleFeatures(unet, ENCODER_LAYERS, source=unet_source, stop_early=stop_early), UNET_LAYER_WEIGHTS).to(device)
    losses = {"unet": unet_loss}
    descriptions = {"unet": unet_loss.description}
    if given.vgg is not None:
        vgg_loss = FeatureLoss(given.vgg).to(device)
        losses["vgg"], descriptions["vgg"] = vgg_loss, vgg_loss.description
    else:  # the UNet term takes the VGG term's weight too; computing the same features twice would only cost time
        descriptions["vgg"] = "fallback: no local VGG19 weights given; the VGG term's weight is added to the domain-UNet term"
    return losses, descriptions
