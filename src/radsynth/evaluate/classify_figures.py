"""Figures of a classification run, as PNG files: confidence scores, Grad-CAM overlays, UMAP.

* ``confidence_plot``: p(positive class) of every test image, grouped by true class, with the
  decision threshold as a red dashed line (Zunair & Hamza Figs. 4-7).
* ``gradcam_maps`` / ``gradcam_figure``: Grad-CAM (MONAI ``GradCAM``) saliency of the decision,
  overlaid on correctly and wrongly classified test images (Zunair Fig. 1).
* ``occlusion_maps``: occlusion sensitivity (MONAI ``OcclusionSensitivity``), how much the explained
  class's logit falls when a patch is darkened; a check of what Grad-CAM shows. On the phantom
  Normal vs Pneumonia check (tests/evaluate/test_classify_run.py) the classifier's decision rests on
  the lesion alone (putting the Normal twin's pixels into the lesion turns its logit from +6.3 to
  -7.5, the twin's own value), yet Grad-CAM at layer2 puts 0.18 of its mass there (0.06 of the area);
  occlusion puts 0.56 there.
* ``umap_figure``: 2-D UMAP (umap-learn) of the pooled classifier features of real and synthetic
  training images and real test images (Zunair Fig. 8).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from monai.visualize import GradCAM, OcclusionSensitivity  # noqa: E402
from torch import nn  # noqa: E402

from radsynth.atomic import atomic_write_bytes  # noqa: E402
from radsynth.evaluate.classify_config import ClassifyConfig  # noqa: E402
from radsynth.evaluate.classify_train import network_input  # noqa: E402
from radsynth.nets.classifiers import Classifier, gradcam_layer  # noqa: E402

COLOURS = ("tab:blue", "tab:orange", "tab:red", "tab:green", "tab:purple")


def _save(fig, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(Path(path), buffer.getvalue())


def confidence_plot(path: Path, p_positive: np.ndarray, targets: np.ndarray, classes: tuple[str, ...], threshold: float, title: str) -> None:
    """One bar per test image: its p(positive class), images grouped by true class."""
    order = np.lexsort((-p_positive, targets))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.06 * len(order) + 2), 3.2))
    colours = [COLOURS[int(targets[i]) % len(COLOURS)] for i in order]
    ax.bar(np.arange(len(order)), p_positive[order], color=colours, width=0.9)
    ax.axhline(threshold, color="red", linestyle="--", linewidth=1)
    handles = [Patch(color=COLOURS[k % len(COLOURS)], label=f"true {name}") for k, name in enumerate(classes)]
    handles.append(Line2D([], [], color="red", linestyle="--", label=f"threshold {threshold:g}"))
    ax.set_ylim(0, 1)
    ax.set_xlim(-1, len(order))
    ax.set_xlabel("test image (grouped by true class)")
    ax.set_ylabel(f"p({classes[-1]})")
    ax.set_title(title, fontsize=9)
    ax.legend(handles=handles, fontsize=7, loc="upper left")
    _save(fig, path)


class _WithInput(nn.Module):
    """The classifier behind its input mapping, so Grad-CAM sees [-1, 1] grey images; a binary
    (one-logit) net answers (-z, z), so class 0 is explained by the evidence against the positive class."""

    def __init__(self, net: Classifier, config: ClassifyConfig) -> None:
        super().__init__()
        self.net = net
        self.channels, self.intensity = config.in_channels, config.intensity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(network_input(x, self.channels, self.intensity))
        return torch.cat([-logits, logits], dim=1) if logits.shape[1] == 1 else logits


def normalise_maps(maps: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) -> each map scaled to [0, 1], 1 = most salient (MONAI's default normaliser inverts
    the maps, 1 = least salient, for its own display convention); an all-zero map stays 0."""
    low = maps.amin(dim=(1, 2, 3), keepdim=True)
    span = maps.amax(dim=(1, 2, 3), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))


