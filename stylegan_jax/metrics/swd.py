"""Sliced Wasserstein distance (SWD) over a Laplacian pyramid, from the PGGAN paper (Karras et al. 2018).

For each pyramid level from the full resolution down to 16x16: 128 random 7x7 patches per image (the
same positions for the image at the same index of both sets), each patch normalised per channel over the
whole set, then the mean absolute difference of the sorted projections onto 4 x 128 random unit
directions. Reported x1e3 per level (``swd_<res>``) and averaged (``swd``). The pyramid is cv2's pyrDown /
pyrUp (5x5 binomial filter, mirrored borders), computed on the uint8 images as float32, as PGGAN's
``metrics/sliced_wasserstein.py``.

Positions and directions are drawn from the seed, so two identical image sets give exactly 0.
Grayscale images are compared on their single channel (7x7x1 = 49-component descriptors); RGB images on
three (147 components), as PGGAN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax import image_size

NHOOD_SIZE = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_RESOLUTION = 16
BINOMIAL = np.float32([1, 4, 6, 4, 1]) / 16


def swd_resolutions(resolution: int | tuple[int, int]) -> list[int | str]:
    """The pyramid levels' sizes (N, or "WxH" for ``resolution`` = (H, W): `stylegan_jax.image_size`): the
    image's, halved while the short side stays >= 16."""
    h, w = image_size.parse(resolution)
    out = []
    while min(h, w) >= MIN_RESOLUTION:
        out.append(image_size.text(h, w))
        h, w = h // 2, w // 2
    return out


def _blur(x: jax.Array, taps: np.ndarray) -> jax.Array:
    """Separable 5-tap filter along H and W of [N, H, W, C] with mirrored borders (``d c b | a b c d``)."""
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (2, 2)
        xp = jnp.pad(x, pad, mode="reflect")
        n = x.shape[axis]
        x = sum(float(t) * jax.lax.slice_in_dim(xp, i, i + n, axis=axis) for i, t in enumerate(taps))
    return x


def pyr_down(x: jax.Array) -> jax.Array:
    """cv2.pyrDown: blur, then keep even rows and columns. [N, H, W, C] -> [N, H/2, W/2, C]."""
    return _blur(x, BINOMIAL)[:, ::2, ::2]


def pyr_up(x: jax.Array) -> jax.Array:
    """cv2.pyrUp: zeros between samples, then blur with 4x the filter. [N, H, W, C] -> [N, 2H, 2W, C]."""
    n, h, w, c = x.shape
    up = jnp.zeros((n, 2 * h, 2 * w, c), x.dtype).at[:, ::2, ::2].set(x)
    return _blur(up, BINOMIAL * 2)


