"""pix2pix PatchGAN discriminator (``NLayerDiscriminator``) that returns every block's features."""

from __future__ import annotations

from torch import Tensor, nn

from radsynth.nets.init import init_weights
from radsynth.nets.norm import check_norm, conv_bias, make_norm

KERNEL = 4  # pix2pix appendix 6.1.2: all convolutions are 4x4


def _strides(n_layers: int) -> list[int]:
    """Stride of every conv, input to output: n_layers stride-2 convs, then two stride-1 convs."""
    return [2] * n_layers + [1, 1]


def patch_receptive_field(n_layers: int) -> int:
    """Receptive field (pixels, per side) of one output logit of ``PatchDiscriminator(n_layers=...)``.

    Walks the conv stack backwards: rf <- (rf - 1) * stride + kernel. 16, 34, 70, 142, 286 for
    n_layers 1..5 (70 is pix2pix's "70x70 PatchGAN"). Independent of padding.
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    rf = 1
    for stride in reversed(_strides(n_layers)):
        rf = (rf - 1) * stride + KERNEL
    return rf


def patch_output_size(size: int, n_layers: int, padding: int = 1) -> int:
    """Side of the logit map for an input side ``size`` (<= 0 means the input is too small)."""
    for stride in _strides(n_layers):
        size = (size + 2 * padding - KERNEL) // stride + 1
        if size <= 0:
            return 0
    return size


class PatchDiscriminator(nn.Module):
    """pix2pix ``NLayerDiscriminator`` (Isola et al. 2017, appendix 6.1.2; 70x70 at n_layers=3).

    Input (N, in_channels, H, W), any real values (images in [-1, 1] concatenated with their
    condition). ``forward`` returns a list with the output of every block, ``n_layers + 2`` of them:
    conv(stride 2) + LeakyReLU(0.2) without norm; ``n_layers - 1`` x conv(stride 2) + norm + LeakyReLU;
    conv(stride 1) + norm + LeakyReLU; conv(stride 1) to 1 channel. All convs are 4x4 with
    ``padding`` (1 in pix2pix, 2 in pix2pixHD's code). The last element is the (N, 1, h, w) map of
    unbounded patch logits; the others are the features pix2pixHD's feature-matching loss uses.
    Widths are ``min(ndf * 2**k, max_channels)`` for block k. Weights: ``init_weights`` N(0, 0.02).

    ``patch_receptive_field(n_layers)`` gives each logit's receptive field (70 at n_layers=3).
    CoSinGAN (section 2.1) counts depth as the total number of convs, ``n_layers + 2``; see
    ``from_total_convs``. With ``padding=1`` the logit map side is ``floor(S / 2**n_layers) - 2``,
    which is empty for CoSinGAN's power-of-two scales (32 px with 6 convs, 64 with 7, ... 512 with
    10); ``padding=2`` keeps all nine scales non-empty. ``forward`` rejects empty outputs.

    ``negative_slope`` is the slope of every LeakyReLU (0.2 in pix2pix); 0 gives plain ReLU, the
    Conv-BatchNorm-ReLU blocks of Liang et al. 2021 (section III-B).

    MONAI's ``monai.networks.nets.PatchDiscriminator`` was not reused: its geometry and feature
    list match at 3 layers (70x70, same block outputs), but it doubles the width at every layer
    without a cap, so the 8 stride-2 layers of CoSinGAN's 512 px scale would reach ndf * 2**8
    channels instead of 512, and its normalised convs never have a bias (pix2pix keeps it with
    instance norm); its ``MultiScalePatchDiscriminator`` adds layers per scale instead of pooling
    the input as pix2pixHD does.
    """

    def __init__(
        self,
        in_channels: int,
        ndf: int = 64,  # pix2pix appendix 6.1.2: C64-C128-C256-C512
        n_layers: int = 3,  # pix2pix appendix 6.1.2: the 70x70 discriminator
        norm: str = "batch",  # pix2pix appendix 6.1: BatchNorm, none on the first C64
        max_channels: int = 512,  # pix2pix code: width capped at 8 * ndf = 512
        padding: int = 1,  # pix2pix code: padw = 1 (pix2pixHD code: 2)
        negative_slope: float = 0.2,  # pix2pix: LeakyReLU(0.2); Liang et al. 2021 III-B: ReLU (0)
    ) -> None:
        super().__init__()
        check_norm(norm)
        if in_channels < 1 or ndf < 1 or max_channels < 1:
            raise ValueError(
                f"in_channels, ndf and max_channels must be >= 1, got {in_channels}, {ndf}, {max_channels}"
            )
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1 (the total number of convs is n_layers + 2), got {n_layers}")
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        if negative_slope < 0:
            raise ValueError(f"negative_slope must be >= 0 (0 is ReLU), got {negative_slope}")
        self.in_channels = in_channels
        self.n_layers = n_layers
        self.padding = padding
        bias = conv_bias(norm)
        width = [min(ndf * 2**k, max_channels) for k in range(n_layers + 1)]
        strides = _strides(n_layers)

        def act() -> nn.Module:
            return nn.LeakyReLU(negative_slope) if negative_slope > 0 else nn.ReLU()

        blocks: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, width[0], KERNEL, strides[0], padding), act())]
        for k in range(1, n_layers + 1):
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(width[k - 1], width[k], KERNEL, strides[k], padding, bias=bias),
                    make_norm(norm, width[k]),
                    act(),
                )
            )
        blocks.append(nn.Conv2d(width[-1], 1, KERNEL, strides[-1], padding))
        self.blocks = nn.ModuleList(blocks)
        init_weights(self)

    @classmethod
    def from_total_convs(cls, in_channels: int, total_convs: int, **kwargs: object) -> PatchDiscriminator:
        """Build with CoSinGAN's depth convention (section 2.1): ``total_convs = n_layers + 2``.

        CoSinGAN uses 6, 6, 7, 7, 8, 8, 9, 9, 10 convs for its 32 ... 512 px scales. Other keyword
        arguments go to the constructor.
        """
        if total_convs < 3:
            raise ValueError(f"total_convs must be >= 3 (n_layers = total_convs - 2 >= 1), got {total_convs}")
        return cls(in_channels, n_layers=total_convs - 2, **kwargs)  # type: ignore[arg-type]

    @property
    def receptive_field(self) -> int:
        """Receptive field of one output logit, in input pixels per side."""
        return patch_receptive_field(self.n_layers)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the logit map for an input of ``height`` x ``width`` (0 means empty)."""
        return patch_output_size(height, self.n_layers, self.padding), patch_output_size(
            width, self.n_layers, self.padding
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        """(N, in_channels, H, W) -> [block outputs]; the last is the (N, 1, h, w) logit map."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"PatchDiscriminator expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        oh, ow = self.output_size(h, w)
        if oh <= 0 or ow <= 0:
            raise ValueError(
                f"PatchDiscriminator with n_layers={self.n_layers} ({self.n_layers + 2} convs, padding={self.padding}) "
                f"leaves no output for a {h}x{w} input; use a larger input, fewer layers or padding=2"
            )
        features: list[Tensor] = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features
