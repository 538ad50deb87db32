"""CycleGAN / pix2pixHD global ResNet generator, split into reusable parts."""

from __future__ import annotations

from torch import Tensor, nn

from radsynth.nets.init import init_weights
from radsynth.nets.norm import check_norm, conv_bias, make_norm

PADDINGS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": nn.ZeroPad2d}


def _pad(padding: str, size: int) -> nn.Module:
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {tuple(PADDINGS)}, got {padding!r}")
    return PADDINGS[padding](size)


class ResnetBlock(nn.Module):
    """x + [pad, conv3x3, norm, ReLU, pad, conv3x3, norm](x); (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels: int, norm: str = "instance", padding: str = "reflect") -> None:
        super().__init__()
        bias = conv_bias(norm)
        self.body = nn.Sequential(
            _pad(padding, 1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(norm, channels),
            nn.ReLU(),
            _pad(padding, 1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN ``ResnetGenerator`` (Zhu et al. 2017, appendix 7.2) = pix2pixHD global generator G1.

    c7s1-ngf -> ``n_downsampling`` x (3x3 stride-2 conv, norm, ReLU) -> ``n_blocks`` residual blocks
    -> ``n_downsampling`` x (3x3 stride-2 transposed conv, norm, ReLU) -> c7s1-out -> tanh.
    Input (N, in_channels, H, W) with H, W divisible by ``2**n_downsampling``; output
    (N, out_channels, H, W) in [-1, 1]. ``padding`` is the padding of every 'same' conv (the 7x7
    stem and head and the residual blocks); CycleGAN uses reflection throughout by default.

    The parts are attributes so pix2pixHD's local enhancer can reuse them: ``stem`` (c7s1-ngf),
    ``down``, ``blocks``, ``up`` and ``head`` (c7s1-out + tanh); ``features(x)`` is everything but
    the head, i.e. the (N, ngf, H, W) map pix2pixHD adds into the local generator.
    Weights are initialised with ``init_weights`` (N(0, 0.02)).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: int = 64,  # CycleGAN appendix 7.2: c7s1-64
        n_blocks: int = 9,  # CycleGAN appendix 7.2: 9 blocks for 256x256; Jiang et al. 2020 section III-A: 9
        n_downsampling: int = 2,  # CycleGAN: d128, d256 (pix2pixHD G1 uses 3 to reach 32x32 from 256x256)
        norm: str = "instance",  # CycleGAN section 4 / pix2pixHD: instance norm
        padding: str = "reflect",  # CycleGAN appendix 7.2: reflection padding
    ) -> None:
        super().__init__()
        check_norm(norm)
        _pad(padding, 1)
        if in_channels < 1 or out_channels < 1 or ngf < 1:
            raise ValueError(
                f"in_channels, out_channels and ngf must be >= 1, got {in_channels}, {out_channels}, {ngf}"
            )
        if n_blocks < 0 or n_downsampling < 0:
            raise ValueError(f"n_blocks and n_downsampling must be >= 0, got {n_blocks} and {n_downsampling}")
        self.in_channels = in_channels
        self.n_downsampling = n_downsampling
        bias = conv_bias(norm)

        self.stem = nn.Sequential(
            _pad(padding, 3), nn.Conv2d(in_channels, ngf, 7, bias=bias), make_norm(norm, ngf), nn.ReLU()
        )
        down: list[nn.Module] = []
        for i in range(n_downsampling):
            c = ngf * 2**i
            down += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), make_norm(norm, 2 * c), nn.ReLU()]
        self.down = nn.Sequential(*down)
        width = ngf * 2**n_downsampling
        self.blocks = nn.Sequential(*[ResnetBlock(width, norm, padding) for _ in range(n_blocks)])
        up: list[nn.Module] = []
        for i in range(n_downsampling, 0, -1):
            c = ngf * 2**i
            up += [
                nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                make_norm(norm, c // 2),
                nn.ReLU(),
            ]
        self.up = nn.Sequential(*up)
        self.head = nn.Sequential(_pad(padding, 3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh())
        init_weights(self)

    def features(self, x: Tensor) -> Tensor:
        """(N, in_channels, H, W) -> (N, ngf, H, W): the generator without its output head."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ResnetGenerator expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        step = 2**self.n_downsampling
        h, w = x.shape[-2:]
        if h % step or w % step:
            raise ValueError(
                f"ResnetGenerator with n_downsampling={self.n_downsampling} needs height and width divisible "
                f"by {step}, got {h}x{w}; resize or pad the image"
            )
        return self.up(self.blocks(self.down(self.stem(x))))

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_channels, H, W) -> (N, out_channels, H, W) in [-1, 1]."""
        return self.head(self.features(x))
