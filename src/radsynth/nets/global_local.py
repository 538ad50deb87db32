"""Global-local generator (Jiang et al. 2020, section III-A, Figs. 3-4; pix2pixHD, Wang et al. 2018, 3.2).

G1, the global information generator, is the ResNet generator on the half-resolution condition
(7x7 conv, 3 stride-2 downsamplings to 1/8 of its input, 9 residual blocks, upsampling back).
G2, the local details generator, works on the full-resolution condition: 7x7 conv to ngf/2
channels, one stride-2 downsampling to ngf channels, ``local_blocks`` residual blocks, one
upsampling and a 7x7 head (pix2pixHD's local enhancer; the paper's Fig. 4 gives the same
encode-decode shape without widths). Three ways to run it, one per training step of III-A:

* ``global``: G1 alone, (N, C, S, S) condition -> (N, 1, S/2, S/2) image (its input is the condition
  average-pooled to S/2, as pix2pixHD downsamples it);
* ``local``: G2 alone, (N, C, S, S) -> (N, 1, S, S);
* ``joint``: G2's residual blocks receive the element-wise sum of G2's downsampled features and
  G1's last upsampled features (both (N, ngf, S/2, S/2)) -> (N, 1, S, S).
"""

from __future__ import annotations

from torch import Tensor, nn

from radsynth.nets.init import init_weights
from radsynth.nets.norm import check_norm, conv_bias, make_norm
from radsynth.nets.resnet_generator import ResnetBlock, ResnetGenerator

MODES = ("global", "local", "joint")


class GlobalLocalGenerator(nn.Module):
    """Coarse-to-fine generator; outputs in [-1, 1]. See the module docstring for the three modes.

    Inputs are (N, in_channels, S, S) with S divisible by ``2 * 2**global_downsampling``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 1,
        ngf: int = 64,  # pix2pixHD: 64 filters in G1's first conv (Jiang Fig. 3: 7x7 conv, 64)
        global_downsampling: int = 3,  # Jiang Fig. 3: 256 -> 32 at half resolution
        global_blocks: int = 9,  # Jiang III-A: nine residual blocks
        local_blocks: int = 3,  # pix2pixHD code default (n_blocks_local)
        norm: str = "instance",  # pix2pixHD: instance norm
        padding: str = "reflect",
    ) -> None:
        super().__init__()
        check_norm(norm)
        if ngf < 2 or ngf % 2:
            raise ValueError(f"ngf must be an even number >= 2 (G2 starts with ngf/2 channels), got {ngf}")
        if local_blocks < 0:
            raise ValueError(f"local_blocks must be >= 0, got {local_blocks}")
        self.in_channels = in_channels
        self.step = 2 * 2**global_downsampling
        self.global_net = ResnetGenerator(in_channels, out_channels, ngf, global_blocks, global_downsampling, norm, padding)
        half, bias = ngf // 2, conv_bias(norm)
        reflect = nn.ReflectionPad2d if padding == "reflect" else nn.ZeroPad2d
        self.local_stem = nn.Sequential(reflect(3), nn.Conv2d(in_channels, half, 7, bias=bias), make_norm(norm, half), nn.ReLU())
        self.local_down = nn.Sequential(nn.Conv2d(half, ngf, 3, stride=2, padding=1, bias=bias), make_norm(norm, ngf), nn.ReLU())
        self.local_blocks = nn.Sequential(*[ResnetBlock(ngf, norm, padding) for _ in range(local_blocks)])
        self.local_up = nn.Sequential(
            nn.ConvTranspose2d(ngf, half, 3, stride=2, padding=1, output_padding=1, bias=bias), make_norm(norm, half), nn.ReLU()
        )
        self.local_head = nn.Sequential(reflect(3), nn.Conv2d(half, out_channels, 7), nn.Tanh())
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)  # pix2pixHD's input pyramid
        for part in (self.local_stem, self.local_down, self.local_blocks, self.local_up, self.local_head):
            init_weights(part)

    def local_modules(self) -> nn.ModuleList:
        """G2's parameters (what step 2 trains)."""
        return nn.ModuleList([self.local_stem, self.local_down, self.local_blocks, self.local_up, self.local_head])

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"GlobalLocalGenerator expects (N, {self.in_channels}, S, S), got {tuple(x.shape)}")
        if x.shape[-1] % self.step or x.shape[-2] % self.step:
            raise ValueError(f"GlobalLocalGenerator needs sides divisible by {self.step}, got {x.shape[-2]}x{x.shape[-1]}")

    def forward(self, condition: Tensor, mode: str = "joint") -> Tensor:
        """(N, C, S, S) condition -> (N, 1, S/2, S/2) for 'global', (N, 1, S, S) otherwise; in [-1, 1]."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self._check(condition)
        if mode == "global":
            return self.global_net(self.downsample(condition))
        features = self.local_down(self.local_stem(condition))
        if mode == "joint":
            features = features + self.global_net.features(self.downsample(condition))
        return self.local_head(self.local_up(self.local_blocks(features)))
