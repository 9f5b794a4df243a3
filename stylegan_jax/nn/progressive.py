"""Building blocks of the progressively grown networks (PGGAN, StyleGAN1, the StyleGAN2 paper's configs B-D):
NVIDIA's TensorFlow-era layers, on NHWC images.

These layers follow the TF code's convention for the He gain: the gain multiplies the *weights*
(``act(x @ (W * gain * lrmul / sqrt(fan_in)) + b * lrmul)``), where the StyleGAN2 layers of ``nn/layers.py``
multiply the activation's *output* (``gain * act(x @ W' + b)``). The two differ once biases are non-zero, so
imported TF weights need the TF form. Parameter layouts are NVIDIA's PyTorch ones (``weight`` [out, in] or
[out, in, k, k], ``bias`` [out]).

Also here: pixel-wise feature normalisation, instance normalisation, nearest-neighbour and box-filter
resampling, the [1, 2, 1] blur, the fade-in blend, and the one growing skeleton of each network that the
growing families parameterise: `grow_synthesis` (the resolutions above 4x4 with their toRGBs and the
fade-in, given the family's block and toRGB) and `GrowingDiscriminator` (given the family's layer types), with
its TF-layer form `ProgressiveDiscriminator` shared by PGGAN (``D_paper``) and StyleGAN1 (``D_basic``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.nn.discriminator import MinibatchStdLayer, discriminator_tail
from stylegan_jax.nn.resolution import Resolution, block_shape, log2_resolution, nf, nominal_resolution
from stylegan_jax.ops import bias_act, conv2d_resample, filter2d, setup_filter

#: The TF networks' activations: (name in ``ops.bias_act``, He gain applied to the weights).
ACTIVATIONS = {"lrelu": ("lrelu", float(np.sqrt(2))), "relu": ("relu", float(np.sqrt(2)))}
#: NVIDIA's default low-pass filter for StyleGAN1's resampling ("bilinear" up/down in the paper).
BLUR_FILTER = (1, 2, 1)


def grown_resolution(resolution: int | None, img_resolution: Resolution) -> int:
    """The resolution a growing network runs at: ``resolution`` (None = ``img_resolution``'s, the nominal one
    for W x H images: `nominal_resolution`), checked to be a power of two within [4, that]."""
    full = nominal_resolution(img_resolution)
    res = full if resolution is None else int(resolution)
    log2_resolution(res)
    if res > full:
        raise ValueError(f"resolution {res} is outside [4, {full}]")
    return res


def pixel_norm(x: jax.Array, eps: float = 1e-8, axis: int = -1) -> jax.Array:
    """PGGAN's pixel-wise feature normalisation: x / sqrt(mean(x^2 over ``axis``) + eps). Shape kept."""
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=axis, keepdims=True) + eps)


def instance_norm(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Instance normalisation of [N, H, W, C] over H, W (no affine part; StyleGAN1's AdaIN adds the style)."""
    x = x - jnp.mean(x, axis=(1, 2), keepdims=True)
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=(1, 2), keepdims=True) + eps)


def upscale2d(x: jax.Array, factor: int = 2) -> jax.Array:
    """Nearest-neighbour upsampling: [N, H, W, C] -> [N, H * factor, W * factor, C]."""
    if factor == 1:
        return x
    n, h, w, c = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, factor, w, factor, c))
    return x.reshape(n, h * factor, w * factor, c)


