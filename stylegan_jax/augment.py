"""ADA's augmentation pipeline ("Training Generative Adversarial Networks with Limited Data", Karras et al. 2020):
NVIDIA's stylegan2-ada-pytorch ``AugmentPipe`` as a pure, jittable function of (images, key, p).

    pipe = AugmentPipe.preset("bgc")                  # or AugmentPipe(xflip=1, rotate90=1, ...)
    images = pipe(images, key, p)                     # [N, H, W, C] float, C in {1, 3}; p a (traced) scalar

The transforms and their order are NVIDIA's: pixel blitting (x-flip, 90-degree rotations, integer translation)
and general geometry (isotropic scaling, pre-rotation, anisotropic scaling, post-rotation, fractional
translation) composed into one inverse 3x3 matrix per image and executed once (reflect padding, 2x upsampling
with the sym6 wavelet, bilinear sampling with zero padding, sym6 downsampling); colour (brightness, contrast,
luma flip, hue rotation, saturation) as one 4x4 matrix per image; the sym2 4-band image-space filter;
additive Gaussian noise; cutout. Each transform is drawn per image with probability ``multiplier * p``.

Sampling and execution are separate steps, ``sample_params`` then ``apply``: the parameters are a dict of
per-image arrays named after the transforms, so that tests and tools can read or replace them.

Where NVIDIA's computation depends on the data, it is reproduced exactly under jit:

- NVIDIA pads the images by a margin computed from the transformed corners (the maximum over the batch,
  clamped to W-1 / H-1) and samples with zero padding beyond it. Here the images are reflect-padded by a
  static bound of that margin (W-1 / H-1, or less when only bounded transforms are enabled), and the pixels
  outside the margin computed from the data are masked to zero, before and after upsampling, so that every
  output pixel equals NVIDIA's (also near the edges, where the sampling reaches the zero border).
  Cost: the padded images are (3H - 2) x (3W - 2), (6H - 4) x (6W - 4) once upsampled, as NVIDIA's at its
  largest margin, which the batch reaches often at high p. One image's output depends on the others' draws
  only through NVIDIA's batch-wide margin, i.e. only where its samples reach that border.
- Random draws use JAX's generator, so outputs differ from NVIDIA's draw by draw; the distributions, the
  selection logic and the draw order are NVIDIA's (``Draws`` lets a test replay NVIDIA's numbers).

The pipe is affine in the images, so gradients of any order (R1 through the pipe) are exact.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.ops.filters import setup_filter
from stylegan_jax.ops.upfirdn2d import adjoint_padding, upfirdn2d

#: Low-pass decomposition filters of the two wavelets the pipe uses (standard published coefficients).
WAVELETS = {
    "sym2": [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025],
    "sym6": [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
             0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
             -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148],
}

#: NVIDIA's ``--augpipe`` presets (stylegan2-ada-pytorch ``train.py``): transform -> probability multiplier.
AUGPIPE_PRESETS: dict[str, dict[str, float]] = {
    "blit": dict(xflip=1, rotate90=1, xint=1),
    "geom": dict(scale=1, rotate=1, aniso=1, xfrac=1),
    "color": dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1),
    "filter": dict(imgfilter=1),
    "noise": dict(noise=1),
    "cutout": dict(cutout=1),
    "bg": dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1),
    "bgc": dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
                brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1),
    "bgcf": dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
                 brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1, imgfilter=1),
    "bgcfn": dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
                  brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1, imgfilter=1, noise=1),
    "bgcfnc": dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
                   brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1, imgfilter=1, noise=1, cutout=1),
}

_HIGHEST = jax.lax.Precision.HIGHEST  # exact float32 matrix products on every backend (TPU defaults to bf16)

#: sym6 as a separable resampling filter (12 taps), and the padding it needs at the input resolution.
_HZ_GEOM = setup_filter(WAVELETS["sym6"])
_HZ_PAD = _HZ_GEOM.shape[0] // 4

#: Expected power of the four frequency bands of natural images (1/f spectrum), lowest band first.
_BAND_POWER = np.array([10, 1, 1, 1], np.float32) / 13


def _filter_bank(num_bands: int = 4) -> np.ndarray:
    """The sym2 filter bank [num_bands, 43]: row b is the zero-phase band-pass of octave band b (0 = lowest).

    Built as NVIDIA's: the power-complementary half-band pair lo2 = H(z)H(1/z)/2 and hi2 = H(-z)H(-1/z)/2 of
    sym2; each step stretches the bank by 2 (one octave down), low-passes it with lo2 and adds the new top
    band hi2 in the centre. The rows sum to a unit impulse, so unit gains leave images unchanged.
    """
    lo = np.asarray(WAVELETS["sym2"])
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2 = np.convolve(lo, lo[::-1]) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bank = np.eye(num_bands, 1)
    for band in range(1, num_bands):
        stretched = np.zeros((num_bands, 2 * bank.shape[1] - 1))
        stretched[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in stretched])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start : start + hi2.size] += hi2
    return bank.astype(np.float32)


_FILTER_BANK = _filter_bank()


class Draws(Protocol):
    """A source of random numbers, asked in NVIDIA's order: each call returns float32 of ``shape``."""

    def uniform(self, shape: tuple[int, ...]) -> jax.Array:
        """Uniform on [0, 1)."""

    def normal(self, shape: tuple[int, ...]) -> jax.Array:
        """Standard normal."""


