import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.ops import ACTIVATIONS, bias_act

NUMPY_ACTS = {
    "linear": (lambda x: x, 1.0),
    "relu": (lambda x: np.maximum(x, 0), np.sqrt(2)),
    "lrelu": (lambda x: np.where(x >= 0, x, 0.2 * x), np.sqrt(2)),
    "tanh": (np.tanh, 1.0),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), 1.0),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(x)), 1.0),
    "selu": (lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x)), 1.0),
    "softplus": (lambda x: np.log1p(np.exp(x)), 1.0),
    "swish": (lambda x: x / (1 + np.exp(-x)), np.sqrt(2)),
}


def test_table_covers_nvidias_activations():
    assert set(ACTIVATIONS) == set(NUMPY_ACTS)


@pytest.mark.parametrize("act", sorted(NUMPY_ACTS))
@pytest.mark.parametrize("clamp", [None, 0.5])
def test_bias_act_matches_numpy(act, clamp):
    rng = np.random.default_rng(1)
    x, b = rng.standard_normal((2, 3, 3, 5)) * 2, rng.standard_normal(5)
    func, gain = NUMPY_ACTS[act]
    expected = func(x + b) * gain
    if clamp is not None:
        expected = np.clip(expected, -clamp, clamp)
    y = bias_act(jnp.asarray(x, jnp.float32), jnp.asarray(b, jnp.float32), act=act, clamp=clamp)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


def test_explicit_alpha_gain_and_axis():
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    b = np.array([0.5, -0.5, 0.25])
    y = bias_act(jnp.asarray(x, jnp.float32), jnp.asarray(b, jnp.float32), axis=0, act="lrelu", alpha=0.1, gain=3)
    z = x + b[:, None]
    np.testing.assert_allclose(np.asarray(y), np.where(z >= 0, z, 0.1 * z) * 3, rtol=1e-6)


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="unknown activation"):
        bias_act(jnp.zeros(3), act="gelu2")
    with pytest.raises(ValueError, match="does not match"):
        bias_act(jnp.zeros((2, 3)), jnp.zeros(4))


def test_gradients_at_the_ties_are_nvidias_cuda_kernels():
    """lrelu's slope at 0 is alpha * gain (NVIDIA's kernel: ``yy > 0 ? x : x * alpha``; torch's leaky_relu),
    and the clamp passes no gradient from |y| = clamp on (``yref > -clamp & yref < clamp ? y : 0``)."""
    import jax

    def total(x):
        return bias_act(x, act="lrelu", gain=2.0, clamp=1.0).sum()

    x = jnp.asarray([0.0, 0.25, -0.25, 0.5, -5.0, 2.0, np.nextafter(np.float32(0.5), 0)], jnp.float32)
    assert np.asarray(bias_act(x, act="lrelu", gain=2.0, clamp=1.0))[3] == 1.0  # exactly at the clamp
    np.testing.assert_array_equal(np.asarray(jax.grad(total)(x)), np.float32([0.4, 2, 0.4, 0, 0, 0, 2]))
    assert np.isnan(np.asarray(bias_act(jnp.asarray([np.nan]), act="lrelu", clamp=1.0))).all()
