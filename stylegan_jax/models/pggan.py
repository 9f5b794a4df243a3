"""Progressive GAN (Karras et al. 2018, "Progressive Growing of GANs"): NVIDIA's ``G_paper`` / ``D_paper``
(tkarras/progressive_growing_of_gans ``networks.py``) as Flax modules on NHWC images, with linear growing.

NVIDIA's switches, all constructor kwargs:

============================  ===========================  ==================================================
kwarg (G / D)                 NVIDIA's default             meaning
============================  ===========================  ==================================================
``fmap_base/decay/max``       8192 / 1.0 / 512             width of resolution r: min(fmap_base / (r / 2), max)
``normalize_latents`` (G)     True                         pixel-norm [z, c] before the first layer
``use_pixelnorm`` (G)         True                         pixel-wise feature norm after every G conv
``pixelnorm_epsilon`` (G)     1e-8
``use_leakyrelu`` (G)         True                         leaky ReLU 0.2 (False: ReLU); D always leaky
``use_wscale`` (G, D)         True                         equalised learning rate (He gain sqrt 2)
``mbstd_group_size`` (D)      4                            minibatch stddev group; <= 1 disables
============================  ===========================  ==================================================

Resampling is nearest-neighbour up and box (average-pool) down. NVIDIA's default ``fused_scale=True`` is computed
as separate ops of the same function (G: nearest-up + conv = the fused transposed conv with the kernel flipped;
D: conv + box-down, then bias and activation = the fused stride-2 conv); D_paper's non-fused variant, which
activates before downsampling, is not offered. Growing: ``resolution`` (static) runs the
blocks up to it and ``alpha`` (traced) fades the newest block in, in G on the images
(alpha * toRGB_r + (1 - alpha) * nearest-up(toRGB_{r/2})) and in D on the features.

Departures: labels are concatenated to z as in ``G_paper``, but D conditions by keeping the score of the
given class (StyleGAN1's ``D_basic``) instead of ``D_paper``'s auxiliary classifier outputs, so that every
model's D gives logits [N, 1]; ``z_dim`` is explicit (NVIDIA: nf(0)).
"""

from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from stylegan_jax.models.registry import Family, register
from stylegan_jax.nn.progressive import (
    ProgressiveDiscriminator,
    WSConv2d,
    WSDense,
    as_grown,
    grow_synthesis,
    pixel_norm,
    tf_torgb,
    upscale2d,
)
from stylegan_jax.nn.resolution import Resolution, block_shape, nf
from stylegan_jax.ops import bias_act


class Generator(nn.Module):
    """z [N, z_dim], c [N, c_dim] -> images [N, r, r, img_channels] (r = ``resolution``, default the full one).

    Parameters: ``b4_dense`` (z -> 4x4, weight gain sqrt(2) / 4 as NVIDIA, bias per channel after the
    reshape), ``b4_conv``, ``b{res}_conv0`` (after nearest 2x up), ``b{res}_conv1``, ``torgb{res}``
    (1x1, linear, gain 1). Every conv: bias, leaky ReLU, pixel norm.
    """

    z_dim: int
    c_dim: int
    img_resolution: Resolution
    img_channels: int
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    normalize_latents: bool = True
    use_pixelnorm: bool = True
    pixelnorm_epsilon: float = 1e-8
    use_leakyrelu: bool = True
    use_wscale: bool = True
    #: A snapshot taken mid-growth: the resolution and fade-in it was trained to (`as_grown`); None: grown.
    grown_resolution: int | None = None
    grown_alpha: float = 1.0

    def nf(self, stage: int) -> int:
        return nf(stage, self.fmap_base, self.fmap_decay, self.fmap_max)

    @nn.compact
    def __call__(self, z: jax.Array, c: jax.Array | None, *, resolution: int | None = None,
                 alpha: float | jax.Array = 1.0, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                 noise_mode: str = "random") -> jax.Array:
        """Images [N, r, r, img_channels]; ``truncation_*`` / ``noise_mode`` exist for a uniform call (PGGAN
        has neither: psi must be 1)."""
        if not (isinstance(truncation_psi, int | float) and truncation_psi == 1):
            raise ValueError("PGGAN has no truncation trick: truncation_psi must be 1")
        act = "lrelu" if self.use_leakyrelu else "relu"
        conv = dict(gain=float(np.sqrt(2)), activation=act, use_wscale=self.use_wscale)

        def pn(x: jax.Array) -> jax.Array:
            return pixel_norm(x, self.pixelnorm_epsilon) if self.use_pixelnorm else x

        def block(x: jax.Array, s: int) -> jax.Array:
            x = pn(WSConv2d(self.nf(s - 1), 3, name=f"b{2**s}_conv0", **conv)(upscale2d(x)))
            return pn(WSConv2d(self.nf(s - 1), 3, name=f"b{2**s}_conv1", **conv)(x))

        x = z.astype(jnp.float32)
        if self.c_dim:
            x = jnp.concatenate([x, c.astype(jnp.float32)], axis=1)
        if self.normalize_latents:
            x = pixel_norm(x, self.pixelnorm_epsilon)
        ch, (h0, w0) = self.nf(1), block_shape(self.img_resolution, 4)  # 4x4, or a W x H network's base
        x = WSDense(ch * h0 * w0, gain=float(np.sqrt(2)) / 4, bias=False, use_wscale=self.use_wscale,
                    name="b4_dense")(x)
        x = jnp.transpose(x.reshape(-1, ch, h0, w0), (0, 2, 3, 1))  # NVIDIA reshapes to NCHW
        x = pn(bias_act(x, self.param("b4_bias", nn.initializers.zeros, (ch,)), act=act, gain=1.0))
        x = pn(WSConv2d(ch, 3, name="b4_conv", **conv)(x))
        torgb = partial(tf_torgb, img_channels=self.img_channels, use_wscale=self.use_wscale)
        return as_grown(lambda r, a: grow_synthesis(x, block, torgb, upscale2d, width=self.nf,
                                                    img_resolution=self.img_resolution, resolution=r, alpha=a,
                                                    initializing=self.is_initializing()),
                        resolution, alpha, (self.grown_resolution, self.grown_alpha), self.img_resolution,
                        self.is_initializing())


class Discriminator(ProgressiveDiscriminator):
    """NVIDIA's ``D_paper``: img [N, r, r, C], c [N, c_dim] -> logits [N, 1] (see `ProgressiveDiscriminator`;
    no blur)."""


def config_defaults() -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """G and D sub-configs: NVIDIA's ``G_paper`` / ``D_paper`` defaults (z_dim 512 = their nf(0))."""
    G = ml_collections.ConfigDict(dict(z_dim=512, fmap_base=8192, fmap_decay=1.0, fmap_max=512,
                                       normalize_latents=True, use_pixelnorm=True, pixelnorm_epsilon=1e-8,
                                       use_leakyrelu=True, use_wscale=True))
    D = ml_collections.ConfigDict(dict(fmap_base=8192, fmap_decay=1.0, fmap_max=512, mbstd_group_size=4,
                                       use_wscale=True))
    return G, D



FAMILY = register(Family("pggan", Generator, Discriminator, config_defaults, grows=True, non_square=True))
