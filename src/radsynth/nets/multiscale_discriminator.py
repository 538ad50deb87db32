"""pix2pixHD multi-scale discriminator: the same PatchGAN applied to an average-pooled pyramid."""

from __future__ import annotations

from torch import Tensor, nn

from radsynth.nets.patch_discriminator import PatchDiscriminator


class MultiScalePatchDiscriminator(nn.Module):
    """pix2pixHD ``MultiscaleDiscriminator`` (Wang et al. 2018, section 3.2; Jiang et al. 2020, III-B).

    ``num_d`` independent ``PatchDiscriminator`` s; scale 0 sees the input (N, in_channels, H, W),
    scale k sees it average-pooled k times with a 3x3 window, stride 2, padding 1 and
    ``count_include_pad=False`` (side ceil(S / 2) per step). ``forward`` returns one list per scale,
    finest first, each the ``PatchDiscriminator`` feature list (last element = logits).
    Remaining keyword arguments configure each sub-discriminator.
    """

    def __init__(
        self,
        in_channels: int,
        num_d: int = 2,  # pix2pixHD code default (--num_D 2); Jiang et al. 2020 III-B: full- and half-resolution
        ndf: int = 64,  # pix2pixHD: 64 filters in the first conv
        n_layers: int = 3,  # pix2pixHD: 70x70 PatchGAN per scale
        norm: str = "instance",  # pix2pixHD code default: instance norm
        max_channels: int = 512,
        padding: int = 1,  # pix2pix geometry; pix2pixHD's code uses 2
    ) -> None:
        super().__init__()
        if num_d < 1:
            raise ValueError(f"num_d must be >= 1, got {num_d}")
        self.num_d = num_d
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(in_channels, ndf, n_layers, norm, max_channels, padding) for _ in range(num_d)
        )
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        """(N, C, H, W) -> [per scale, finest first: [block outputs ..., (N, 1, h, w) logits]]."""
        outputs: list[list[Tensor]] = []
        for k, discriminator in enumerate(self.discriminators):
            if k > 0:
                x = self.downsample(x)
            oh, ow = discriminator.output_size(*x.shape[-2:])
            if oh <= 0 or ow <= 0:
                raise ValueError(
                    f"MultiScalePatchDiscriminator scale {k} sees the input pooled to "
                    f"{x.shape[-2]}x{x.shape[-1]}, too small for n_layers={discriminator.n_layers}; "
                    f"use a larger input, fewer scales (num_d) or fewer layers"
                )
            outputs.append(discriminator(x))
        return outputs
