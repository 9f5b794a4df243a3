"""The StyleGAN2 paper's configs B-D: the revised StyleGAN synthesis of its Fig. 2c with the weight
demodulation of Fig. 2d (NVIDIA's ``G_synthesis_stylegan_revised``) and the StyleGAN discriminator ported to
StyleGAN2's layers (``D_stylegan``), both growing progressively (NVlabs/stylegan2
``training/networks_stylegan2.py``). NHWC images.

The revised synthesis: a learned constant, then per layer a modulated + demodulated 3x3 conv (the upsampling
conv with the [1, 3, 3, 1] FIR), noise (one strength per layer), bias and leaky ReLU outside the style block;
no instance norm, no noise or bias on the constant. Every resolution has a ToRGB (modulated 1x1, not
demodulated) reading the w of the next layer, as NVIDIA's. The fade-in upsamples the lower ToRGB with the FIR
filter; the D fade-in box-downsamples the image (NVIDIA's ``naive_downsample_2d``). These reuse StyleGAN2's
`SynthesisLayer` / `ToRGBLayer` (``nn/synthesis.py``) and `MappingNetwork`, `Conv2d`, `FullyConnected`,
`MinibatchStdLayer`.

Constructor kwargs (NVIDIA's names where they have them): ``fmap_base`` (8192 in configs A-E; the function's
default is 16384, config F's "large networks"), ``fmap_decay`` 1, ``fmap_min`` 1, ``fmap_max`` 512, ``use_noise``,
``mapping_layers`` 8, ``mapping_fmaps`` 512, ``mapping_lrmul`` 0.01, ``w_avg_beta`` 0.995; D: the same widths,
``mbstd_group_size`` 4, ``mbstd_num_features`` 1. Weight demodulation is always on in this synthesis (that
is rung B's change).

The rungs of the StyleGAN2 paper's Table 1 (NVIDIA's ``run_training.py``: A-D grow from 8x8 with lr 0.001 and
its minibatch / learning-rate tables, fmap_base 8192 for A-E, gamma 10 except E's 100):

=====  ===============================  =========================================================================
rung   model                            kwargs / settings
=====  ===============================  =========================================================================
A      ``stylegan1``                    defaults (G_style + D_basic), no lazy regularisation, no path length
B      ``stylegan2_revised``            defaults: + weight demodulation (revised synthesis, D_stylegan)
C      ``stylegan2_revised``            defaults; + lazy regularisation (a training setting)
D      ``stylegan2_revised``            defaults; + path-length regularisation (a training setting)
E      ``stylegan2``                    no growing, skip G / resnet D, channel_base 16384 (= fmap_base 8192), gamma 100
F      ``stylegan2``                    channel_base 32768
=====  ===============================  =========================================================================

Departure: with labels, the mapping embeds them as stylegan2-ada-pytorch does (``embed``), where the TF code
concatenates a learned label embedding to z.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from stylegan_jax.nn.discriminator import MinibatchStdLayer
from stylegan_jax.nn.layers import DEFAULT_FILTER, Conv2d, FullyConnected
from stylegan_jax.nn.mapping import MappingNetwork
from stylegan_jax.nn.progressive import (
    GrowingStyleGenerator,
    downscale2d,
    fade,
    grown_resolution,
    is_one,
    log2_resolution,
    nf,
)
from stylegan_jax.nn.synthesis import SynthesisBlock, ToRGBLayer
from stylegan_jax.ops import setup_filter, upsample2d


def num_layers_at(resolution: int) -> int:
    """ws the revised synthesis reads up to ``resolution``: two per resolution from 4x4 (the last ToRGB's
    included)."""
    return 2 * log2_resolution(resolution) - 2


def widths(fmap_base: int, fmap_decay: float, fmap_min: int, fmap_max: int, log2_res: int) -> dict[int, int]:
    """{resolution: channels} for 4 .. 2**log2_res: NVIDIA's nf(log2(res) - 1)."""
    return {2**r: nf(r - 1, fmap_base, fmap_decay, fmap_max, fmap_min) for r in range(2, log2_res + 1)}


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, r, r, img_channels] (r = ``resolution``, default the full one).

    Parameters: ``b4`` (``const``, ``conv1``) and ``b{res}`` (``conv0`` up, ``conv1``), StyleGAN2's
    `SynthesisBlock` without ToRGB; ``torgb{res}``. Layer i reads ws[:, i]; ToRGB of resolution r reads
    ws[:, 2 log2(r) - 3].
    """

    w_dim: int
    img_resolution: int
    img_channels: int
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_min: int = 1
    fmap_max: int = 512
    use_noise: bool = True

    @property
    def num_ws(self) -> int:
        return num_layers_at(self.img_resolution)

    @nn.compact
    def __call__(self, ws: jax.Array, noise_mode: str = "random", resolution: int | None = None,
                 alpha: float | jax.Array = 1.0) -> jax.Array:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {ws.shape}")
        log2_img = log2_resolution(self.img_resolution)
        res_log2 = log2_resolution(grown_resolution(resolution, self.img_resolution))
        channels = widths(self.fmap_base, self.fmap_decay, self.fmap_min, self.fmap_max, log2_img)
        ws = ws.astype(jnp.float32)

        def torgb(x: jax.Array, r: int) -> jax.Array:
            return ToRGBLayer(self.img_channels, name=f"torgb{2**r}")(x, ws[:, 2 * r - 3])

        if self.is_initializing():  # create every resolution's torgb
            for r in range(2, log2_img):
                torgb(jnp.zeros((ws.shape[0], 2**r, 2**r, channels[2**r])), r)
        x = prev = None
        for r in range(2, res_log2 + 1):
            res = 2**r
            block = SynthesisBlock(in_channels=channels[res // 2] if r > 2 else 0, out_channels=channels[res],
                                   resolution=res, img_channels=self.img_channels, is_last=False,
                                   architecture="orig", use_noise=self.use_noise, name=f"b{res}")
            first = max(2 * r - 5, 0)
            prev, (x, _) = x, block(x, None, ws[:, first : first + block.num_conv], noise_mode)
        img = torgb(x, res_log2)
        if res_log2 > 2 and not is_one(alpha):
            img = fade(img, upsample2d(torgb(prev, res_log2 - 1), setup_filter(DEFAULT_FILTER)), alpha)
        return img


class Generator(GrowingStyleGenerator):
    """z [N, z_dim], c [N, c_dim] -> images [N, r, r, img_channels]; NVIDIA's ``G_main`` with
    ``G_synthesis_stylegan_revised``.

    ``G.apply(variables, z, c, resolution=, alpha=, truncation_psi=, truncation_cutoff=, noise_mode=,
    rngs={'noise': key})``; ``method=Generator.map`` gives ws [N, num_ws, w_dim] (``buffers/w_avg`` updated
    with ``update_emas=True, mutable=['buffers']``), ``method=Generator.synthesize`` turns ws into images.
    """

    z_dim: int
    c_dim: int
    img_resolution: int
    img_channels: int
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_fmaps: int = 512
    mapping_lrmul: float = 0.01
    w_avg_beta: float = 0.995
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_min: int = 1
    fmap_max: int = 512
    use_noise: bool = True

    def setup(self) -> None:
        self.synthesis = SynthesisNetwork(
            w_dim=self.w_dim, img_resolution=self.img_resolution, img_channels=self.img_channels,
            fmap_base=self.fmap_base, fmap_decay=self.fmap_decay, fmap_min=self.fmap_min, fmap_max=self.fmap_max,
            use_noise=self.use_noise)
        self.mapping = MappingNetwork(
            z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws, num_layers=self.mapping_layers,
            layer_features=self.mapping_fmaps, lr_multiplier=self.mapping_lrmul, w_avg_beta=self.w_avg_beta)

    @property
    def num_ws(self) -> int:
        return num_layers_at(self.img_resolution)


class Discriminator(nn.Module):
    """NVIDIA's ``D_stylegan``: img [N, r, r, img_channels] (r read from the shape), c [N, c_dim] -> logits
    [N, 1], growing like `stylegan_jax.nn.progressive.ProgressiveDiscriminator` but with StyleGAN2's layers
    (gain after the activation, [1, 3, 3, 1] FIR before the stride-2 conv).

    Parameters: ``fromrgb{res}``, ``b{res}_conv0``, ``b{res}_conv1`` (down), ``b4_conv``, ``b4_fc``
    (nf(0) features), ``b4_out`` (one score per class with labels; the given class's is kept).
    """

    c_dim: int
    img_resolution: int
    img_channels: int
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_min: int = 1
    fmap_max: int = 512
    mbstd_group_size: int = 4
    mbstd_num_features: int = 1

    @nn.compact
    def __call__(self, img: jax.Array, c: jax.Array | None, alpha: float | jax.Array = 1.0) -> jax.Array:
        log2_img = log2_resolution(self.img_resolution)
        if img.ndim != 4 or img.shape[1] != img.shape[2] or img.shape[3] != self.img_channels:
            raise ValueError(f"D expects images [N, r, r, {self.img_channels}], got {img.shape}")
        res_log2 = log2_resolution(grown_resolution(img.shape[1], self.img_resolution))

        def width(stage: int) -> int:
            return nf(stage, self.fmap_base, self.fmap_decay, self.fmap_max, self.fmap_min)

        def fromrgb(image: jax.Array, r: int) -> jax.Array:
            return Conv2d(width(r - 1), kernel_size=1, activation="lrelu", name=f"fromrgb{2**r}")(image)

        img = img.astype(jnp.float32)
        if self.is_initializing():  # create every resolution's fromrgb
            for r in range(2, log2_img):
                fromrgb(jnp.zeros((1, 2**r, 2**r, self.img_channels)), r)
        x = fromrgb(img, res_log2)
        for r in range(res_log2, 2, -1):
            x = Conv2d(width(r - 1), kernel_size=3, activation="lrelu", name=f"b{2**r}_conv0")(x)
            x = Conv2d(width(r - 2), kernel_size=3, activation="lrelu", down=2, name=f"b{2**r}_conv1")(x)
            if r == res_log2 and not is_one(alpha):
                x = fade(x, fromrgb(downscale2d(img), r - 1), alpha)
        if self.mbstd_group_size > 1:
            x = MinibatchStdLayer(self.mbstd_group_size, self.mbstd_num_features, name="mbstd")(x)
        x = Conv2d(width(1), kernel_size=3, activation="lrelu", name="b4_conv")(x)
        x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)  # NCHW order, as NVIDIA flattens
        x = FullyConnected(width(0), activation="lrelu", name="b4_fc")(x)
        x = FullyConnected(max(self.c_dim, 1), name="b4_out")(x)
        if self.c_dim:
            x = jnp.sum(x * c.astype(x.dtype), axis=1, keepdims=True)
        return x


def config_defaults() -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """G and D sub-configs: NVIDIA's configs B-D (fmap_base 8192; the TF functions' other defaults)."""
    G = ml_collections.ConfigDict(dict(z_dim=512, w_dim=512, mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01,
                                       w_avg_beta=0.995, fmap_base=8192, fmap_decay=1.0, fmap_min=1, fmap_max=512,
                                       use_noise=True))
    D = ml_collections.ConfigDict(dict(fmap_base=8192, fmap_decay=1.0, fmap_min=1, fmap_max=512, mbstd_group_size=4,
                                       mbstd_num_features=1))
    return G, D


def network_kwargs(cfg: ml_collections.ConfigDict, c_dim: int) -> tuple[dict, dict]:
    """(G kwargs, D kwargs) from ``cfg.G``, ``cfg.D``, ``cfg.resolution``, ``cfg.img_channels`` (JSON-able)."""
    common = dict(c_dim=c_dim, img_resolution=cfg.resolution, img_channels=cfg.img_channels)
    return dict(common, **cfg.G.to_dict()), dict(common, **cfg.D.to_dict())