def laplacian_pyramid(images: jax.Array, num_levels: int) -> list[jax.Array]:
    """float32 [N, H, W, C] -> ``num_levels`` band-pass images, finest first (the last is the low-pass)."""
    pyramid = [images.astype(jnp.float32)]
    for _ in range(1, num_levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
    return pyramid


def patch_positions(seed: int, level: int, indices: jax.Array, resolution: int | tuple[int, int]) -> jax.Array:
    """Patch centres int32 [B, 128, 2] (y, x) in [3, H - 3) x [3, W - 3) (H = W = ``resolution``, or
    ``resolution`` = (H, W)) for the images of global ``indices`` [B] at pyramid ``level``: a function of
    (seed, level, index) only."""
    half = NHOOD_SIZE // 2
    base = jax.random.fold_in(jax.random.key(seed), level)
    h, w = image_size.parse(resolution)
    high = h - half if h == w else jnp.array([h - half, w - half])

    def one(index):
        key = jax.random.fold_in(base, index)
        return jax.random.randint(key, (NHOODS_PER_IMAGE, 2), half, high)

    return jax.vmap(one)(indices)


def extract_patches(level: jax.Array, centres: jax.Array) -> jax.Array:
    """7x7 patches of [B, H, W, C] around centres [B, P, 2] -> [B, P, C * 49] in (channel, y, x) order."""
    offsets = jnp.arange(NHOOD_SIZE) - NHOOD_SIZE // 2
    ys = centres[:, :, 0, None] + offsets  # [B, P, 7]
    xs = centres[:, :, 1, None] + offsets
    b = jnp.arange(level.shape[0])[:, None, None, None]
    patches = level[b, ys[:, :, :, None], xs[:, :, None, :]]  # [B, P, 7, 7, C]
    return patches.transpose(0, 1, 4, 2, 3).reshape(*centres.shape[:2], -1)


def swd_descriptors(images: jax.Array, indices: jax.Array, seed: int) -> tuple[jax.Array, ...]:
    """uint8 images [B, H, W, C] with global indices [B] -> per level, descriptors [B, 128, C * 49] float32."""
    levels = laplacian_pyramid(images, len(swd_resolutions(tuple(images.shape[1:3]))))
    return tuple(extract_patches(lev, patch_positions(seed, i, indices, tuple(lev.shape[1:3])))
                 for i, lev in enumerate(levels))


def normalize_descriptors(desc: np.ndarray, channels: int) -> np.ndarray:
    """[M, C * 49] -> the same with each channel's components shifted and scaled to mean 0, std 1 over the
    whole set, float32."""
    d = np.asarray(desc, np.float64).reshape(len(desc), channels, -1)
    d = (d - d.mean(axis=(0, 2), keepdims=True)) / d.std(axis=(0, 2), keepdims=True)
    return d.reshape(len(desc), -1).astype(np.float32)


def _projected_distance(a: np.ndarray, b: np.ndarray, dirs: np.ndarray) -> float:
    """Mean absolute difference of the sorted projections of a, b [M, D] onto dirs [D, K]. In NumPy: its sort
    of each direction's M values (rows, contiguous) is about 100x faster than XLA:CPU's sort along M, which
    took minutes for a dataset of 1,797 images (docs/performance.md)."""
    proj_a = np.sort(dirs.T @ a.T, axis=1)
    proj_b = np.sort(dirs.T @ b.T, axis=1)
    return float(np.abs(proj_a - proj_b).mean(dtype=np.float64))


def random_directions(seed: int, level: int, dim: int) -> list[np.ndarray]:
    """``DIR_REPEATS`` float32 matrices [dim, 128] of unit-norm columns, drawn from (seed, level)."""
    rng = np.random.default_rng([seed, level])
    dirs = []
    for _ in range(DIR_REPEATS):
        d = rng.standard_normal((dim, DIRS_PER_REPEAT))
        dirs.append((d / np.sqrt(np.square(d).sum(axis=0, keepdims=True))).astype(np.float32))
    return dirs


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: list[np.ndarray]) -> float:
    """SWD between descriptor sets a, b [M, D] (same M): mean over ``directions`` of the mean absolute
    difference of sorted projections."""
    if a.shape != b.shape:
        raise ValueError(f"SWD needs two sets of equal size, got {a.shape} and {b.shape}")
    return float(np.mean([_projected_distance(a, b, d) for d in directions]))


def swd_from_descriptors(real: list[np.ndarray], fake: list[np.ndarray], resolutions: list[int], channels: int,
                         seed: int) -> dict[str, float]:
    """Per-level descriptors [M, C * 49] of both sets -> ``{"swd_<res>": x1e3 value, ..., "swd": mean}``
    (``<res>`` as `swd_resolutions` names the levels)."""
    out = {}
    for level, (res, r, f) in enumerate(zip(resolutions, real, fake, strict=True)):
        dirs = random_directions(seed, level, r.shape[1])
        out[f"swd_{res}"] = 1e3 * sliced_wasserstein(normalize_descriptors(r, channels),
                                                     normalize_descriptors(f, channels), dirs)
    out["swd"] = float(np.mean(list(out.values())))
    return out
