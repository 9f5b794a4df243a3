"""Half-precision inputs computed as NVIDIA's CUDA kernels compute float16 ones (upfirdn2d, bias_act and
filtered_lrelu read half values, compute in float, write half): the bfloat16 result is the float64 result on
the same bfloat16 inputs, rounded to bfloat16 once. Double rounding (float64 -> float32 -> bfloat16) may move
an element by one bfloat16 ulp; computing in bfloat16 throughout rounds after every product and sum."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from stylegan_jax.ops import bias_act, setup_filter, upfirdn2d
from stylegan_jax.ops.filtered_lrelu import design_lowpass_filter, filtered_lrelu, filtered_lrelu_ref
from tests.ops.reference import upfirdn2d_ref
from tests.ops.test_filtered_lrelu import numpy_filtered_lrelu

RNG = np.random.default_rng(7)


def bf16(x) -> np.ndarray:
    """``x`` rounded to bfloat16, as float64."""
    return np.asarray(x, np.float64).astype(ml_dtypes.bfloat16).astype(np.float64)


def assert_rounded_once(got, expected: np.ndarray) -> None:
    """``got`` (bfloat16) is ``expected`` (float64) rounded to bfloat16: every element within one ulp, nearly
    all exactly."""
    assert got.dtype == jnp.bfloat16
    got, want = np.asarray(got, np.float64), bf16(expected)
    ulp = 2.0 ** (np.floor(np.log2(np.maximum(np.abs(want), 1e-30))) - 7)
    assert np.all(np.abs(got - want) <= ulp)
    assert np.mean(got == want) >= 0.97, np.mean(got == want)


@pytest.mark.parametrize("f, up, down, pad", [
    (setup_filter([1, 3, 3, 1]), 2, 1, (2, 1, 2, 1)),  # StyleGAN2's upsampling
    (setup_filter([1, 2, 3, 4, 4, 3, 2, 1]), 1, 2, (3, 3, 3, 3)),
    (design_lowpass_filter(12, cutoff=4.0, width=2.0, fs=16.0), 2, 1, (6, 5, 6, 5)),  # a Kaiser design
])
def test_upfirdn2d_filters_half_inputs_in_float32(f, up, down, pad):
    x = bf16(RNG.standard_normal((2, 9, 8, 3)) * 3)
    got = upfirdn2d(jnp.asarray(x, jnp.bfloat16), f, up, down, pad, gain=up**2)
    assert_rounded_once(got, upfirdn2d_ref(x, f, (up, up), (down, down), pad, False, up**2))


def test_bias_act_computes_half_inputs_in_float32():
    x, b = bf16(RNG.standard_normal((4, 5, 5, 6)) * 2), RNG.standard_normal(6)
    got = bias_act(jnp.asarray(x, jnp.bfloat16), jnp.asarray(b, jnp.float32), act="lrelu", clamp=2.5)
    # NVIDIA's layers cast the bias to the activations' dtype before the kernel
    z = x + bf16(b)
    assert_rounded_once(got, np.clip(np.where(z >= 0, z, 0.2 * z) * np.sqrt(2), -2.5, 2.5))


def test_filtered_lrelu_computes_half_inputs_in_float32():
    fu = design_lowpass_filter(12, cutoff=8.0, width=4.0, fs=32.0)
    fd = design_lowpass_filter(12, cutoff=6.0, width=4.0, fs=32.0, radial=True)
    x, b = bf16(RNG.standard_normal((2, 10, 9, 3)) * 2), bf16(RNG.standard_normal(3))
    got = filtered_lrelu(jnp.asarray(x, jnp.bfloat16), fu, fd, jnp.asarray(b, jnp.bfloat16), up=2, down=2,
                         padding=(11, 10, 11, 10), clamp=256.0)
    assert_rounded_once(got, numpy_filtered_lrelu(x, fu, fd, b, 2, 2, (11, 10, 11, 10), np.sqrt(2), 0.2, 256.0))


def test_filtered_lrelu_gradient_of_half_inputs_in_float32():
    """dx and db of sum(y * probe) for bfloat16 x, b and probe: the float64 gradient (JAX's of the plain
    composition, `filtered_lrelu_ref`, under x64; its leaky ReLU and clamp regions those of the float64
    pre-activations) rounded to bfloat16 once."""
    fu = design_lowpass_filter(12, cutoff=8.0, width=4.0, fs=32.0)
    fd = design_lowpass_filter(12, cutoff=6.0, width=4.0, fs=32.0)
    x, b = bf16(RNG.standard_normal((2, 10, 9, 3)) * 2), bf16(RNG.standard_normal(3))
    args = dict(fu=fu, fd=fd, up=2, down=2, padding=(11, 10, 11, 10), clamp=1.5)
    probe = bf16(RNG.standard_normal((2, 10, 9, 3)))

    def grads(fn, dtype):
        loss = lambda x, b: jnp.sum(fn(x, b=b, **args).astype(jnp.float32 if dtype == jnp.bfloat16 else dtype)  # noqa: E731
                                    * jnp.asarray(probe, dtype))
        return jax.grad(loss, argnums=(0, 1))(jnp.asarray(x, dtype), jnp.asarray(b, dtype))

    with jax.enable_x64(True):
        expected = [np.asarray(g, np.float64) for g in grads(filtered_lrelu_ref, jnp.float64)]
    for got, want in zip(grads(filtered_lrelu, jnp.bfloat16), expected, strict=True):
        assert_rounded_once(got, want)
