"""Area resizing: torch's ``F.interpolate(mode='area')`` (``adaptive_avg_pool2d``), which NVIDIA's projector and
PPL use to bring images down to 256 pixels before VGG16."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _bins(size: int, out: int) -> np.ndarray:
    """[out, size]: row i averages the inputs ``floor(i * size / out)`` to ``ceil((i + 1) * size / out)`` (excl.),
    torch's adaptive pooling bins (they overlap where ``out`` does not divide ``size``)."""
    matrix = np.zeros((out, size), np.float32)
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        matrix[i, start:end] = 1 / (end - start)
    return matrix


def area_resize(images: jax.Array, height: int, width: int) -> jax.Array:
    """NHWC ``images`` -> [N, height, width, C], each output pixel the mean of the input pixels of its bin
    (`_bins` along each axis); an integer factor on both axes averages f x f blocks."""
    n, h, w, c = images.shape
    if h % height == 0 and w % width == 0:
        return images.reshape(n, height, h // height, width, w // width, c).mean(axis=(2, 4))
    return jnp.einsum("yh,nhwc,xw->nyxc", _bins(h, height), images, _bins(w, width),
                      precision=jax.lax.Precision.HIGHEST)
