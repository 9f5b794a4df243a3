"""The StyleGAN2 paper's configs B-D: the revised StyleGAN synthesis of its Fig. 2c with the weight
demodulation of Fig. 2d (NVIDIA's ``G_synthesis_stylegan_revised``) and the StyleGAN discriminator ported to
StyleGAN2's layers (``D_stylegan``), both growing progressively (NVlabs/stylegan2
``training/networks_stylegan2.py``). NHWC images.

The revised synthesis: a learned constant, then per layer a modulated + demodulated 3x3 conv (the upsampling
conv with the [1, 3, 3, 1] FIR), noise (one strength per layer), bias and leaky ReLU outside the style block;
no instance norm, no noise or bias on the constant. Every resolution has a ToRGB (modulated 1x1, not
demodulated) reading the w of the next layer, as NVIDIA's. The fade-in upsamples the lower ToRGB nearest-
neighbour (NVIDIA's ``upsample_2d`` without a kernel: ``[1] * factor``); the D fade-in box-downsamples the image
(NVIDIA's ``naive_downsample_2d``). Both grow on the skeletons of
``nn/progressive.py`` (`grow_synthesis`, `GrowingDiscriminator`) with StyleGAN2's layers: `SynthesisBlock` /
`ToRGBLayer` (``nn/synthesis.py``), `MappingNetwork`, `Conv2d`, `FullyConnected`.

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

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from stylegan_jax.models.registry import Family, register
from stylegan_jax.nn.layers import Conv2d, FullyConnected
from stylegan_jax.nn.mapping import MappingNetwork
from stylegan_jax.nn.progressive import (
    DiscriminatorLayers,
    GrowingDiscriminator,
    GrowingStyleGenerator,
    grow_synthesis,
    num_layers_at,
    upscale2d,
)
from stylegan_jax.nn.resolution import nf
from stylegan_jax.nn.synthesis import SynthesisBlock, ToRGBLayer


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, r, r, img_channels] (r = ``resolution``, default the full one).

    Parameters: ``b4`` (``const``, ``conv1``) and ``b{res}`` (``conv0`` up, ``conv1``), StyleGAN2's
    `SynthesisBlock` without ToRGB; ``torgb{res}``. Layer i reads ws[:, i]; ToRGB of resolution r reads
    ws[:, 2 log2(r) - 3] (so ``num_ws`` counts the last ToRGB's w).
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

    def nf(self, stage: int) -> int:
        return nf(stage, self.fmap_base, self.fmap_decay, self.fmap_max, self.fmap_min)

    @nn.compact
    def __call__(self, ws: jax.Array, noise_mode: str = "random", resolution: int | None = None,
                 alpha: float | jax.Array = 1.0) -> jax.Array:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {ws.shape}")
        ws = ws.astype(jnp.float32)

        def block(x: jax.Array | None, s: int) -> jax.Array:
            b = SynthesisBlock(in_channels=self.nf(s - 2) if s > 2 else 0, out_channels=self.nf(s - 1),
                               resolution=2**s, img_channels=self.img_channels, is_last=False, architecture="orig",
                               use_noise=self.use_noise, name=f"b{2**s}")
            first = max(2 * s - 5, 0)
            return b(x, None, ws[:, first : first + b.num_conv], noise_mode)[0]

        def torgb(x: jax.Array, s: int) -> jax.Array:
            return ToRGBLayer(self.img_channels, name=f"torgb{2**s}")(x, ws[:, 2 * s - 3])

        return grow_synthesis(block(None, 2), block, torgb, upscale2d,
                              width=self.nf, img_resolution=self.img_resolution, resolution=resolution, alpha=alpha,
                              initializing=self.is_initializing())


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
    #: A snapshot taken mid-growth: the resolution and fade-in it was trained to (`as_grown`); None: grown.
    grown_resolution: int | None = None
    grown_alpha: float = 1.0

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


class Discriminator(GrowingDiscriminator):
    """NVIDIA's ``D_stylegan``: img [N, r, r, img_channels] (r read from the shape), c [N, c_dim] -> logits
    [N, 1]; the `stylegan_jax.nn.progressive.GrowingDiscriminator` of StyleGAN2's layers (gain after the
    activation, [1, 3, 3, 1] FIR before the stride-2 conv), with the dense layers ``b4_fc`` (nf(0) features) and
    ``b4_out`` (one score per class with labels; the given class's is kept).
    """

    def layers(self) -> DiscriminatorLayers:
        conv = partial(Conv2d, activation="lrelu")
        return DiscriminatorLayers(conv=conv, down=partial(conv, down=2),
                                   dense=partial(FullyConnected, activation="lrelu", name="b4_fc"),
                                   out=partial(FullyConnected, name="b4_out"))


def config_defaults() -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """G and D sub-configs: NVIDIA's configs B-D (fmap_base 8192; the TF functions' other defaults)."""
    G = ml_collections.ConfigDict(dict(z_dim=512, w_dim=512, mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01,
                                       w_avg_beta=0.995, fmap_base=8192, fmap_decay=1.0, fmap_min=1, fmap_max=512,
                                       use_noise=True))
    D = ml_collections.ConfigDict(dict(fmap_base=8192, fmap_decay=1.0, fmap_min=1, fmap_max=512, mbstd_group_size=4,
                                       mbstd_num_features=1))
    return G, D



FAMILY = register(Family("stylegan2_revised", Generator, Discriminator, config_defaults, has_mapping=True,
                         grows=True))
