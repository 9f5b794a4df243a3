import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.ops import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d
from tests.ops.reference import upfirdn2d_ref

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 7, 6, 3))
FILTERS = {
    "fir4_2d": setup_filter([1, 3, 3, 1]),
    "full_3x4": RNG.standard_normal((3, 4)).astype(np.float32),
    "separable_8": setup_filter([1, 2, 3, 4, 4, 3, 2, 1]),
    "separable_3": setup_filter([1, 2, 1]),  # odd taps
    "rank1_3x5": np.outer([1, 2, 1], [1, 3, 3, 3, 1]).astype(np.float32) / 64,  # 2-D, applied as two passes
    "none": None,  # the identity: padding, zero insertion and decimation only
}


@pytest.mark.parametrize("fname", list(FILTERS))
@pytest.mark.parametrize(
    "up,down,pad",
    [((1, 1), (1, 1), (1, 1, 2, 0)), ((2, 2), (1, 1), (2, 1, 2, 1)), ((1, 1), (2, 2), (1, 2, 1, 1)),
     ((2, 1), (1, 2), (3, 0, -1, 2)), ((2, 2), (2, 2), (0, 1, 1, 0)), ((3, 3), (1, 1), (-1, 2, 2, -1))],
)
@pytest.mark.parametrize("flip", [False, True])
def test_upfirdn2d_matches_reference(fname, up, down, pad, flip):
    f = FILTERS[fname]
    y = upfirdn2d(jnp.asarray(X, jnp.float32), f, up, down, pad, flip_filter=flip, gain=1.5)
    r = upfirdn2d_ref(X, f, up, down, pad, flip, 1.5)
    assert y.shape == r.shape
    np.testing.assert_allclose(np.asarray(y), r, rtol=1e-5, atol=1e-5)


def test_helpers_keep_nvidia_shapes_and_values():
    f = setup_filter([1, 3, 3, 1])
    x = jnp.asarray(X, jnp.float32)
    up, down, flt = upsample2d(x, f), downsample2d(x[:, :6], f), filter2d(x, f)
    assert up.shape == (2, 14, 12, 3) and down.shape == (2, 3, 3, 3) and flt.shape == x.shape
    # NVIDIA's padding arithmetic for a 4-tap filter: up [2, 1], down [1, 1], filter [2, 1].
    np.testing.assert_allclose(np.asarray(up), upfirdn2d_ref(X, f, (2, 2), (1, 1), (2, 1, 2, 1), gain=4),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(down), upfirdn2d_ref(X[:, :6], f, (1, 1), (2, 2), (1, 1, 1, 1)),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(flt), upfirdn2d_ref(X, f, pad=(2, 1, 2, 1)), rtol=1e-5, atol=1e-5)


def test_constant_image_keeps_its_value():
    x = jnp.full((1, 8, 8, 2), 3.0)
    f = setup_filter([1, 3, 3, 1])
    assert np.allclose(np.asarray(upsample2d(x, f))[:, 2:-2, 2:-2], 3.0, atol=1e-5)
    assert np.allclose(np.asarray(downsample2d(x, f))[:, 1:-1, 1:-1], 3.0, atol=1e-5)


@pytest.mark.parametrize("up,down", [(2, 1), (1, 2)])
def test_gradient_matches_finite_differences(up, down):
    x = jnp.asarray(RNG.standard_normal((1, 5, 4, 2)))
    f = setup_filter([1, 3, 3, 1])
    probe = RNG.standard_normal(upfirdn2d_ref(np.asarray(x), f, (up, up), (down, down), (1, 2, 2, 1)).shape)

    def loss(v):
        return jnp.sum(upfirdn2d(v, f, up, down, (1, 2, 2, 1)) * probe)

    grad = np.asarray(jax.grad(loss)(x.astype(jnp.float32)))
    eps = 1e-3
    for idx in [(0, 0, 0, 0), (0, 2, 1, 1), (0, 4, 3, 0), (0, 1, 3, 1)]:
        e = np.zeros(x.shape)
        e[idx] = eps
        fd = (np.sum(upfirdn2d_ref(np.asarray(x) + e, f, (up, up), (down, down), (1, 2, 2, 1)) * probe)
              - np.sum(upfirdn2d_ref(np.asarray(x) - e, f, (up, up), (down, down), (1, 2, 2, 1)) * probe)) / (2 * eps)
        assert abs(grad[idx] - fd) < 1e-3 * max(1.0, abs(fd))


def test_setup_filter_matches_nvidia_conventions():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and np.isclose(f.sum(), 1.0)
    np.testing.assert_allclose(f, np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64)
    assert setup_filter([1] * 8).shape == (8,)
    np.testing.assert_allclose(setup_filter([1, 2], gain=4).sum(), 4.0)


def test_a_negative_gain_with_a_separable_filter_is_refused():
    """Each axis of a 1-D filter takes sqrt(gain): a negative gain had a complex root, cast to ~0 silently."""
    with pytest.raises(ValueError, match="a separable \\(1-D\\) filter needs gain >= 0, got -1"):
        upfirdn2d(jnp.ones((1, 4, 4, 1)), np.ones(2), gain=-1)
    y = upfirdn2d(jnp.ones((1, 4, 4, 1)), -np.ones((2, 2)) / 4, padding=1)  # a 2-D filter may be negative
    assert float(y[0, 2, 2, 0]) == -1
