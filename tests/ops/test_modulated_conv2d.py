import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.ops import modulated_conv2d, setup_filter
from tests.ops.reference import conv2d_resample_ref

F = setup_filter([1, 3, 3, 1])


def per_sample_reference(x, weight, styles, demodulate, up, down, padding, flip_weight):
    """Each sample convolved with its own modulated (and demodulated) weights, in float64."""
    out = []
    for n in range(x.shape[0]):
        w = weight * styles[n][None, :, None, None]
        if demodulate:
            w = w / np.sqrt(np.sum(w**2, axis=(1, 2, 3), keepdims=True) + 1e-8)
        out.append(conv2d_resample_ref(x[n : n + 1], w, F, up, down, padding, flip_weight)[0])
    return np.stack(out)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("k,up,down,padding", [(3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 2, 1), (1, 1, 1, 0)])
def test_both_forms_match_per_sample_convolution(fused, demodulate, k, up, down, padding):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 8, 8, 5))
    weight = rng.standard_normal((4, 5, k, k))
    styles = rng.standard_normal((3, 5)) + 1
    flip = up == 1
    y = modulated_conv2d(jnp.asarray(x, jnp.float32), jnp.asarray(weight, jnp.float32),
                         jnp.asarray(styles, jnp.float32), demodulate=demodulate, up=up, down=down,
                         padding=padding, resample_filter=F, flip_weight=flip, fused=fused)
    r = per_sample_reference(x, weight, styles, demodulate, up, down, padding, flip)
    assert y.shape == r.shape
    np.testing.assert_allclose(np.asarray(y), r, rtol=1e-5, atol=1e-5 * np.abs(r).max())


def test_forms_agree_in_bfloat16():
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((2, 8, 8, 8)), jnp.bfloat16)
    weight = jnp.asarray(rng.standard_normal((8, 8, 3, 3)), jnp.float32)
    styles = jnp.asarray(rng.standard_normal((2, 8)) * 100, jnp.float32)
    a = modulated_conv2d(x, weight, styles, padding=1, fused=False)
    b = modulated_conv2d(x, weight, styles, padding=1, fused=True)
    full = modulated_conv2d(x.astype(jnp.float32), weight, styles, padding=1)  # the float32 result
    assert a.dtype == b.dtype == jnp.bfloat16
    for y in (a, b):
        np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(full), atol=0.1)


@pytest.mark.parametrize("fused", [False, True])
def test_float64_demodulates_without_half_precisions_prenormalisation(fused):
    """Small styles (sum of squares near the 1e-8 eps) in float64 demodulate as NVIDIA's float32 form: no
    rescaling of weights and styles first (which moves the eps's share by about 1% here); that is for half
    precision only."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 6, 6, 5))
    weight = rng.standard_normal((4, 5, 3, 3))
    styles = rng.standard_normal((2, 5)) * 1e-4
    with jax.enable_x64(True):
        y = modulated_conv2d(jnp.asarray(x), jnp.asarray(weight), jnp.asarray(styles), padding=1, fused=fused)
        assert y.dtype == jnp.float64
    r = per_sample_reference(x, weight, styles, True, 1, 1, 1, True)
    np.testing.assert_allclose(np.asarray(y), r, rtol=1e-5, atol=1e-5 * np.abs(r).max())
