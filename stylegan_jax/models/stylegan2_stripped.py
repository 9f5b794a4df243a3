"""Stripped StyleGAN2: Config B of R3GAN's roadmap (Huang et al. 2024, "The GAN is dead; long live the GAN!",
Table 2), StyleGAN2's backbone without its tricks.

Removed from StyleGAN2 (stylegan2-ada-pytorch, `stylegan2.py` here): z normalisation, the mapping network,
style injection, weight modulation / demodulation, noise injection, equalised learning rate, minibatch
standard deviation; z has 64 dimensions. Kept: the 4x4 input, G with output skips (a toRGB at every
resolution, added to the previous image upsampled), the ResNet D, leaky ReLU 0.2 in both, FIR resampling
with [1, 3, 3, 1] (no strided or transposed convolutions), no normalisation layers, no tanh.

How z enters G is not in the paper. Here it is R3GAN's generative basis: a learned 4x4 basis
(``synthesis/b4/const``, [C, 4, 4], N(0, 1), StyleGAN2's const) multiplied channel by channel by a bias-free
linear map of z (``synthesis/b4/fc``, [C, z_dim]). Of the constructions tried it is the one whose parameter
count is Table 2's at 256x256 RGB with the ``paper256`` widths (channel_base 16384, channel_max 512):
G 18,890,453 (Table 2: 18.890M). Others counted: the const alone (z unused) 18.858M; const times (or plus)
a biased fc, or one mapping layer z -> 512, 18.891M; a PGGAN/StyleGAN1-style dense layer z -> 4x4xC with or
without bias, with or without the const, 19.374M-19.390M; z as 64 constant channels into b4/conv1 19.153M;
affines from z kept for the toRGBs 19.020M, for every layer 19.340M. Adding fc(z) to the const instead of
multiplying counts the same; the product is R3GAN's. D is StyleGAN2's without the minibatch-stddev channel:
23,996,481 (Table 2: 23.996M; stylegan2-ada-pytorch's paper256 D, Config A, has 24,001,089).

Without equalised learning rate every weight is used as stored, initialised N(0, gain / sqrt(fan_in)) with
R3GAN's MSR gain: sqrt(2 / (1 + 0.2^2)) for a layer followed by leaky ReLU, 1 otherwise (`nn.layers.msr_gain`);
the activations carry no runtime gain. The resnet merges keep their sqrt(0.5) (an architectural constant).
Biases start at 0, the basis N(0, 1).

Labels (``c_dim`` > 0): G concatenates a bias-free linear embedding of c (``embed``, ``embed_dim`` features,
MSR gain 1) to z, as R3GAN's G does; D projects as StyleGAN2's does: its last layer gives ``cmap_dim``
features, the logit is <features, embed(c)> / sqrt(cmap_dim), but ``embed`` is one bias-free linear layer
(MSR gain 1) instead of StyleGAN2's label mapping network.

Parameter names are StyleGAN2's: ``synthesis/b{res}/conv0|conv1|torgb/{weight,bias}``, D's
``b{res}/fromrgb|conv0|conv1|skip`` and ``b4/conv|fc|out`` (torch layouts, [out, in, k, k] and [out, in]).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from ml_collections import config_dict

from stylegan_jax.errors import ConfigError
from stylegan_jax.models.registry import Family, register
from stylegan_jax.models.stylegan2 import discriminator_layers, fp16_resolution
from stylegan_jax.nn.discriminator import DiscriminatorBlock, DiscriminatorEpilogue
from stylegan_jax.nn.layers import DEFAULT_FILTER, Conv2d, FullyConnected, normal_init
from stylegan_jax.nn.resolution import channels_per_resolution, log2_resolution
from stylegan_jax.nn.synthesis import check_architecture
from stylegan_jax.ops import setup_filter, upsample2d

PLAIN = dict(equalized_lr=False)  # the shared layers without equalised learning rate


def check_config(architecture: str, img_resolution: int, net: str, minimum: int = 4) -> None:
    """One clear error for an architecture other than orig / skip / resnet (naming ``net``'s key) or a bad
    resolution."""
    check_architecture(architecture, net)
    try:
        log2_resolution(img_resolution, minimum=minimum, name="img_resolution")
    except ValueError as e:
        raise ConfigError(f"stylegan2_stripped: {e}") from None


class SynthesisBlock(nn.Module):
    """One resolution of the stripped synthesis network: StyleGAN2's block with plain convolutions, conv0
    (3x3, 2x FIR up), conv1 (3x3), torgb (1x1, linear).

    Input x [N, r/2, r/2, in_channels], or for the first block (``in_channels`` 0) the latent [N, latent_dim],
    which becomes the generative basis ``const`` [out_channels, r, r] times ``fc(latent)`` [N, out_channels]
    channel by channel; img [N, r/2, r/2, img_channels] or None. Output x [N, r, r, out_channels] (bfloat16
    when ``use_fp16``) and img [N, r, r, img_channels] (float32).
    """

    in_channels: int
    out_channels: int
    resolution: int
    img_channels: int
    is_last: bool
    architecture: str = "skip"
    resample_filter: Sequence[int] = DEFAULT_FILTER
    conv_clamp: float | None = None
    use_fp16: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, img: jax.Array | None, force_fp32: bool = False):
        dtype = jnp.bfloat16 if self.use_fp16 and not force_fp32 else jnp.float32
        conv = dict(kernel_size=3, activation="lrelu", conv_clamp=self.conv_clamp, **PLAIN)
        if self.in_channels == 0:
            r = self.resolution
            const = self.param("const", normal_init(), (self.out_channels, r, r))
            scale = FullyConnected(self.out_channels, bias=False, name="fc", **PLAIN)(x.astype(jnp.float32))
            x = (jnp.transpose(const, (1, 2, 0))[None] * scale[:, None, None, :]).astype(dtype)
            x = Conv2d(self.out_channels, name="conv1", **conv)(x)
        else:
            x = x.astype(dtype)
            conv0 = Conv2d(self.out_channels, up=2, resample_filter=self.resample_filter, name="conv0", **conv)
            conv1 = Conv2d(self.out_channels, name="conv1", **conv)
            if self.architecture == "resnet":
                skip = Conv2d(self.out_channels, kernel_size=1, bias=False, up=2,
                              resample_filter=self.resample_filter, name="skip", **PLAIN)
                x = skip(x, gain=np.sqrt(0.5)) + conv1(conv0(x), gain=np.sqrt(0.5))
            else:
                x = conv1(conv0(x))
        if img is not None:
            img = upsample2d(img, setup_filter(self.resample_filter))
        if self.is_last or self.architecture == "skip":
            y = Conv2d(self.img_channels, kernel_size=1, conv_clamp=self.conv_clamp, name="torgb", **PLAIN)(x)
            img = y.astype(jnp.float32) if img is None else img + y.astype(jnp.float32)
        return x, img


class SynthesisNetwork(nn.Module):
    """latent [N, latent_dim] (z, with the label embedding when conditional) -> images [N, img_resolution,
    img_resolution, img_channels] float32."""

    img_resolution: int
    img_channels: int
    channel_base: int = 16384
    channel_max: int = 512
    architecture: str = "skip"
    num_fp16_res: int = 0
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, latent: jax.Array, force_fp32: bool = False) -> jax.Array:
        check_config(self.architecture, self.img_resolution, "G")
        resolutions = [2**i for i in range(2, log2_resolution(self.img_resolution) + 1)]
        channels = channels_per_resolution(resolutions, self.channel_base, self.channel_max)
        fp16_res = fp16_resolution(self.img_resolution, self.num_fp16_res)
        x, img = latent, None
        for res in resolutions:
            block = SynthesisBlock(
                in_channels=channels[res // 2] if res > 4 else 0, out_channels=channels[res], resolution=res,
                img_channels=self.img_channels, is_last=(res == self.img_resolution),
                architecture=self.architecture, conv_clamp=self.conv_clamp, use_fp16=(res >= fp16_res),
                name=f"b{res}",
            )
            x, img = block(x, img, force_fp32)
        return img


class Generator(nn.Module):
    """z [N, z_dim], c [N, c_dim] -> images [N, img_resolution, img_resolution, img_channels] (no tanh).

    ``G.apply(variables, z, c)``. ``train``, ``resolution``, ``alpha``, ``noise_mode`` and truncation are
    accepted for the common interface (DCGAN's) and do nothing: the network has no batch norm, does not grow,
    has no noise inputs and no W space. ``force_fp32`` runs the ``num_fp16_res`` layers in float32.
    """

    z_dim: int
    c_dim: int
    img_resolution: int
    img_channels: int
    channel_base: int = 16384
    channel_max: int = 512
    architecture: str = "skip"
    embed_dim: int = 64  # label embedding concatenated to z (R3GAN's: the noise dimension)
    num_fp16_res: int = 0
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, z: jax.Array, c: jax.Array, *, train: bool = False, resolution: int | None = None,
                 alpha: float | jax.Array = 1.0, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                 noise_mode: str = "random", force_fp32: bool = False) -> jax.Array:
        del train, resolution, alpha, truncation_psi, truncation_cutoff, noise_mode
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [N, {self.z_dim}], got {z.shape}")
        x = z.astype(jnp.float32)
        if self.c_dim:
            x = jnp.concatenate([x, FullyConnected(self.embed_dim, bias=False, name="embed", **PLAIN)(
                c.astype(jnp.float32))], axis=1)
        return SynthesisNetwork(img_resolution=self.img_resolution, img_channels=self.img_channels,
                                channel_base=self.channel_base, channel_max=self.channel_max,
                                architecture=self.architecture, num_fp16_res=self.num_fp16_res,
                                conv_clamp=self.conv_clamp, name="synthesis")(x, force_fp32)


class Discriminator(nn.Module):
    """images [N, img_resolution, img_resolution, img_channels], c [N, c_dim] -> logits [N, 1] float32.

    StyleGAN2's D (`nn.discriminator` blocks and epilogue) with plain layers and no minibatch stddev; labels
    by projection onto ``embed(c)`` [N, cmap_dim] (``cmap_dim`` None: the 4x4 width). ``alpha`` is accepted
    for the common interface and does nothing.
    """

    c_dim: int
    img_resolution: int
    img_channels: int
    architecture: str = "resnet"
    channel_base: int = 16384
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    cmap_dim: int | None = None

    @nn.compact
    def __call__(self, img: jax.Array, c: jax.Array, *, alpha: float | jax.Array = 1.0,
                 force_fp32: bool = False) -> jax.Array:
        del alpha
        check_config(self.architecture, self.img_resolution, "D")
        log2_img = log2_resolution(self.img_resolution)
        expected = (self.img_resolution, self.img_resolution, self.img_channels)
        if img.ndim != 4 or img.shape[1:] != expected:
            raise ValueError(f"D expects images [N, {', '.join(map(str, expected))}], got {img.shape}")
        block_resolutions = [2**i for i in range(log2_img, 2, -1)]
        channels = channels_per_resolution(block_resolutions + [4], self.channel_base, self.channel_max)
        fp16_res = fp16_resolution(self.img_resolution, self.num_fp16_res)
        cmap_dim = (channels[4] if self.cmap_dim is None else self.cmap_dim) if self.c_dim else 0
        common = dict(img_channels=self.img_channels, architecture=self.architecture, conv_clamp=self.conv_clamp,
                      **PLAIN)
        x = None
        for res in block_resolutions:
            block = DiscriminatorBlock(
                in_channels=channels[res] if res < self.img_resolution else 0, tmp_channels=channels[res],
                out_channels=channels[res // 2], resolution=res, use_fp16=(res >= fp16_res), name=f"b{res}",
                **common,
            )
            x, img = block(x, img, force_fp32)
        cmap = None
        if self.c_dim:
            cmap = FullyConnected(cmap_dim, bias=False, name="embed", **PLAIN)(c.astype(jnp.float32))
        epilogue = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, mbstd_num_channels=0,
                                         name="b4", **common)
        return epilogue(x, img, cmap)


def config_defaults() -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """G and D sections at R3GAN's Table 2 Config B settings on FFHQ-256: z_dim 64 and stylegan2-ada-pytorch's
    ``paper256`` widths (channel_base 16384, channel_max 512), G skip, D resnet, float32 throughout (the paper
    does not say whether Config B mixes precision), ``cmap_dim`` None (D's 4x4 width), ``embed_dim`` 64."""
    G = ml_collections.ConfigDict(dict(
        z_dim=64, channel_base=16384, channel_max=512, architecture="skip", embed_dim=64, num_fp16_res=0,
        conv_clamp=config_dict.placeholder(float),
    ))
    D = ml_collections.ConfigDict(dict(
        architecture="resnet", channel_base=16384, channel_max=512, num_fp16_res=0,
        conv_clamp=config_dict.placeholder(float), cmap_dim=config_dict.placeholder(int),
    ))
    return G, D


FAMILY = register(Family("stylegan2_stripped", Generator, Discriminator, config_defaults, has_mapping=False,
                         d_layers=discriminator_layers))
