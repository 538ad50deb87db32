"""radsynth.nets: GAN building blocks (pix2pix / CycleGAN / pix2pixHD / CoSinGAN)."""

from radsynth.nets.init import init_weights
from radsynth.nets.multiscale_discriminator import MultiScalePatchDiscriminator
from radsynth.nets.norm import NORM_KINDS, conv_bias, make_norm
from radsynth.nets.patch_discriminator import PatchDiscriminator, patch_output_size, patch_receptive_field
from radsynth.nets.resnet_generator import ResnetBlock, ResnetGenerator
from radsynth.nets.state_file import read_state_file
from radsynth.nets.unet_generator import UNetGenerator, set_dropout_active

__all__ = [
    "NORM_KINDS",
    "MultiScalePatchDiscriminator",
    "PatchDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "UNetGenerator",
    "conv_bias",
    "init_weights",
    "make_norm",
    "patch_output_size",
    "patch_receptive_field",
    "read_state_file",
    "set_dropout_active",
]
