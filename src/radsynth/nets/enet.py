"""ENet (Paszke, Chaurasia, Kim, Culurciello 2016, "ENet: a deep neural network architecture for
real-time semantic segmentation"), written out because MONAI has none.

The layout follows the paper's Table 1:

* initial block: 3x3 stride-2 convolution (16 - in_channels filters) concatenated with a 2x2 max
  pool of the input -> 16 channels at 1/2 resolution;
* stage 1: a downsampling bottleneck to 64 channels (1/4), then 4 regular bottlenecks;
* stages 2 and 3: (stage 2 only: a downsampling bottleneck to 128, 1/8), then regular, dilated 2,
  asymmetric 5, dilated 4, regular, dilated 8, asymmetric 5, dilated 16;
* stage 4: an upsampling bottleneck to 64 (max-unpooling with stage 2's pooling indices), 2 regular;
* stage 5: an upsampling bottleneck to 16 (stage 1's indices), 1 regular;
* a 2x2 stride-2 transposed convolution to the class logits at full resolution.

Every bottleneck is a residual block: 1x1 projection to a quarter of the channels (2x2 stride 2
when downsampling), the main convolution, 1x1 expansion, spatial dropout (0.01 in stage 1, 0.1
after), added to the shortcut (max pooling + zero channel padding when downsampling). Encoder
activations are PReLU, decoder activations ReLU, as in the authors' implementation. With 1 input
channel and 3 classes the network has 369,178 parameters (the paper: 0.37 M).
"""

from __future__ import annotations

import torch
from torch import nn

DOWNSAMPLING = 8  # three stride-2 stages: input sides must be divisible by 8


def _act(prelu: bool, channels: int) -> nn.Module:
    return nn.PReLU(channels) if prelu else nn.ReLU(inplace=True)


class InitialBlock(nn.Module):
    """(N, C, H, W) -> (N, 16, H/2, W/2): stride-2 conv (16 - C filters) ++ max pool of the input."""

    def __init__(self, in_channels: int, out_channels: int = 16) -> None:
        super().__init__()
        if in_channels >= out_channels:
            raise ValueError(f"in_channels must be below {out_channels}, got {in_channels}")
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(torch.cat([self.conv(x), self.pool(x)], dim=1)))


