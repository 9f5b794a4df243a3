"""`area_resize` equals torch's ``F.interpolate(mode='area')`` (adaptive average pooling), computed here in NumPy
float64 from its definition: output pixel (i, j) averages input rows floor(i H / h) .. ceil((i + 1) H / h) and
the same columns."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.ops.area_resize import area_resize


def adaptive_average_pool(x: np.ndarray, height: int, width: int) -> np.ndarray:
    n, h, w, c = x.shape
    out = np.zeros((n, height, width, c))
    for i in range(height):
        for j in range(width):
            rows = slice(math.floor(i * h / height), math.ceil((i + 1) * h / height))
            cols = slice(math.floor(j * w / width), math.ceil((j + 1) * w / width))
            out[:, i, j] = x[:, rows, cols].mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("shape, size", [((24, 18), (8, 6)), ((24, 18), (7, 5)), ((18, 24), (6, 8)),
                                         ((10, 8), (3, 2)), ((5, 5), (5, 5)), ((9, 12), (9, 4))])
def test_area_resize_equals_adaptive_average_pooling_in_float64(shape, size):
    x = np.random.default_rng(0).uniform(-1, 1, (2, *shape, 3))
    got = np.asarray(area_resize(jnp.asarray(x, jnp.float32), *size))
    np.testing.assert_allclose(got, adaptive_average_pool(x, *size), rtol=1e-5, atol=1e-6)


def test_area_resize_bins_overlap_where_the_size_does_not_divide():
    """Three pixels to two: torch's bins are [0, 2) and [1, 3), the middle pixel in both."""
    x = jnp.asarray([1.0, 2.0, 6.0]).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(np.asarray(area_resize(x, 2, 1)).ravel(), [1.5, 4.0])