def cell_centres(module: nn.Module, layer: str, size: int, channels: int = 1) -> tuple[float, float, int]:
    """Where the cells of ``layer``'s feature map sit on a (size x size) input: (offset, offset, n).

    Cell (i, j) of the n x n map is centred on input pixel (offset + stride * i, offset + stride * j),
    stride = size / n. Measured, not assumed: the centre of mass of |d cell / d input| for the central
    cell of a seeded random input. Plain bilinear upsampling assumes offset = (stride - 1) / 2, which
    holds for 2 x 2 pooling (VGG) but not for the stride-2 3 x 3 / 7 x 7 convs with "same" padding of
    ResNet and DenseNet, whose cells sit at offset 0: at stride 8 the naive map is drawn 3.5 px down
    and right of the evidence, at stride 32, 15.5 px.
    """
    features: dict[str, torch.Tensor] = {}
    handle = module.get_submodule(layer).register_forward_hook(lambda _m, _i, out: features.__setitem__("out", out))
    generator = torch.Generator().manual_seed(0)
    device = next(module.parameters()).device
    x = torch.randn(1, channels, size, size, generator=generator).to(device).requires_grad_(True)
    was_training = module.training
    module.eval()
    try:
        with torch.enable_grad():
            module(x)
            out = features["out"]
            n = out.shape[-1]
            out[0, :, n // 2, n // 2].sum().backward()
    finally:
        handle.remove()
        module.train(was_training)
        module.zero_grad(set_to_none=True)
    weight = x.grad[0].abs().sum(0)
    coords = torch.arange(size, dtype=weight.dtype, device=weight.device)
    total = weight.sum().clamp_min(1e-12)
    row, col = float((weight.sum(1) * coords).sum() / total), float((weight.sum(0) * coords).sum() / total)
    stride = size / n
    return row - stride * (n // 2), col - stride * (n // 2), n


def aligned_upsampler(offset_row: float, offset_col: float):
    """A MONAI CAM ``upsampler``: (N, 1, n, n) cell values -> (N, 1, H, W), cell (i, j) placed at input
    pixel (offset + stride * i) (see ``cell_centres``), bilinear between cells, edge cells held beyond."""

    def for_size(spatial: tuple[int, ...]):
        def upsample(maps: torch.Tensor) -> torch.Tensor:
            n_rows, n_cols = maps.shape[-2:]
            height, width = spatial

            def axis(pixels: int, n: int, offset: float) -> torch.Tensor:
                cells = (torch.arange(pixels, dtype=maps.dtype, device=maps.device) - offset) / (pixels / n)
                return 2 * cells / max(n - 1, 1) - 1  # grid_sample, align_corners=True: -1 / 1 = first / last cell centre

            rows, cols = axis(height, n_rows, offset_row), axis(width, n_cols, offset_col)
            grid = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), dim=-1)[None].expand(len(maps), -1, -1, -1)
            return torch.nn.functional.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True)

        return upsample

    return for_size


def gradcam_maps(net: Classifier, images: torch.Tensor, config: ClassifyConfig, class_idx: torch.Tensor | None = None, layer: str | None = None) -> torch.Tensor:
    """(N, 1, S, S) images in [-1, 1] -> (N, S, S) Grad-CAM maps in [0, 1] (each map normalised).

    The map of image i explains class ``class_idx[i]`` (default: the predicted class); for a binary
    one-logit net, class 1 is the positive logit and class 0 its negation. ``layer`` defaults to
    ``gradcam_layer(net, S)``, the deepest stage with a map of at least 8 x 8 cells. The cell map is
    upsampled with each cell at its measured receptive-field centre (``cell_centres``), not at the
    centre of its stride x stride block. A map with no positive evidence at that layer is all zero.
    """
    device = next(net.parameters()).device
    wrapped = _WithInput(net, config).eval()
    layer = layer or gradcam_layer(net, images.shape[-1])
    offset_row, offset_col, _ = cell_centres(wrapped, f"net.{layer}", images.shape[-1])
    cam = GradCAM(nn_module=wrapped, target_layers=f"net.{layer}", upsampler=aligned_upsampler(offset_row, offset_col),
                  postprocessing=normalise_maps)
    maps = []
    for i in range(len(images)):
        x = images[i : i + 1].to(device)
        with torch.enable_grad():
            maps.append(cam(x, class_idx=None if class_idx is None else int(class_idx[i])).detach().cpu()[0, 0])
    net.zero_grad(set_to_none=True)
    return torch.stack(maps) if maps else torch.zeros(0, *images.shape[-2:])


