"""Feature networks for the feature-level reconstruction losses (CoSinGAN MS-FVL and MS-FUL).

* VGG term (MS-FVL): VGG19 features when the user gives a local ImageNet weights file
  (``vgg_weights``); none can be downloaded here. Without one, the documented fallback is the
  domain UNet below, so the term still measures feature-level distance, in a network trained on
  the training slices themselves. The run records which one was used.
* UNet term (MS-FUL): the encoder of a segmentation UNet. By default it is trained on the SAME
  slices the GAN learns from (strong augmentation, CoSinGAN's category weights 0.1 / 1.0 / 5.0),
  so the run uses no more real images than it is allowed; ``unet_features`` may name a segmenter
  checkpoint of the user's instead. The trained UNet is saved in the run so a resume reuses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from safetensors.torch import load_file, save_file

from radsynth.data.augment import STRONG, augment_pair
from radsynth.data.labels import to_categories
from radsynth.errors import InputError
from radsynth.losses import FeatureLoss, ModuleFeatures, VGG19Features
from radsynth.nets.segmenter import ENCODER_LAYERS, unet_segmenter
from radsynth.synth.base import TrainingData
from radsynth.synth.trainer import step_seed

FEATURE_UNET_FILE = "feature_unet.safetensors"
SEGMENTATION_CLASS_WEIGHTS = (0.1, 1.0, 5.0)  # CoSinGAN 3.3.2: background, lung, infection
FEATURE_UNET_CHANNELS = (16, 32, 64, 128, 256, 16)  # a light UNet: it only has to encode these slices


def train_feature_unet(data: TrainingData, steps: int, seed: int, device: torch.device, batch_size: int = 4) -> torch.nn.Module:
    """Train a segmentation UNet on ``data`` with strong augmentation; returns it in eval mode."""
    torch.manual_seed(seed)
    model = unet_segmenter(3, 1, FEATURE_UNET_CHANNELS).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    weights = torch.tensor(SEGMENTATION_CLASS_WEIGHTS, device=device)
    images, labels = data.images.to(device), data.labels.to(device)
    model.train()
    for step in range(steps):
        generator = torch.Generator().manual_seed(step_seed(seed, "feature_unet", step))
        index = torch.randint(len(images), (batch_size,), generator=generator).to(device)
        image, label = augment_pair(images[index], labels[index], STRONG, generator)
        loss = F.cross_entropy(model(image), to_categories(label).long(), weight=weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


def _domain_unet(config: Any, data: TrainingData, device: torch.device, run_dir: Path, console: Console | None) -> tuple[torch.nn.Module, str]:
    saved = run_dir / FEATURE_UNET_FILE
    if config.unet_features:
        path = Path(config.unet_features)
        source = f"user segmenter {path}"
    elif saved.exists():
        path, source = saved, f"UNet trained on the run's {len(data.ids)} training slice(s)"
    else:
        if console:
            console.print(f"training the feature UNet on {len(data.ids)} slice(s) for {config.feature_unet_steps} steps")
        model = train_feature_unet(data, config.feature_unet_steps, config.seed, device)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_file({k: v.cpu().contiguous() for k, v in model.state_dict().items()}, str(saved))
        return model, f"UNet trained on the run's {len(data.ids)} training slice(s) ({config.feature_unet_steps} steps)"
    model = unet_segmenter(3, 1, FEATURE_UNET_CHANNELS)
    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as exc:
        raise InputError(path, f"not a radsynth feature UNet ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    return model.to(device).eval(), source


def build_feature_losses(config: Any, data: TrainingData, device: torch.device, run_dir: Path, console: Console | None = None) -> tuple[dict[str, FeatureLoss], dict[str, str]]:
    """The 'vgg' and 'unet' feature losses of the enhanced variant, and what each one uses."""
    if config.variant != "enhanced":
        return {}, {}
    unet, unet_source = _domain_unet(config, data, device, run_dir, console)
    unet_loss = FeatureLoss(ModuleFeatures(unet, ENCODER_LAYERS, source=unet_source)).to(device)
    losses = {"unet": unet_loss}
    descriptions = {"unet": unet_loss.description}
    if config.vgg_weights:
        vgg_loss = FeatureLoss(VGG19Features.from_file(config.vgg_weights)).to(device)
        losses["vgg"], descriptions["vgg"] = vgg_loss, vgg_loss.description
    else:
        losses["vgg"] = unet_loss
        descriptions["vgg"] = "fallback: no local VGG19 weights given, the domain UNet features stand in (" + unet_loss.description + ")"
    return losses, descriptions
