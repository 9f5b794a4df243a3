"""StyleGAN (Karras et al. 2019, "A Style-Based Generator Architecture"): NVIDIA's ``G_style`` (``G_mapping``
+ ``G_synthesis``) and ``D_basic`` (NVlabs/stylegan ``training/networks_stylegan.py``) as Flax modules on NHWC
images, with linear progressive growing (``resolution`` static, ``alpha`` traced) or none.

NVIDIA's switches are constructor kwargs (G unless marked D):

==========================  ===========  ================================================================
kwarg                       default      meaning
==========================  ===========  ================================================================
``mapping_layers``          8            dense layers z -> w (0: w = normalised z, "no mapping")
``mapping_fmaps/lrmul``     512 / 0.01   width and learning-rate multiplier of the mapping layers
``use_styles``              True         AdaIN styles from w in every layer (False: w only feeds the input)
``const_input_layer``       True         learned constant 4x4 input (False: traditional dense input from w)
``use_noise``               True         per-pixel noise with per-channel strengths
``use_pixel_norm``          False        pixel norm after each layer (PGGAN's)
``use_instance_norm``       True         instance norm after each layer (the "IN" of AdaIN)
``blur_filter`` (G, D)      [1, 2, 1]    low-pass filter after each up / before each down ("bilinear")
``w_avg_beta``              0.995        decay of the tracked mean w (truncation)
``fmap_base/decay/max``     8192/1/512   widths, as PGGAN
``mbstd_group_size`` (D)    4            minibatch stddev group (``mbstd_num_features`` 1)
==========================  ===========  ================================================================

Style mixing (``style_mixing_prob`` 0.9) is a training setting: the training code maps two latents with
``method=Generator.map`` and crosses the ws over before ``method=Generator.synthesize``. Truncation: NVIDIA
generates with psi 0.7 on the first 8 ws (the family's ``truncation``); here ``truncation_cutoff=None`` means
every layer (as in StyleGAN2), where NVIDIA's ``G_style`` skips truncation without a cutoff. NVIDIA's
``fused_scale`` ('auto': fused transposed / strided convs from 128 px) computes the same function as the
separate nearest-up + conv and conv + box-down computed here (the TF import flips fused up-conv kernels).

The ablation rungs of the paper's Table 1 (flag sets of NVIDIA's ``train.py``; FFHQ uses non-saturating
logistic + R1 gamma 10 and grows from 8x8 for B-F):

====  ================================  ===========================================================================
rung  model                             kwargs
====  ================================  ===========================================================================
A     ``pggan``                         the progressive GAN (``models/pggan.py``), WGAN-GP as its paper
B     ``stylegan1``, tuned baseline     ``use_styles=False, use_pixel_norm=True, use_instance_norm=False,
                                        mapping_layers=0, const_input_layer=False, use_noise=False``
                                        (+ no truncation, mixing 0; blur [1,2,1] = the bilinear up/down)
C     + mapping and styles              ``const_input_layer=False, use_noise=False`` (mixing 0)
D     + remove traditional input        ``use_noise=False`` (mixing 0)
E     + noise inputs                    defaults (mixing 0)
F     + mixing regularisation           defaults, style_mixing_prob 0.9
====  ================================  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from stylegan_jax.models.registry import Family, register
from stylegan_jax.nn.progressive import (
    GrowingStyleGenerator,
    ProgressiveDiscriminator,
    WSDense,
    grow_synthesis,
    num_layers_at,
    tf_torgb,
    upscale2d,
)
from stylegan_jax.nn.resolution import Resolution, block_canvas, block_shape, nf
from stylegan_jax.nn.style_layers import DENSE_INPUT_GAIN, StyleLayer, StyleMapping


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, r, r, img_channels] (r = ``resolution``, default the full one).

    Parameters: ``b4_const`` [C, 4, 4] (init ones, as NVIDIA) or ``b4_dense`` (traditional input), the
    `StyleLayer`\\ s ``b4_input`` (epilogue of the input), ``b4_conv``, ``b{res}_conv0`` (up), ``b{res}_conv1``,
    and ``torgb{res}`` (1x1, gain 1). Layer i reads ws[:, i] (ws[:, 0] everywhere without styles).
    """

    w_dim: int
    img_resolution: Resolution
    img_channels: int
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    use_styles: bool = True
    const_input_layer: bool = True
    use_noise: bool = True
    use_pixel_norm: bool = False
    use_instance_norm: bool = True
    blur_filter: Sequence[int] | None = (1, 2, 1)
    nonlinearity: str = "lrelu"
    use_wscale: bool = True

    @property
    def num_ws(self) -> int:
        return num_layers_at(self.img_resolution) if self.use_styles else 1

    def nf(self, stage: int) -> int:
        return nf(stage, self.fmap_base, self.fmap_decay, self.fmap_max)

    @nn.compact
    def __call__(self, ws: jax.Array, noise_mode: str = "random", resolution: int | None = None,
                 alpha: float | jax.Array = 1.0) -> jax.Array:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {ws.shape}")
        ws = ws.astype(jnp.float32)
        layer = dict(blur_filter=self.blur_filter, use_noise=self.use_noise, use_pixel_norm=self.use_pixel_norm,
                     use_instance_norm=self.use_instance_norm, use_styles=self.use_styles,
                     use_wscale=self.use_wscale, nonlinearity=self.nonlinearity)

        def w(idx: int) -> jax.Array:
            return ws[:, idx if self.use_styles else 0]

        def block(x: jax.Array, s: int) -> jax.Array:
            canvas = block_canvas(self.img_resolution, 2**s)
            x = StyleLayer(self.nf(s - 1), canvas, up=True, name=f"b{2**s}_conv0", **layer)(x, w(2 * s - 4),
                                                                                         noise_mode)
            return StyleLayer(self.nf(s - 1), canvas, name=f"b{2**s}_conv1", **layer)(x, w(2 * s - 3), noise_mode)

        ch, base = self.nf(1), block_canvas(self.img_resolution, 4)  # 4x4, or a W x H network's base
        h0, w0 = block_shape(self.img_resolution, 4)
        if self.const_input_layer:
            const = self.param("b4_const", nn.initializers.ones, (ch, h0, w0))
            x = jnp.broadcast_to(jnp.transpose(const, (1, 2, 0))[None], (ws.shape[0], h0, w0, ch))
        else:
            x = WSDense(ch * h0 * w0, gain=DENSE_INPUT_GAIN, bias=False, use_wscale=self.use_wscale,
                        name="b4_dense")(ws[:, 0])
            x = jnp.transpose(x.reshape(-1, ch, h0, w0), (0, 2, 3, 1))  # NVIDIA reshapes to NCHW
        x = StyleLayer(ch, base, kernel_size=0, name="b4_input", **layer)(x, w(0), noise_mode)
        x = StyleLayer(ch, base, name="b4_conv", **layer)(x, w(1), noise_mode)
        torgb = partial(tf_torgb, img_channels=self.img_channels, use_wscale=self.use_wscale)
        return grow_synthesis(x, block, torgb, upscale2d, width=self.nf, img_resolution=self.img_resolution,
                              resolution=resolution, alpha=alpha, initializing=self.is_initializing())