class KeyDraws:
    """``Draws`` from one JAX key: the i-th request uses ``fold_in(key, i)`` (the count is static)."""

    def __init__(self, key: jax.Array):
        self._key = key
        self._count = 0

    def _next(self) -> jax.Array:
        self._count += 1
        return jax.random.fold_in(self._key, self._count - 1)

    def uniform(self, shape: tuple[int, ...]) -> jax.Array:
        return jax.random.uniform(self._next(), shape, jnp.float32)

    def normal(self, shape: tuple[int, ...]) -> jax.Array:
        return jax.random.normal(self._next(), shape, jnp.float32)


# ------------------------------------------------------------------------------------------------------------
# Batched homogeneous matrices: every entry is a scalar or an [N] array; the result is [N, k, k] float32.

def _matrix(rows: list[list[Any]], n: int) -> jax.Array:
    return jnp.stack([jnp.stack([jnp.broadcast_to(jnp.asarray(e, jnp.float32), (n,)) for e in row], -1)
                      for row in rows], -2)


def _translate2d(tx: Any, ty: Any, n: int) -> jax.Array:
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], n)


def _scale2d(sx: Any, sy: Any, n: int) -> jax.Array:
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], n)


def _rotate2d(theta: jax.Array, n: int) -> jax.Array:
    c, s = jnp.cos(theta), jnp.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], n)


def _translate3d(t: jax.Array, n: int) -> jax.Array:
    return _matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], n)


def _scale3d(s: jax.Array, n: int) -> jax.Array:
    return _matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], n)


def _rotate3d_luma(theta: jax.Array, n: int) -> jax.Array:
    """Rotation by ``theta`` about the luma axis (1, 1, 1)/sqrt(3) (Rodrigues: cI + sK + (1 - c)vv^T)."""
    v = 1 / math.sqrt(3)
    c, s = jnp.cos(theta), jnp.sin(theta)
    a, b = v * v * (1 - c), v * s  # the outer-product term and the cross-product term
    return _matrix([[a + c, a - b, a + b, 0], [a + b, a + c, a - b, 0], [a - b, a + b, a + c, 0], [0, 0, 0, 1]], n)


def _mm(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b, precision=_HIGHEST)


_GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate_pre", "aniso", "rotate_post", "xfrac")
_COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")

_LUMA = np.array([1, 1, 1, 0], np.float32) / np.sqrt(3)
_LUMA_OUTER = np.outer(_LUMA, _LUMA)  # projection onto the luma axis


