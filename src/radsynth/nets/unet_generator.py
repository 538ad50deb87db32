"""pix2pix U-Net generator, with the depth as a parameter (CoSinGAN uses 4 to 8 downsamplings)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from radsynth.nets.init import init_weights
from radsynth.nets.norm import check_norm, conv_bias, make_norm

FINALS = ("tanh", "none")
ORDERS = ("pre", "post")
UPSAMPLES = ("transpose", "resize", "bilinear")


def upsampling_conv(in_channels: int, out_channels: int, upsample: str, bias: bool = True) -> nn.Module:
    """A x2 upsampling conv: (N, in, H, W) -> (N, out, 2H, 2W).

    ``'transpose'``: pix2pix's 4x4 stride-2 transposed conv. ``'resize'``: nearest-neighbour x2 then a
    3x3 conv (resize-convolution, Odena et al. 2016, "Deconvolution and checkerboard artifacts"): every
    output pixel sees the same number of input pixels, so the transposed conv's uneven overlap cannot
    print a regular dot grid into flat regions. ``'bilinear'``: the same with bilinear x2, which does
    not leave nearest's 2x2 blocks for the conv to smooth (seen as blocky lung texture in short runs).
    """
    if upsample == "transpose":
        return nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=bias)
    if upsample in ("resize", "bilinear"):
        mode = "nearest" if upsample == "resize" else "bilinear"
        return nn.Sequential(nn.Upsample(scale_factor=2, mode=mode), nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=bias))
    raise ValueError(f"upsample must be one of {UPSAMPLES}, got {upsample!r}")


class UNetGenerator(nn.Module):
    """pix2pix ``UnetGenerator`` (Isola et al. 2017, appendix 6.1.1) with a configurable depth.

    Input (N, in_channels, H, W), output (N, out_channels, H, W); H and W must be divisible by
    ``2**num_downs`` (the bottleneck may be odd-sized: 48 px at 4 downs gives 3x3). With
    ``final='tanh'`` the output lies in [-1, 1].

    Encoder: ``num_downs`` 4x4 stride-2 convs; the first has no activation before it and no norm
    after it, the others are LeakyReLU(0.2) -> conv -> norm, except the innermost (bottleneck) conv,
    which has no norm (so batch size 1 at a 1x1 bottleneck works). Channels are
    ``min(ngf * 2**i, max_channels)`` at depth i (64, 128, 256, 512, 512, ... for ngf=64).
    Decoder: ReLU -> 4x4 stride-2 transposed conv (or, with ``upsample='resize' / 'bilinear'``, x2 resize -> 3x3 conv)
    -> norm (-> dropout), the skip connection
    concatenated as ``cat([encoder_features, decoder_features])``; the outermost block is
    ReLU -> transposed conv -> tanh.

    Dropout sits in the ``dropout_blocks`` decoder blocks nearest the bottleneck, counting the
    innermost one (pix2pix paper decoder ``CD512-CD512-CD512-C512-...``; Liang et al. 2021, III-B: "Dropout
    applied to the first 3 blocks"). Note the pix2pix *reference code* instead puts it in the
    ``num_downs - 5`` blocks just outside the innermost one, i.e. none at all for the 4- and 5-deep
    nets CoSinGAN needs at 32-96 px; the paper rule is used so that every CoSinGAN scale has the
    dropout that ``set_dropout_active`` turns into a test-time diversifier.

    Convs that no norm follows (outermost and innermost down convs, output conv) keep a bias; the
    pix2pix code drops it on the two down convs when the norm is batch norm. Weights are
    initialised with ``init_weights`` (N(0, 0.02)).

    ``order`` places the activations. ``'pre'`` (default) is the pix2pix reference code above:
    activation -> conv -> norm (-> dropout), so skips carry un-activated features. ``'post'`` is
    Liang et al. 2021 (section III-B) and the TensorFlow pix2pix it follows: encoder block
    conv -> norm -> LeakyReLU(0.2), decoder block transposed conv -> norm -> dropout -> ReLU, so
    skips and decoder outputs are activated; the first encoder block is conv -> LeakyReLU and the
    output block transposed conv -> tanh. Layers, widths, norms, dropout and parameter count are
    the same in both orders.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_downs: int,
        ngf: int = 64,  # pix2pix appendix 6.1.1: C64 first layer
        max_channels: int = 512,  # pix2pix: width capped at 8 * ngf = 512
        norm: str = "batch",  # pix2pix appendix 6.1: Ck = Convolution-BatchNorm-ReLU
        dropout: float = 0.5,  # pix2pix appendix 6.1.1: dropout rate 50%
        dropout_blocks: int = 3,  # pix2pix appendix 6.1.1 / Liang et al. 2021 section III-B: first 3 decoder blocks
        final: str = "tanh",
        order: str = "pre",  # "post": Liang et al. 2021 section III-B (Conv-BN-LeakyReLU / ConvT-BN-Dropout-ReLU)
        upsample: str = "transpose",  # pix2pix; "resize" / "bilinear": nearest / bilinear x2 + 3x3 conv, no checkerboard (see upsampling_conv)
    ) -> None:
        super().__init__()
        check_norm(norm)
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels} and {out_channels}")
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2 (an outermost and an innermost block), got {num_downs}")
        if ngf < 1 or max_channels < 1:
            raise ValueError(f"ngf and max_channels must be >= 1, got ngf={ngf}, max_channels={max_channels}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not 0 <= dropout_blocks <= num_downs - 1:
            raise ValueError(
                f"dropout_blocks must be between 0 and num_downs - 1 = {num_downs - 1} "
                f"(the outermost decoder block never has dropout), got {dropout_blocks}"
            )
        if final not in FINALS:
            raise ValueError(f"final must be one of {FINALS}, got {final!r}")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        if upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}, got {upsample!r}")

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_downs = num_downs
        self.order = order
        post = order == "post"
        bias = conv_bias(norm)
        widths = [min(ngf * 2**i, max_channels) for i in range(num_downs)]

        first = nn.Conv2d(in_channels, widths[0], 4, 2, 1)  # no norm follows: keep bias
        encoder: list[nn.Module] = [nn.Sequential(first, nn.LeakyReLU(0.2)) if post else first]
        for i in range(1, num_downs):
            innermost = i == num_downs - 1
            layers: list[nn.Module] = [nn.Conv2d(widths[i - 1], widths[i], 4, 2, 1, bias=bias or innermost)]  # innermost: no norm
            if not innermost:
                layers.append(make_norm(norm, widths[i]))
            act = nn.LeakyReLU(0.2, inplace=False)
            layers = [*layers, act] if post else [act, *layers]
            encoder.append(nn.Sequential(*layers))
        self.encoder = nn.ModuleList(encoder)

        # decoder[i] undoes encoder[i]; it runs from i = num_downs - 1 (innermost) down to 0.
        decoder: list[nn.Module] = []
        for i in range(num_downs):
            in_ch = widths[i] if i == num_downs - 1 else 2 * widths[i]
            if i == 0:
                head: nn.Module = nn.Tanh() if final == "tanh" else nn.Identity()
                out_conv = upsampling_conv(in_ch, out_channels, upsample)
                decoder.append(nn.Sequential(out_conv, head) if post else nn.Sequential(nn.ReLU(), out_conv, head))
                continue
            layers = [upsampling_conv(in_ch, widths[i - 1], upsample, bias=bias), make_norm(norm, widths[i - 1])]
            if dropout > 0 and i >= num_downs - dropout_blocks:
                layers.append(nn.Dropout(dropout))
            layers = [*layers, nn.ReLU()] if post else [nn.ReLU(), *layers]
            decoder.append(nn.Sequential(*layers))
        self.decoder = nn.ModuleList(decoder)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_channels, H, W) -> (N, out_channels, H, W); H, W divisible by 2**num_downs."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNetGenerator expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        step = 2**self.num_downs
        h, w = x.shape[-2:]
        if h % step or w % step:
            raise ValueError(
                f"UNetGenerator with num_downs={self.num_downs} needs height and width divisible by "
                f"2**{self.num_downs} = {step}, got {h}x{w}; resize or pad the image, or change num_downs"
            )
        skips: list[Tensor] = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        y = self.decoder[-1](skips[-1])
        for i in range(self.num_downs - 2, -1, -1):
            y = self.decoder[i](torch.cat([skips[i], y], dim=1))
        return y


def set_dropout_active(model: nn.Module, active: bool) -> int:
    """Switch every dropout layer of ``model`` to sampling (``active=True``) or off, leaving the rest alone.

    CoSinGAN-style test-time diversity: call ``model.eval()`` first (batch norm uses its running
    statistics), then ``set_dropout_active(model, True)`` so each forward pass draws a new dropout
    mask. A later ``model.train()`` / ``model.eval()`` resets the dropout layers with everything
    else. Returns the number of dropout layers switched.
    """
    count = 0
    for layer in model.modules():
        if isinstance(layer, nn.modules.dropout._DropoutNd):
            layer.train(active)
            count += 1
    return count