class Generator(GrowingStyleGenerator):
    """z [N, z_dim], c [N, c_dim] -> images [N, r, r, img_channels].

    ``G.apply(variables, z, c, resolution=, alpha=, truncation_psi=, truncation_cutoff=, noise_mode=,
    rngs={'noise': key})``; ``method=Generator.map`` gives ws [N, num_ws, w_dim] (updating ``buffers/w_avg``
    with ``update_emas=True, mutable=['buffers']``), ``method=Generator.synthesize`` turns ws into images.
    Variables: ``params`` and ``buffers`` (``mapping/w_avg``, each layer's ``noise_const``).
    """

    z_dim: int
    c_dim: int
    img_resolution: Resolution
    img_channels: int
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_fmaps: int = 512
    mapping_lrmul: float = 0.01
    normalize_latents: bool = True
    w_avg_beta: float = 0.995
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    use_styles: bool = True
    const_input_layer: bool = True
    use_noise: bool = True
    use_pixel_norm: bool = False
    use_instance_norm: bool = True
    blur_filter: Sequence[int] | None = (1, 2, 1)
    nonlinearity: str = "lrelu"
    use_wscale: bool = True
    #: A snapshot taken mid-growth: the resolution and fade-in it was trained to (`as_grown`); None: grown.
    grown_resolution: int | None = None
    grown_alpha: float = 1.0

    def setup(self) -> None:
        self.synthesis = SynthesisNetwork(
            w_dim=self.w_dim, img_resolution=self.img_resolution, img_channels=self.img_channels,
            fmap_base=self.fmap_base, fmap_decay=self.fmap_decay, fmap_max=self.fmap_max, use_styles=self.use_styles,
            const_input_layer=self.const_input_layer, use_noise=self.use_noise, use_pixel_norm=self.use_pixel_norm,
            use_instance_norm=self.use_instance_norm, blur_filter=self.blur_filter, nonlinearity=self.nonlinearity,
            use_wscale=self.use_wscale)
        self.mapping = StyleMapping(
            z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws, num_layers=self.mapping_layers,
            layer_features=self.mapping_fmaps, lr_multiplier=self.mapping_lrmul, nonlinearity=self.nonlinearity,
            normalize_latents=self.normalize_latents, use_wscale=self.use_wscale, w_avg_beta=self.w_avg_beta)

    @property
    def num_ws(self) -> int:
        return num_layers_at(self.img_resolution) if self.use_styles else 1


class Discriminator(ProgressiveDiscriminator):
    """NVIDIA's ``D_basic``: img [N, r, r, C], c [N, c_dim] -> logits [N, 1]; as PGGAN's D with the
    [1, 2, 1] blur before each downsampling conv (see `ProgressiveDiscriminator`)."""

    blur_filter: Sequence[int] | None = (1, 2, 1)


def config_defaults() -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """G and D sub-configs: NVIDIA's ``G_style`` / ``D_basic`` defaults (rung F of Table 1)."""
    G = ml_collections.ConfigDict(dict(
        z_dim=512, w_dim=512, mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01, normalize_latents=True,
        w_avg_beta=0.995, fmap_base=8192, fmap_decay=1.0, fmap_max=512, use_styles=True, const_input_layer=True,
        use_noise=True, use_pixel_norm=False, use_instance_norm=True, blur_filter=[1, 2, 1], nonlinearity="lrelu",
        use_wscale=True))
    D = ml_collections.ConfigDict(dict(fmap_base=8192, fmap_decay=1.0, fmap_max=512, mbstd_group_size=4,
                                       mbstd_num_features=1, blur_filter=[1, 2, 1], use_wscale=True))
    return G, D



#: NVIDIA generates with psi 0.7 on the first 8 ws.
FAMILY = register(Family("stylegan1", Generator, Discriminator, config_defaults, has_mapping=True, grows=True,
                         truncation=(0.7, 8), non_square=True))