def occlusion_maps(net: Classifier, images: torch.Tensor, config: ClassifyConfig, class_idx: torch.Tensor) -> torch.Tensor:
    """(N, 1, S, S) images in [-1, 1] -> (N, S, S) occlusion-sensitivity maps in [0, 1] (each normalised).

    Pixel value: the mean fall of the logit of class ``class_idx[i]`` (binary nets: class 1 = the
    positive logit, class 0 its negation) over the occluding squares that cover the pixel, rises
    clipped at 0. The square's side is ``config.occlusion_size`` of S, it moves with
    ``config.occlusion_overlap`` and is filled with the ``config.occlusion_quantile`` of the image's
    intensities. A map where no occlusion lowers the logit is all zero.
    """
    device = next(net.parameters()).device
    wrapped = _WithInput(net, config).eval()
    side = images.shape[-1]
    mask_size = max(1, round(config.occlusion_size * side))
    maps = []
    for i in range(len(images)):
        x = images[i : i + 1].to(device)
        fill = float(torch.quantile(x.float().flatten(), config.occlusion_quantile))
        occlusion = OcclusionSensitivity(nn_module=wrapped, mask_size=mask_size, n_batch=config.eval_batch_size, mode=fill,
                                         overlap=config.occlusion_overlap, activate=False, verbose=False)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing")  # MONAI 1.x internals
            target = int(class_idx[i])
            base = wrapped(x)[0, target]
            occluded, _ = occlusion(x)
        fall = (base - occluded[:, target : target + 1]).clamp_min(0).float().cpu()
        maps.append(normalise_maps(fall)[0, 0])
    return torch.stack(maps) if maps else torch.zeros(0, *images.shape[-2:])


def gradcam_figure(path: Path, images: torch.Tensor, maps: torch.Tensor, captions: list[str], title: str,
                   lesions: torch.Tensor | None = None) -> None:
    """Each image (grey) with its saliency map (Grad-CAM or occlusion; jet, alpha 0.45) beside the plain image;
    (N, H, W) bool ``lesions``, when given (CT infection labels), are outlined in white on the map."""
    n = len(images)
    fig, axes = plt.subplots(2, max(n, 1), figsize=(2.2 * max(n, 1), 4.8), squeeze=False)
    for k in range(max(n, 1)):
        for row in (0, 1):
            axes[row, k].axis("off")
        if k >= n:
            continue
        grey = (images[k, 0].numpy() + 1) / 2
        axes[0, k].imshow(grey, cmap="gray", vmin=0, vmax=1)
        axes[0, k].set_title(captions[k], fontsize=7)
        axes[1, k].imshow(grey, cmap="gray", vmin=0, vmax=1)
        axes[1, k].imshow(maps[k].numpy(), cmap="jet", alpha=0.45, vmin=0, vmax=1)
        if lesions is not None and bool(lesions[k].any()):
            axes[1, k].contour(lesions[k].numpy().astype(np.float32), levels=[0.5], colors="white", linewidths=0.8)
    if n == 0:
        axes[0, 0].text(0.5, 0.5, "no such test image", ha="center", va="center")
    elif lesions is not None:
        title += " (white: infection label)"
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


MARKERS = {"train real": "o", "train synthetic": "^", "test real": "s"}


def umap_figure(path: Path, features: np.ndarray, classes: list[str], sources: list[str], seed: int, title: str) -> np.ndarray:
    """UMAP of (N, F) features to 2-D; colour = class, marker = source (train real / train synthetic /
    test real); returns the (N, 2) embedding."""
    import umap

    n = len(features)
    reducer = umap.UMAP(n_neighbors=max(2, min(15, n - 1)), random_state=seed, n_jobs=1, init="spectral" if n > 10 else "random")
    embedding = reducer.fit_transform(features.astype(np.float32))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    colour = {c: COLOURS[k % len(COLOURS)] for k, c in enumerate(dict.fromkeys(sorted(classes)))}
    for source in dict.fromkeys(sources):
        for klass in colour:
            chosen = np.array([s == source and c == klass for s, c in zip(sources, classes)])
            if chosen.any():
                filled = source == "train real"
                ax.scatter(embedding[chosen, 0], embedding[chosen, 1], s=14, alpha=0.75, marker=MARKERS.get(source, "o"),
                           label=f"{source} {klass}", color=colour[klass] if filled else "none", edgecolors=colour[klass])
    ax.legend(fontsize=7, markerscale=1.3)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    _save(fig, path)
    return embedding