def downscale2d(x: jax.Array, factor: int = 2) -> jax.Array:
    """Box-filter (average-pool) downsampling: [N, H, W, C] -> [N, H / factor, W / factor, C]."""
    if factor == 1:
        return x
    n, h, w, c = x.shape
    return jnp.mean(x.reshape(n, h // factor, factor, w // factor, factor, c), axis=(2, 4))


def blur2d(x: jax.Array, blur_filter: Sequence[int] | None) -> jax.Array:
    """StyleGAN1's low-pass filter (normalised outer product of ``blur_filter``, zero padding, same size);
    the identity for None."""
    return x if not blur_filter else filter2d(x, setup_filter(blur_filter))


def as_grown(synthesize: Callable[[int | None, float | jax.Array], jax.Array], resolution: int | None,
             alpha: float | jax.Array, grown: tuple[int | None, float], img_resolution: Resolution,
             initializing: bool) -> jax.Array:
    """``synthesize(resolution, alpha)`` -> images, for a growing generator snapshotted mid-growth (its
    ``grown_resolution`` and ``grown_alpha`` fields: ``grown``). A call naming no ``resolution`` (the tools', the
    metrics') runs at the grown resolution and fade-in and enlarges the images to full size (nearest), as
    NVIDIA's G at its ``lod`` variable; a call naming one (training's), a fully grown network, or ``init``
    (which creates every resolution's layers), as asked."""
    if resolution is not None or grown[0] is None or initializing:
        return synthesize(resolution, alpha)
    images = synthesize(grown[0], grown[1])
    return upscale2d(images, nominal_resolution(img_resolution) // grown[0])


def grown_at_lod(lod: float, img_resolution: Resolution) -> dict[str, int | float]:
    """G's ``grown_resolution`` and ``grown_alpha`` (`as_grown`) for NVIDIA's level of detail ``lod`` (0: fully
    grown, none; lod 1.5 of a 16x16 network: 8x8 half faded in), as its TF generators' ``lod`` variable holds
    it. Raises ValueError for a lod outside [0, log2(resolution) - 2]."""
    full = nominal_resolution(img_resolution)
    if not 0 <= lod <= log2_resolution(full) - 2:
        raise ValueError(f"lod {lod} is outside [0, {log2_resolution(full) - 2}] for resolution {full}")
    if lod == 0:
        return {}
    steps = int(np.floor(lod))
    return {"grown_resolution": full >> steps, "grown_alpha": float(1 - (lod - steps))}


def is_one(alpha: float | jax.Array) -> bool:
    """True when ``alpha`` is the Python constant 1 (no fade-in: the blend's other branch is not built)."""
    return isinstance(alpha, int | float) and alpha == 1


def fade(new: jax.Array, old: jax.Array, alpha: float | jax.Array) -> jax.Array:
    """The fade-in blend alpha * new + (1 - alpha) * old (NVIDIA's lerp_clip(new, old, 1 - alpha); alpha is
    clipped to [0, 1] as there)."""
    alpha = jnp.clip(jnp.asarray(alpha, new.dtype), 0, 1)
    return new + (old - new) * (1 - alpha)


def he_init(gain: float, fan_in: int, use_wscale: bool, lrmul: float):
    """(initialiser, runtime coefficient) of NVIDIA's ``get_weight``: with equalised learning rate the weight
    is stored N(0, 1 / lrmul) and scaled by gain / sqrt(fan_in) * lrmul at run time."""
    he_std = gain / np.sqrt(fan_in)
    init_std, coef = (1 / lrmul, he_std * lrmul) if use_wscale else (he_std / lrmul, lrmul)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.normal(key, shape, dtype) * init_std

    return init, float(coef)


class WSDense(nn.Module):
    """TF-era dense layer: [N, in] -> [N, features]; y = act(x @ (W * coef).T + b * lrmul), no bias when
    ``bias`` is False. ``weight`` is [features, in]."""

    features: int
    gain: float = float(np.sqrt(2))
    activation: str = "linear"
    bias: bool = True
    use_wscale: bool = True
    lrmul: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init, coef = he_init(self.gain, x.shape[-1], self.use_wscale, self.lrmul)
        weight = self.param("weight", init, (self.features, x.shape[-1]))
        b = self.param("bias", nn.initializers.zeros, (self.features,)) * self.lrmul if self.bias else None
        return bias_act(x @ (weight * coef).T.astype(x.dtype), b, act=self.activation, gain=1.0)


class WSConv2d(nn.Module):
    """TF-era k x k convolution, 'SAME' zero padding: [N, H, W, in] -> [N, H / down, W / down, out_channels];
    y = act(boxdown(conv(blur(x), W * coef)) + b), NVIDIA's ``conv2d_downscale2d``: the activation comes after
    the box downsampling. ``blur_filter`` low-pass filters the input first (`blur2d`; StyleGAN1's blur before
    each downsampling). ``weight`` is [out, in, k, k]."""

    out_channels: int
    kernel_size: int
    gain: float = float(np.sqrt(2))
    activation: str = "linear"
    bias: bool = True
    use_wscale: bool = True
    down: int = 1
    blur_filter: Sequence[int] | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        init, coef = he_init(self.gain, x.shape[-1] * k * k, self.use_wscale, 1.0)
        weight = self.param("weight", init, (self.out_channels, x.shape[-1], k, k))
        x = conv2d_resample(blur2d(x, self.blur_filter), (weight * coef).astype(x.dtype), padding=k // 2)
        x = downscale2d(x, self.down)
        b = self.param("bias", nn.initializers.zeros, (self.out_channels,)) if self.bias else None
        return bias_act(x, b, act=self.activation, gain=1.0)


def grow_synthesis(x: jax.Array, block: Callable[[jax.Array, int], jax.Array],
                   torgb: Callable[[jax.Array, int], jax.Array], upsample: Callable[[jax.Array], jax.Array], *,
                   width: Callable[[int], int], img_resolution: Resolution, resolution: int | None,
                   alpha: float | jax.Array, initializing: bool) -> jax.Array:
    """The growing synthesis skeleton: the 4x4 features x [N, 4, 4, width(1)] -> images [N, r, r, C] at
    r = ``resolution`` (None: ``img_resolution``); ``width(stage)`` is the family's ``nf``. W x H networks
    (``img_resolution`` (H, W)) run the same stages on the canvases of `block_shape`.

    Called from the family's compact method, in whose module the layers are created: ``block(x, s)`` maps
    [N, 2**(s-1), 2**(s-1), width(s - 2)] to [N, 2**s, 2**s, width(s - 1)] for s = 3 .. log2(r),
    ``torgb(x, s)`` maps [N, 2**s, 2**s, width(s - 1)] to images [N, 2**s, 2**s, C], and ``upsample`` doubles
    an image for the fade-in alpha * torgb(x_r) + (1 - alpha) * upsample(torgb(x_{r/2})) (none when alpha is
    the constant 1). While ``initializing``, every resolution's torgb is created (on zeros), so that one set of
    variables serves every resolution.
    """
    log2_img = log2_resolution(nominal_resolution(img_resolution))
    res_log2 = log2_resolution(grown_resolution(resolution, img_resolution))
    if initializing:
        for s in range(2, log2_img):
            torgb(jnp.zeros((x.shape[0], *block_shape(img_resolution, 2**s), width(s - 1))), s)
    prev = x
    for s in range(3, res_log2 + 1):
        prev, x = x, block(x, s)
    img = torgb(x, res_log2)
    if res_log2 > 2 and not is_one(alpha):
        img = fade(img, upsample(torgb(prev, res_log2 - 1)), alpha)
    return img


def tf_torgb(x: jax.Array, s: int, *, img_channels: int, use_wscale: bool) -> jax.Array:
    """The TF generators' toRGB of resolution 2**s for `grow_synthesis` (bind the keywords with
    ``functools.partial``): the linear 1x1 `WSConv2d` ``torgb{2**s}`` (gain 1), [N, 2**s, 2**s, C_in] ->
    [N, 2**s, 2**s, img_channels]."""
    return WSConv2d(img_channels, 1, gain=1.0, use_wscale=use_wscale, name=f"torgb{2**s}")(x)


class DiscriminatorLayers(NamedTuple):
    """The layer types a `GrowingDiscriminator` is built of.

    ``conv(features, kernel_size, name=)`` and ``down(features, kernel_size, name=)``: activated convolutions
    [N, H, W, C] -> [N, H, W, features] and -> [N, H / 2, W / 2, features]; ``dense(features)`` and
    ``out(features)``: the hidden (activated) and output (linear) dense layers [N, F] -> [N, features],
    carrying their names.
    """

    conv: Callable[..., nn.Module]
    down: Callable[..., nn.Module]
    dense: Callable[..., nn.Module]
    out: Callable[..., nn.Module]


class GrowingDiscriminator(nn.Module):
    """The growing discriminator skeleton with linear fade-in; a subclass gives its layer types (`layers`).

    img [N, r, r, img_channels] (r = the current resolution, read from the shape; for W x H networks the canvas of
    `block_shape`), c [N, c_dim] -> logits [N, 1]. ``alpha`` fades the block of resolution r in: alpha *
    block_r(fromrgb_r(img)) + (1 - alpha) * fromrgb_{r/2}(box-downsampled img). Parameters: ``fromrgb{res}`` (1x1
    conv), ``b{res}_conv0``, ``b{res}_conv1`` (halving the resolution), then minibatch stddev (``mbstd_group_size``
    > 1), ``b4_conv``, and the dense and output layers (NVIDIA's names, given by `layers`). Widths: NVIDIA's ``nf``
    (stage log2(res) - 1 at resolution res, stage 0 for the dense layer). With labels the output layer gives one
    score per class and the score of the given class is kept (Mescheder et al., as ``D_basic`` does).
    """

    c_dim: int
    img_resolution: Resolution
    img_channels: int
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_min: int = 1
    fmap_max: int = 512
    mbstd_group_size: int = 4
    mbstd_num_features: int = 1

    def nf(self, stage: int) -> int:
        """Channels of a stage (`stylegan_jax.nn.resolution.nf`)."""
        return nf(stage, self.fmap_base, self.fmap_decay, self.fmap_max, self.fmap_min)

    def layers(self) -> DiscriminatorLayers:
        """The family's layer types."""
        raise NotImplementedError

    @nn.compact
    def __call__(self, img: jax.Array, c: jax.Array | None, alpha: float | jax.Array = 1.0) -> jax.Array:
        log2_img = log2_resolution(nominal_resolution(self.img_resolution))
        base_h = block_shape(self.img_resolution, 4)[0]
        res = img.shape[1] * 4 // base_h if img.ndim == 4 else 0  # the nominal resolution of the image's canvas
        if img.ndim != 4 or res < 4 or (*block_shape(self.img_resolution, res), self.img_channels) != img.shape[1:]:
            raise ValueError(f"D expects images [N, r, r, {self.img_channels}] (a W x H network's canvas of r), "
                             f"got {img.shape}")
        res_log2 = log2_resolution(grown_resolution(res, self.img_resolution))
        layer = self.layers()

        def fromrgb(image: jax.Array, s: int) -> jax.Array:
            return layer.conv(self.nf(s - 1), 1, name=f"fromrgb{2**s}")(image)

        img = img.astype(jnp.float32)
        if self.is_initializing():  # create every resolution's fromrgb
            for s in range(2, log2_img):
                fromrgb(jnp.zeros((1, *block_shape(self.img_resolution, 2**s), self.img_channels)), s)
        x = fromrgb(img, res_log2)
        for s in range(res_log2, 2, -1):
            x = layer.conv(self.nf(s - 1), 3, name=f"b{2**s}_conv0")(x)
            x = layer.down(self.nf(s - 2), 3, name=f"b{2**s}_conv1")(x)
            if s == res_log2 and not is_one(alpha):
                x = fade(x, fromrgb(downscale2d(img), s - 1), alpha)
        mbstd = None
        if self.mbstd_group_size > 1:
            mbstd = MinibatchStdLayer(self.mbstd_group_size, self.mbstd_num_features, name="mbstd")
        x = discriminator_tail(x, mbstd, layer.conv(self.nf(1), 3, name="b4_conv"), layer.dense(self.nf(0)),
                               layer.out(max(self.c_dim, 1)))
        if self.c_dim:
            x = jnp.sum(x * c.astype(x.dtype), axis=1, keepdims=True)
        return x


class ProgressiveDiscriminator(GrowingDiscriminator):
    """PGGAN's / StyleGAN1's discriminator (NVIDIA's ``D_paper`` / ``D_basic``): the `GrowingDiscriminator` of
    the TF layers, `WSConv2d` and `WSDense` (``b4_dense0``, ``b4_dense1``).

    ``blur_filter`` blurs before each downsampling conv (StyleGAN1). Conv + box down (activation after the
    downsampling) is the function of NVIDIA's fused stride-2 conv (``fused_scale``, PGGAN's default) and of
    StyleGAN1's separate ops.
    """

    use_wscale: bool = True
    blur_filter: Sequence[int] | None = None
    nonlinearity: str = "lrelu"

    def layers(self) -> DiscriminatorLayers:
        act, gain = ACTIVATIONS[self.nonlinearity]
        conv = partial(WSConv2d, gain=gain, activation=act, use_wscale=self.use_wscale)
        return DiscriminatorLayers(
            conv=conv, down=partial(conv, down=2, blur_filter=self.blur_filter),
            dense=partial(WSDense, gain=gain, activation=act, use_wscale=self.use_wscale, name="b4_dense0"),
            out=partial(WSDense, gain=1.0, use_wscale=self.use_wscale, name="b4_dense1"))


def num_layers_at(resolution: Resolution) -> int:
    """The ws a growing style-based synthesis reads up to ``resolution`` (a W x H one's nominal resolution):
    two per resolution from 4x4."""
    return 2 * log2_resolution(nominal_resolution(resolution)) - 2


class GrowingStyleGenerator(nn.Module):
    """The public methods shared by the growing style-based generators (StyleGAN1, the StyleGAN2 paper's
    revised networks): a subclass's ``setup`` defines ``self.mapping`` (z, c -> ws) and ``self.synthesis``
    (ws -> images at a growing ``resolution`` with fade-in ``alpha``)."""

    def map(self, z: jax.Array, c: jax.Array | None, truncation_psi: float | jax.Array = 1.0,
            truncation_cutoff: int | None = None, update_emas: bool = False) -> jax.Array:
        """z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim]."""
        return self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas)

    def synthesize(self, ws: jax.Array, noise_mode: str = "random", force_fp32: bool = False, *,
                   resolution: int | None = None, alpha: float | jax.Array = 1.0) -> jax.Array:
        """ws [N, num_ws, w_dim] -> images [N, r, r, img_channels] (`as_grown`: the subclass's
        ``grown_resolution``, ``grown_alpha``). ``force_fp32`` is accepted for the call of StyleGAN2's
        ``synthesize`` (these networks compute in float32 throughout)."""
        return as_grown(lambda r, a: self.synthesis(ws, noise_mode, r, a), resolution, alpha,
                        (self.grown_resolution, self.grown_alpha), self.img_resolution, self.is_initializing())

    def __call__(self, z: jax.Array, c: jax.Array | None, *, resolution: int | None = None,
                 alpha: float | jax.Array = 1.0, truncation_psi: float | jax.Array = 1.0,
                 truncation_cutoff: int | None = None, noise_mode: str = "random",
                 update_emas: bool = False) -> jax.Array:
        ws = self.map(z, c, truncation_psi, truncation_cutoff, update_emas)
        return self.synthesize(ws, noise_mode, resolution=resolution, alpha=alpha)