def _nhwc(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    if len(shape) != 4:
        raise ValueError(f"AugmentPipe expects NHWC images, got shape {tuple(shape)}")
    return tuple(shape)  # type: ignore[return-value]


def _gate(draws: Draws, shape: tuple[int, ...], prob: jax.Array, value: jax.Array, identity: float) -> jax.Array:
    """NVIDIA's selection: ``value`` where a fresh uniform draw falls below ``prob``, else ``identity``."""
    return jnp.where(draws.uniform(shape) < prob, value, jnp.asarray(identity, jnp.float32))


# ------------------------------------------------------------------------------------------------------------
# Execution of the transforms.

def _geometric_margin(G_inv: jax.Array, height: int, width: int) -> tuple[jax.Array, jax.Array]:
    """NVIDIA's padding (x0, y0) and (x1, y1), int32: how far the transformed image corners reach past the
    image (the maximum over the batch) plus twice the filter's padding, clamped to [0, W-1] x [0, H-1]."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    corners = jnp.array([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], jnp.float32)
    reach = jnp.einsum("nij,kj->nki", G_inv[:, :2, :], corners, precision=_HIGHEST)  # [N, 4, (x, y)]
    base = jnp.array([2 * _HZ_PAD - cx, 2 * _HZ_PAD - cy], jnp.float32)
    limit = jnp.array([width - 1, height - 1], jnp.float32)

    def clamp(m: jax.Array) -> jax.Array:
        return jnp.ceil(jnp.minimum(jnp.maximum(m + base, 0), limit)).astype(jnp.int32)

    return clamp(jnp.max(-reach, axis=(0, 1))), clamp(jnp.max(reach, axis=(0, 1)))


def _bilinear(images: jax.Array, ix: jax.Array, iy: jax.Array, lo: jax.Array, hi: jax.Array) -> jax.Array:
    """Bilinear samples of ``images`` [N, H, W, C] at pixel coordinates ``ix``, ``iy`` [N, S] (pixel i's centre
    at i), with zeros outside the window lo = (x0, y0) <= (x, y) < hi = (x1, y1): torch's ``grid_sample``
    (bilinear, zero padding) after its align_corners=False unnormalisation. Returns [N, S, C]."""
    n, h, w, c = images.shape
    flat = images.reshape(n, h * w, c)
    x0, y0 = jnp.floor(ix), jnp.floor(iy)
    fx, fy = ix - x0, iy - y0
    x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
    out = 0.0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            x, y = x0 + dx, y0 + dy
            inside = (x >= lo[0]) & (x < hi[0]) & (y >= lo[1]) & (y < hi[1])
            index = jnp.clip(y, 0, h - 1) * w + jnp.clip(x, 0, w - 1)
            taps = jax.vmap(lambda f, i: f[i])(flat, index)
            out = out + taps * jnp.where(inside, wx * wy, 0.0)[..., None]
    return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _resample(x: jax.Array, spec: tuple[int, int, tuple[int, int, int, int], bool, float]) -> jax.Array:
    """``upfirdn2d(x, sym6, up, down, padding, flip_filter, gain)`` for spec = (up, down, padding, flip_filter,
    gain), one factor for both axes. Its gradient is the adjoint resampling (up and down swapped, the filter
    flipped), as NVIDIA's CUDA op computes it, at the cost of the forward pass; JAX's transpose of the
    polyphase slices (pads and adds of the full image per tap) was 5x slower here."""
    up, down, padding, flip, gain = spec
    return upfirdn2d(x, _HZ_GEOM, up=up, down=down, padding=padding, flip_filter=flip, gain=gain)


def _resample_fwd(x: jax.Array, spec: tuple) -> tuple[jax.Array, tuple[int, int]]:
    return _resample(x, spec), x.shape[1:3]


def _resample_bwd(spec: tuple, in_hw: tuple[int, int], grad: jax.Array) -> tuple[jax.Array]:
    up, down, padding, flip, gain = spec
    pad = adjoint_padding(_HZ_GEOM, in_hw, grad.shape[1:3], up, down, padding)
    return (_resample(grad, (down, up, pad, not flip, gain)),)  # differentiable again at the same cost


_resample.defvjp(_resample_fwd, _resample_bwd)


def _warp(images: jax.Array, G_inv: jax.Array, static_margin: tuple[int, int]) -> jax.Array:
    """Execute the inverse transforms ``G_inv`` [N, 3, 3] (output pixel -> input pixel, both relative to the
    image centre, y down) on ``images`` [N, H, W, C] as NVIDIA does, with the data-dependent padding inside a
    static reflect padding of ``static_margin`` = (mx, my) >= NVIDIA's margin for every draw."""
    n, h, w, c = images.shape
    mx, my = static_margin
    cx, cy = (w - 1) / 2, (h - 1) / 2
    m0, m1 = _geometric_margin(G_inv, h, w)
    lo = jnp.array([mx, my], jnp.int32) - m0  # NVIDIA's padded image, within the static one
    hi = jnp.array([mx + w, my + h], jnp.int32) + m1

    padded = jnp.pad(images, ((0, 0), (my, my), (mx, mx), (0, 0)), mode="reflect")
    cols, rows = jnp.arange(w + 2 * mx), jnp.arange(h + 2 * my)
    keep = ((rows >= lo[1]) & (rows < hi[1]))[:, None] & ((cols >= lo[0]) & (cols < hi[0]))[None, :]
    padded = padded * keep[None, :, :, None].astype(images.dtype)
    taps = _HZ_GEOM.shape[0]  # upsample2d's padding and gain:
    upsampled = _resample(padded, (2, 1, (taps // 2, taps // 2 - 1) * 2, False, 4.0))  # pixel i of `padded` at 2i

    # The output on a 2x grid extended by the filter's padding: sample k sits at output pixel k/2 - pad.
    ox = jnp.arange(2 * (w + 2 * _HZ_PAD), dtype=jnp.float32) / 2 - _HZ_PAD - cx
    oy = jnp.arange(2 * (h + 2 * _HZ_PAD), dtype=jnp.float32) / 2 - _HZ_PAD - cy
    oy, ox = (a.reshape(1, -1) for a in jnp.meshgrid(oy, ox, indexing="ij"))
    ix = G_inv[:, 0, 0:1] * ox + G_inv[:, 0, 1:2] * oy + G_inv[:, 0, 2:3]
    iy = G_inv[:, 1, 0:1] * ox + G_inv[:, 1, 1:2] * oy + G_inv[:, 1, 2:3]
    samples = _bilinear(upsampled, 2 * (ix + cx + mx), 2 * (iy + cy + my), 2 * lo, 2 * hi)
    samples = samples.reshape(n, 2 * (h + 2 * _HZ_PAD), 2 * (w + 2 * _HZ_PAD), c)
    crop = (taps - 1) // 2 - 2 * _HZ_PAD  # downsample2d's padding, less NVIDIA's crop of 2 * pad
    return _resample(samples, (1, 2, (crop, crop) * 2, True, 1.0))


def _recolor(images: jax.Array, C: jax.Array) -> jax.Array:
    """Apply the colour matrices C [N, 4, 4] to RGB, or their mean over R, G, B rows to grayscale (NVIDIA's)."""
    if images.shape[-1] == 3:  # written out: as a dot, XLA:CPU's dot fusion splits the warp's fusions (2x slower)
        C = C[:, None, None]
        r, g, b = images[..., 0], images[..., 1], images[..., 2]
        return jnp.stack([C[..., i, 0] * r + C[..., i, 1] * g + C[..., i, 2] * b + C[..., i, 3] for i in range(3)], -1)
    if images.shape[-1] == 1:
        gray = jnp.mean(C[:, :3, :], axis=1)  # [N, 4]
        return images * jnp.sum(gray[:, :3], axis=1)[:, None, None, None] + gray[:, 3][:, None, None, None]
    raise ValueError(f"colour augmentation needs RGB (3 channels) or L (1 channel) images, got {images.shape[-1]}")


def _filter_matrices(kernels: jax.Array, size: int) -> jax.Array:
    """[N, size, size] matrices M with (M x)[o] = sum_t kernels[t] x[reflect(o + t - pad)]: the correlation of a
    signal of ``size`` samples with per-image kernels [N, taps] over the signal reflect-padded by pad = taps // 2
    (torch's reflect: no repeated edge sample)."""
    n, taps = kernels.shape
    out = np.arange(size)[:, None]
    src = np.abs(out + np.arange(taps)[None, :] - taps // 2)
    src = np.where(src > size - 1, 2 * (size - 1) - src, src)
    flat = jnp.zeros((n, size * size), kernels.dtype)
    flat = flat.at[:, (out * size + src).ravel()].add(jnp.tile(kernels, (1, size)))  # entries (o, t), row-major
    return flat.reshape(n, size, size)


def _band_filter(images: jax.Array, gains: jax.Array) -> jax.Array:
    """Filter each image with the separable filter ``gains @ bank`` (per-image band gains [N, 4]) along W and H,
    the images reflect-padded by half the filter (NVIDIA's; needs H, W > 21). Each axis is one batched matrix
    product with the padding folded in: H + W multiply-adds per pixel, and its gradients are matrix products too
    (shifted slices compile and differentiate far slower under XLA)."""
    n, h, w, c = images.shape
    pad = _FILTER_BANK.shape[1] // 2
    if min(h, w) <= pad:
        raise ValueError(f"image-space filtering reflect-pads by {pad} pixels: images must be larger, got {h}x{w}")
    kernels = jnp.matmul(gains, jnp.asarray(_FILTER_BANK), precision=_HIGHEST)  # [N, taps]
    x = jnp.einsum("nwv,nhvc->nhwc", _filter_matrices(kernels, w), images, precision=_HIGHEST)
    return jnp.einsum("nhk,nkwc->nhwc", _filter_matrices(kernels, h), x, precision=_HIGHEST)


# ------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AugmentPipe:
    """NVIDIA's ``AugmentPipe``: same keyword arguments, defaults and meaning (all transforms off by default).

    Each transform's value is its probability multiplier (the probability is ``multiplier * p``); the
    ``*_max`` / ``*_std`` values set the strength. Images are [N, H, W, C] float, C = 1 or 3 for the colour
    transforms, H, W > 21 for ``imgfilter``. No parameters: the pipe is a hashable, static value.
    """

    xflip: float = 0            # x-flip
    rotate90: float = 0         # rotations by multiples of 90 degrees
    xint: float = 0             # integer translation
    xint_max: float = 0.125     # range of integer translation, relative to the image size
    scale: float = 0            # isotropic scaling
    rotate: float = 0           # arbitrary rotation (before and after anisotropic scaling)
    aniso: float = 0            # anisotropic scaling
    xfrac: float = 0            # fractional translation
    scale_std: float = 0.2      # log2 standard deviation of isotropic scaling
    rotate_max: float = 1       # range of arbitrary rotation, 1 = full circle
    aniso_std: float = 0.2      # log2 standard deviation of anisotropic scaling
    xfrac_std: float = 0.125    # standard deviation of fractional translation, relative to the image size
    brightness: float = 0       # brightness (added to R, G, B)
    contrast: float = 0         # contrast (R, G, B scaled)
    lumaflip: float = 0         # luma flip (reflection through the grey plane)
    hue: float = 0              # hue rotation about the luma axis
    saturation: float = 0       # saturation (scaling away from the luma axis)
    brightness_std: float = 0.2  # standard deviation of brightness
    contrast_std: float = 0.5   # log2 standard deviation of contrast
    hue_max: float = 1          # range of hue rotation, 1 = full circle
    saturation_std: float = 1   # log2 standard deviation of saturation
    imgfilter: float = 0        # image-space filtering
    imgfilter_bands: tuple[float, ...] = (1, 1, 1, 1)  # multipliers of the four frequency bands, lowest first
    imgfilter_std: float = 1    # log2 standard deviation of a band's amplification
    noise: float = 0            # additive Gaussian noise
    cutout: float = 0           # cutout (a zeroed rectangle)
    noise_std: float = 0.1      # standard deviation of the noise's standard deviation (half-normal)
    cutout_size: float = 0.5    # size of the cutout square, relative to the image size

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            value = tuple(float(v) for v in value) if field.name == "imgfilter_bands" else float(value)
            object.__setattr__(self, field.name, value)
        if len(self.imgfilter_bands) != _FILTER_BANK.shape[0]:
            raise ValueError(f"imgfilter_bands needs {_FILTER_BANK.shape[0]} values, got {self.imgfilter_bands}")

    @classmethod
    def preset(cls, name: str, **overrides: float) -> AugmentPipe:
        """One of NVIDIA's ``--augpipe`` presets (``AUGPIPE_PRESETS``), with optional keyword overrides."""
        if name not in AUGPIPE_PRESETS:
            raise ValueError(f"unknown augmentation preset {name!r}; choose from {', '.join(AUGPIPE_PRESETS)}")
        return cls(**{**AUGPIPE_PRESETS[name], **overrides})

    def __call__(self, images: jax.Array, key: jax.Array, p: float | jax.Array,
                 debug_percentile: float | None = None) -> jax.Array:
        """Augment ``images`` [N, H, W, C] (float, any range; [-1, 1] in this package) with overall probability
        multiplier ``p`` >= 0 (traced or not: changing it never recompiles; ADA's p may pass 1, where a
        transform whose multiplier times p is 1 or more always applies, as NVIDIA's).

        ``debug_percentile`` in [0, 1] is NVIDIA's deterministic mode: every transform is applied, every
        random value replaced by that percentile of its distribution (the post-rotation by 0); the noise
        pattern and nothing else stays random. Returns float32 images of the same shape.
        """
        return self.apply(images, self.sample_params(KeyDraws(key), images.shape, p, debug_percentile))

    def sample_params(self, draws: Draws, shape: tuple[int, ...], p: float | jax.Array,
                      debug_percentile: float | None = None) -> dict[str, jax.Array]:
        """Draw the per-image parameters of the enabled transforms for images of ``shape`` [N, H, W, C].

        Returns float32 arrays keyed by transform, each already set to its identity value where the
        transform was not selected: ``xflip`` [N] in {0, 1}; ``rotate90`` [N] quarter turns in {0..3};
        ``xint`` [N, 2] (x, y) translation relative to (W, H), rounded to pixels when applied; ``scale``,
        ``aniso`` [N] factors; ``rotate_pre``, ``rotate_post`` [N] radians; ``xfrac`` [N, 2] translation
        relative to (W, H); ``brightness`` [N] offset; ``contrast`` [N] factor; ``lumaflip`` [N] in {0, 1};
        ``hue`` [N] radians and ``saturation`` [N] factor (RGB only); ``imgfilter`` [N, 4] band gains before
        power normalisation; ``noise_sigma`` [N] and ``noise`` [N, H, W, C] standard normal;
        ``cutout_size`` [N] (0 = none) and ``cutout_center`` [N, 2] (x, y) relative to (W, H).
        Values are asked from ``draws`` in NVIDIA's order and shapes' sizes.
        """
        n, h, w, c = _nhwc(shape)
        p = jnp.asarray(p, jnp.float32)
        debug = debug_percentile is not None
        pct = jnp.asarray(debug_percentile if debug else 0.5, jnp.float32)  # (0.5: unused outside debug mode)
        z = jax.scipy.special.erfinv(pct * 2 - 1)  # the percentile as a standard normal value (debug mode)
        params: dict[str, jax.Array] = {}

        def pick(name: str, value: jax.Array, prob: jax.Array, identity: float, debug_value: Any,
                 gate_shape: tuple[int, ...] = (n,)) -> None:
            value = _gate(draws, gate_shape, prob, value, identity)
            params[name] = jnp.broadcast_to(jnp.asarray(debug_value, jnp.float32), value.shape) if debug else value

        # Pixel blitting.
        if self.xflip > 0:
            pick("xflip", jnp.floor(draws.uniform((n,)) * 2), self.xflip * p, 0, jnp.floor(pct * 2))
        if self.rotate90 > 0:
            pick("rotate90", jnp.floor(draws.uniform((n,)) * 4), self.rotate90 * p, 0, jnp.floor(pct * 4))
        if self.xint > 0:
            pick("xint", (draws.uniform((n, 2)) * 2 - 1) * self.xint_max, self.xint * p, 0,
                 (pct * 2 - 1) * self.xint_max, gate_shape=(n, 1))

        # General geometric transformations; the two rotations together happen with probability rotate * p.
        if self.scale > 0:
            pick("scale", jnp.exp2(draws.normal((n,)) * self.scale_std), self.scale * p, 1,
                 jnp.exp2(z * self.scale_std))
        p_rot = 1 - jnp.sqrt(jnp.clip(1 - self.rotate * p, 0, 1))
        if self.rotate > 0:
            pick("rotate_pre", (draws.uniform((n,)) * 2 - 1) * np.pi * self.rotate_max, p_rot, 0,
                 (pct * 2 - 1) * np.pi * self.rotate_max)
        if self.aniso > 0:
            pick("aniso", jnp.exp2(draws.normal((n,)) * self.aniso_std), self.aniso * p, 1,
                 jnp.exp2(z * self.aniso_std))
        if self.rotate > 0:
            pick("rotate_post", (draws.uniform((n,)) * 2 - 1) * np.pi * self.rotate_max, p_rot, 0, 0)
        if self.xfrac > 0:
            pick("xfrac", draws.normal((n, 2)) * self.xfrac_std, self.xfrac * p, 0, z * self.xfrac_std,
                 gate_shape=(n, 1))

        # Colour transformations (hue and saturation need colour).
        if self.brightness > 0:
            pick("brightness", draws.normal((n,)) * self.brightness_std, self.brightness * p, 0,
                 z * self.brightness_std)
        if self.contrast > 0:
            pick("contrast", jnp.exp2(draws.normal((n,)) * self.contrast_std), self.contrast * p, 1,
                 jnp.exp2(z * self.contrast_std))
        if self.lumaflip > 0:
            pick("lumaflip", jnp.floor(draws.uniform((n,)) * 2), self.lumaflip * p, 0, jnp.floor(pct * 2))
        if self.hue > 0 and c > 1:
            pick("hue", (draws.uniform((n,)) * 2 - 1) * np.pi * self.hue_max, self.hue * p, 0,
                 (pct * 2 - 1) * np.pi * self.hue_max)
        if self.saturation > 0 and c > 1:
            pick("saturation", jnp.exp2(draws.normal((n,)) * self.saturation_std), self.saturation * p, 1,
                 jnp.exp2(z * self.saturation_std))

        # Image-space filtering: each band's gain drawn separately.
        if self.imgfilter > 0:
            gains = []
            for band_strength in self.imgfilter_bands:
                gain = _gate(draws, (n,), self.imgfilter * p * band_strength,
                             jnp.exp2(draws.normal((n,)) * self.imgfilter_std), 1)
                if debug:
                    gain = jnp.full((n,), jnp.exp2(z * self.imgfilter_std) if band_strength > 0 else 1.0)
                gains.append(gain)
            params["imgfilter"] = jnp.stack(gains, axis=1)

        # Image-space corruptions.
        if self.noise > 0:
            pick("noise_sigma", jnp.abs(draws.normal((n,))) * self.noise_std, self.noise * p, 0,
                 jax.scipy.special.erfinv(pct) * self.noise_std)
            params["noise"] = draws.normal((n, h, w, c))
        if self.cutout > 0:
            pick("cutout_size", jnp.full((n,), self.cutout_size, jnp.float32), self.cutout * p, 0, self.cutout_size)
            center = draws.uniform((n, 2))
            params["cutout_center"] = jnp.full((n, 2), pct) if debug else center
        return params

    @staticmethod
    def geometric_matrix(params: dict[str, jax.Array], height: int, width: int) -> jax.Array | None:
        """The composed inverse transform [N, 3, 3] (output pixel -> input pixel, in pixels relative to the
        image centre, x right, y down), or None when no geometric transform is enabled."""
        present = [k for k in _GEOMETRIC if k in params]
        if not present:
            return None
        n = params[present[0]].shape[0]
        G = jnp.broadcast_to(jnp.eye(3, dtype=jnp.float32), (n, 3, 3))
        if "xflip" in params:
            G = _mm(G, _scale2d(1 / (1 - 2 * params["xflip"]), 1, n))
        if "rotate90" in params:
            G = _mm(G, _rotate2d(np.pi / 2 * params["rotate90"], n))
        if "xint" in params:
            t = params["xint"]
            G = _mm(G, _translate2d(-jnp.round(t[:, 0] * width), -jnp.round(t[:, 1] * height), n))
        if "scale" in params:
            G = _mm(G, _scale2d(1 / params["scale"], 1 / params["scale"], n))
        if "rotate_pre" in params:
            G = _mm(G, _rotate2d(params["rotate_pre"], n))
        if "aniso" in params:
            G = _mm(G, _scale2d(1 / params["aniso"], params["aniso"], n))
        if "rotate_post" in params:
            G = _mm(G, _rotate2d(params["rotate_post"], n))
        if "xfrac" in params:
            t = params["xfrac"]
            G = _mm(G, _translate2d(-t[:, 0] * width, -t[:, 1] * height, n))
        return G

    @staticmethod
    def color_matrix(params: dict[str, jax.Array]) -> jax.Array | None:
        """The composed colour transform [N, 4, 4] acting on (R, G, B, 1), or None when ``params`` hold no colour
        transform (none enabled, or only hue and saturation on grayscale images: NVIDIA then skips the step)."""
        present = [k for k in _COLOR if k in params]
        if not present:
            return None
        n = params[present[0]].shape[0]
        C = jnp.broadcast_to(jnp.eye(4, dtype=jnp.float32), (n, 4, 4))
        if "brightness" in params:
            C = _mm(_translate3d(params["brightness"], n), C)
        if "contrast" in params:
            C = _mm(_scale3d(params["contrast"], n), C)
        if "lumaflip" in params:
            C = _mm(jnp.eye(4) - 2 * _LUMA_OUTER * params["lumaflip"][:, None, None], C)
        if "hue" in params:
            C = _mm(_rotate3d_luma(params["hue"], n), C)
        if "saturation" in params:
            C = _mm(_LUMA_OUTER + (np.eye(4) - _LUMA_OUTER) * params["saturation"][:, None, None], C)
        return C

    def apply(self, images: jax.Array, params: dict[str, jax.Array]) -> jax.Array:
        """Execute the transforms given by ``params`` (from ``sample_params``) on ``images`` [N, H, W, C]:
        geometry, colour, filtering, noise, cutout, in that order. Returns float32 images of the same shape."""
        n, h, w, c = _nhwc(images.shape)
        x = images.astype(jnp.float32)
        G = self.geometric_matrix(params, h, w)
        if G is not None:
            x = _warp(x, G, self._static_margin(h, w))
        C = self.color_matrix(params)
        if C is not None:
            x = _recolor(x, C)
        if "imgfilter" in params:
            x = _band_filter(x, self._band_gains(params["imgfilter"]))
        if "noise" in params:
            x = x + params["noise"] * params["noise_sigma"][:, None, None, None]
        if "cutout_size" in params:
            size, center = params["cutout_size"], params["cutout_center"]
            outside_x = jnp.abs((jnp.arange(w) + 0.5) / w - center[:, 0:1]) >= size[:, None] / 2  # [N, W]
            outside_y = jnp.abs((jnp.arange(h) + 0.5) / h - center[:, 1:2]) >= size[:, None] / 2  # [N, H]
            x = x * (outside_y[:, :, None] | outside_x[:, None, :])[..., None].astype(jnp.float32)
        return x

    @staticmethod
    def _band_gains(band_gains: jax.Array) -> jax.Array:
        """Per-image filter gains [N, 4] from the drawn band gains: each band's gain vector (that band at its
        gain, the others at 1) normalised to the expected power, and the vectors multiplied (NVIDIA's)."""
        g = jnp.ones_like(band_gains)
        for band in range(band_gains.shape[1]):
            t = jnp.ones_like(band_gains).at[:, band].set(band_gains[:, band])
            g = g * t / jnp.sqrt(jnp.sum(_BAND_POWER * t**2, axis=1, keepdims=True))
        return g

    def _static_margin(self, height: int, width: int) -> tuple[int, int]:
        """Static reflect padding (x, y) >= NVIDIA's data-dependent margin for every draw: W-1 / H-1 (its clamp)
        unless only bounded transforms (flips, 90-degree and arbitrary rotations, integer translation) are
        enabled; one extra pixel covers float rounding in NVIDIA's ceil."""
        full = (width - 1, height - 1)
        if self.scale > 0 or self.aniso > 0 or self.xfrac > 0:
            return full
        cx, cy = (width - 1) / 2, (height - 1) / 2
        sx, sy = (math.ceil(self.xint_max * width), math.ceil(self.xint_max * height)) if self.xint > 0 else (0, 0)
        if self.rotate > 0:
            reach = (math.hypot(cx, cy) + math.hypot(sx, sy),) * 2
        elif self.rotate90 > 0:
            reach = (max(cx, cy) + max(sx, sy),) * 2
        else:
            reach = (cx + sx, cy + sy)
        return (min(math.ceil(reach[0] + 2 * _HZ_PAD - cx) + 1, full[0]),
                min(math.ceil(reach[1] + 2 * _HZ_PAD - cy) + 1, full[1]))


def make_augment_pipe(spec: str | Mapping[str, Any]) -> AugmentPipe:
    """An ``AugmentPipe`` from a preset name (``AUGPIPE_PRESETS``) or a mapping of its keyword arguments."""
    if isinstance(spec, str):
        return AugmentPipe.preset(spec)
    return AugmentPipe(**dict(spec))