class Bottleneck(nn.Module):
    """Regular, dilated or asymmetric residual bottleneck; channels and size unchanged.

    kind: 'regular' (3x3), 'dilated' (3x3 with ``dilation``), 'asymmetric' (k x 1 then 1 x k, k = ``kernel``).
    """

    def __init__(self, channels: int, kind: str = "regular", dilation: int = 1, kernel: int = 5, dropout: float = 0.1, prelu: bool = True) -> None:
        super().__init__()
        inner = channels // 4
        if kind == "asymmetric":
            middle = nn.Sequential(
                nn.Conv2d(inner, inner, (kernel, 1), padding=(kernel // 2, 0), bias=False),
                nn.Conv2d(inner, inner, (1, kernel), padding=(0, kernel // 2), bias=False),
            )
        elif kind in ("regular", "dilated"):
            middle = nn.Conv2d(inner, inner, 3, padding=dilation, dilation=dilation, bias=False)
        else:
            raise ValueError(f"bottleneck kind must be regular, dilated or asymmetric, got '{kind}'")
        self.branch = nn.Sequential(
            nn.Conv2d(channels, inner, 1, bias=False), nn.BatchNorm2d(inner), _act(prelu, inner),
            middle, nn.BatchNorm2d(inner), _act(prelu, inner),
            nn.Conv2d(inner, channels, 1, bias=False), nn.BatchNorm2d(channels),
            nn.Dropout2d(dropout),
        )
        self.act = _act(prelu, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.branch(x))


class DownsamplingBottleneck(nn.Module):
    """(N, C_in, H, W) -> ((N, C_out, H/2, W/2), pooling indices for the matching upsampling block)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.1) -> None:
        super().__init__()
        inner = out_channels // 4
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)
        self.pad = out_channels - in_channels
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, inner, 2, stride=2, bias=False), nn.BatchNorm2d(inner), nn.PReLU(inner),
            nn.Conv2d(inner, inner, 3, padding=1, bias=False), nn.BatchNorm2d(inner), nn.PReLU(inner),
            nn.Conv2d(inner, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        main, indices = self.pool(x)
        main = nn.functional.pad(main, (0, 0, 0, 0, 0, self.pad))  # zero channels up to out_channels
        return self.act(main + self.branch(x)), indices


class UpsamplingBottleneck(nn.Module):
    """(N, C_in, H, W) + pooling indices -> (N, C_out, 2H, 2W); shortcut = 1x1 conv + max-unpooling."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.1) -> None:
        super().__init__()
        inner = in_channels // 4
        self.main = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, inner, 1, bias=False), nn.BatchNorm2d(inner), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(inner, inner, 2, stride=2, bias=False), nn.BatchNorm2d(inner), nn.ReLU(inplace=True),
            nn.Conv2d(inner, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, indices: torch.Tensor, output_size: torch.Size) -> torch.Tensor:
        main = self.unpool(self.main(x), indices, output_size=output_size)
        return self.act(main + self.branch(x))


def _stage23(channels: int, dropout: float) -> nn.Sequential:
    """The eight bottlenecks shared by stages 2 and 3 (paper Table 1)."""
    return nn.Sequential(
        Bottleneck(channels, "regular", dropout=dropout),
        Bottleneck(channels, "dilated", dilation=2, dropout=dropout),
        Bottleneck(channels, "asymmetric", kernel=5, dropout=dropout),
        Bottleneck(channels, "dilated", dilation=4, dropout=dropout),
        Bottleneck(channels, "regular", dropout=dropout),
        Bottleneck(channels, "dilated", dilation=8, dropout=dropout),
        Bottleneck(channels, "asymmetric", kernel=5, dropout=dropout),
        Bottleneck(channels, "dilated", dilation=16, dropout=dropout),
    )


class ENet(nn.Module):
    """(N, in_channels, H, W) in [-1, 1] -> (N, num_classes, H, W) logits; H and W divisible by 8.

    ``dropout``: (stage 1, stages 2-5) spatial dropout rates, the paper's (0.01, 0.1).
    """

    def __init__(self, num_classes: int = 3, in_channels: int = 1, dropout: tuple[float, float] = (0.01, 0.1)) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        first, later = dropout
        self.initial = InitialBlock(in_channels, 16)
        self.down1 = DownsamplingBottleneck(16, 64, first)
        self.stage1 = nn.Sequential(*(Bottleneck(64, "regular", dropout=first) for _ in range(4)))
        self.down2 = DownsamplingBottleneck(64, 128, later)
        self.stage2 = _stage23(128, later)
        self.stage3 = _stage23(128, later)
        self.up4 = UpsamplingBottleneck(128, 64, later)
        self.stage4 = nn.Sequential(Bottleneck(64, "regular", dropout=later, prelu=False), Bottleneck(64, "regular", dropout=later, prelu=False))
        self.up5 = UpsamplingBottleneck(64, 16, later)
        self.stage5 = Bottleneck(16, "regular", dropout=later, prelu=False)
        self.full_conv = nn.ConvTranspose2d(16, num_classes, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % DOWNSAMPLING or x.shape[-2] % DOWNSAMPLING:
            raise ValueError(f"ENet needs image sides divisible by {DOWNSAMPLING}, got {tuple(x.shape[-2:])}")
        x1 = self.initial(x)
        x2, indices1 = self.down1(x1)
        x2 = self.stage1(x2)
        x3, indices2 = self.down2(x2)
        x3 = self.stage3(self.stage2(x3))
        y = self.stage4(self.up4(x3, indices2, x2.shape[-2:]))
        y = self.stage5(self.up5(y, indices1, x1.shape[-2:]))
        return self.full_conv(y)
