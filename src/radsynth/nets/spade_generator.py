"""SPADE generator (Park et al. 2019) for mask -> CT, the comparison method of Jiang et al. Table II.

Built from MONAI's ``SPADEDecoder`` in its GAN mode (``is_vae=False``): the one-hot condition is
resized to S / 2**len(channels) and convolved into ``channels[0]`` maps (SPADE's variant that
starts from the down-sampled segmentation map instead of noise), then one SPADE residual block per
entry of ``channels`` followed by 2x nearest upsampling, and a 3x3 conv to one channel with tanh.
Every normalisation inside the blocks is modulated by the condition (spatially-adaptive).
"""

from __future__ import annotations

from monai.networks.nets.spade_network import SPADEDecoder
from torch import Tensor, nn

SPADE_CHANNELS = (1024, 1024, 512, 256, 128, 64)  # SPADE generator widths 16nf .. 1nf with nf = 64 (Park et al. appendix A)


class SpadeGenerator(nn.Module):
    """(N, label_channels, S, S) one-hot condition -> (N, 1, S, S) image in [-1, 1]; S fixed at construction."""

    def __init__(self, label_channels: int, size: int, channels: tuple[int, ...] = SPADE_CHANNELS, hidden: int = 128) -> None:
        super().__init__()
        if size % 2 ** len(channels):
            raise ValueError(f"size {size} must be divisible by 2**len(channels) = {2 ** len(channels)}")
        self.label_channels = label_channels
        self.size = size
        self.decoder = SPADEDecoder(
            spatial_dims=2,
            out_channels=1,
            label_nc=label_channels,
            input_shape=(size, size),
            channels=list(channels),  # MONAI appends to this list: pass a copy
            is_vae=False,
            spade_intermediate_channels=hidden,  # SPADE: 128 hidden channels in the modulation MLP
            last_act="TANH",
        )

    def forward(self, condition: Tensor) -> Tensor:
        if condition.ndim != 4 or condition.shape[1] != self.label_channels or condition.shape[-1] != self.size or condition.shape[-2] != self.size:
            raise ValueError(f"SpadeGenerator expects (N, {self.label_channels}, {self.size}, {self.size}), got {tuple(condition.shape)}")
        return self.decoder(condition)
