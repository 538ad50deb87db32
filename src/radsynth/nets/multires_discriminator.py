"""Multi-resolution patch discriminator (Jiang et al. 2020, section III-B, Fig. 5).

D1 sees the full-resolution input, D2 the input down-sampled by 2. Before a discriminator sees its
input, the input is cut into randomly placed ``patch_size`` x ``patch_size`` patches (70 x 70 in the
paper), ``patches_per_image`` per image, so each decision is about local detail. Real and fake
inputs must be judged on the SAME patches (the feature-matching loss compares them layer by
layer), so the patch positions are drawn once by ``sample_boxes`` and passed to ``forward``.
With ``patch_size=0`` (or a patch as large as the image) the whole image is judged, as in
pix2pixHD.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from radsynth.nets.patch_discriminator import PatchDiscriminator

Boxes = list[Tensor | None]  # per resolution: (N * patches_per_image, 2) top-left corners, or None for the whole image


class MultiResolutionPatchDiscriminator(nn.Module):
    """``num_d`` patch discriminators on the input at full, 1/2, 1/4 ... resolution.

    ``forward(x, boxes)`` with x (N, in_channels, H, W) returns one feature list per resolution
    (finest first), each the ``PatchDiscriminator`` block outputs with the logits last; patches of
    one resolution are stacked along the batch axis (N * patches_per_image).
    """

    def __init__(
        self,
        in_channels: int,
        num_d: int = 2,  # Jiang III-B: D1 full resolution, D2 half resolution
        ndf: int = 64,  # pix2pixHD
        n_layers: int = 3,  # the 70 x 70 PatchGAN
        norm: str = "instance",  # pix2pixHD
        padding: int = 2,  # pix2pixHD code (padw = ceil(3 / 2))
        patch_size: int = 70,  # Jiang III-B: randomly sampled 70 x 70 patches
        patches_per_image: int = 4,  # not given in the paper ("a series of patches"); radsynth's choice
    ) -> None:
        super().__init__()
        if num_d < 1:
            raise ValueError(f"num_d must be >= 1, got {num_d}")
        if patch_size < 0 or patches_per_image < 1:
            raise ValueError(f"patch_size must be >= 0 and patches_per_image >= 1, got {patch_size}, {patches_per_image}")
        self.patch_size = patch_size
        self.patches_per_image = patches_per_image
        self.discriminators = nn.ModuleList(PatchDiscriminator(in_channels, ndf, n_layers, norm, padding=padding) for _ in range(num_d))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)  # pix2pixHD's input pyramid

    def sides(self, height: int, width: int) -> list[tuple[int, int]]:
        """(h, w) of the input each discriminator sees before patch sampling."""
        sides = [(height, width)]
        for _ in range(len(self.discriminators) - 1):
            h, w = sides[-1]
            sides.append(((h + 1) // 2, (w + 1) // 2))
        return sides

    def sample_boxes(self, n: int, height: int, width: int, generator: torch.Generator) -> Boxes:
        """Random patch corners for ``n`` images of ``height`` x ``width``, one entry per resolution."""
        boxes: Boxes = []
        for h, w in self.sides(height, width):
            if self.patch_size == 0 or (self.patch_size >= h and self.patch_size >= w):
                boxes.append(None)
                continue
            p_h, p_w = min(self.patch_size, h), min(self.patch_size, w)
            count = n * self.patches_per_image
            top = torch.randint(h - p_h + 1, (count,), generator=generator)
            left = torch.randint(w - p_w + 1, (count,), generator=generator)
            boxes.append(torch.stack([top, left], 1))
        return boxes

    def _crop(self, x: Tensor, box: Tensor | None) -> Tensor:
        if box is None:
            return x
        p_h, p_w = min(self.patch_size, x.shape[-2]), min(self.patch_size, x.shape[-1])
        image = torch.arange(x.shape[0]).repeat_interleave(self.patches_per_image)
        return torch.stack([x[i, :, t : t + p_h, l : l + p_w] for i, (t, l) in zip(image.tolist(), box.tolist())])

    def forward(self, x: Tensor, boxes: Boxes | None = None) -> list[list[Tensor]]:
        """(N, C, H, W) -> [per resolution, finest first: [block outputs ..., logits]]."""
        if boxes is None:
            boxes = [None] * len(self.discriminators)
        if len(boxes) != len(self.discriminators):
            raise ValueError(f"need one box set per discriminator ({len(self.discriminators)}), got {len(boxes)}")
        outputs = []
        for k, (discriminator, box) in enumerate(zip(self.discriminators, boxes)):
            if k > 0:
                x = self.downsample(x)
            if box is not None and box.shape[0] != x.shape[0] * self.patches_per_image:
                raise ValueError(f"boxes for {box.shape[0] // self.patches_per_image} images, input has {x.shape[0]}")
            outputs.append(discriminator(self._crop(x, box)))
        return outputs
