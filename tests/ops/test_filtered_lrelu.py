"""filtered_lrelu against NumPy float64 (NVIDIA's reference composition written with loops over taps), forward
and first-order gradients; the filter designs against scipy's and against NVIDIA's formula."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal
import scipy.special

from stylegan_jax.ops.filtered_lrelu import design_lowpass_filter, filtered_lrelu, filtered_lrelu_ref, output_size
from tests.ops.reference import upfirdn2d_ref


def numpy_filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter=False):
    """NVIDIA's ``_filtered_lrelu_ref`` in float64: bias, upfirdn2d up (gain up^2), lrelu * gain, clamp,
    upfirdn2d down."""
    x = np.asarray(x, np.float64) + (0 if b is None else np.asarray(b, np.float64))
    ones = np.ones((1, 1))
    x = upfirdn2d_ref(x, ones if fu is None else fu, up=(up, up), pad=padding, gain=up**2, flip_filter=flip_filter)
    x = np.where(x >= 0, x, x * slope) * gain
    if clamp is not None:
        x = np.clip(x, -clamp, clamp)
    return upfirdn2d_ref(x, ones if fd is None else fd, down=(down, down), flip_filter=flip_filter)


def lowpass(taps, fs):
    return design_lowpass_filter(taps, cutoff=fs / 4, width=fs / 8, fs=fs)


# (up, down, padding, radial down filter, input h x w): NVIDIA's layer shapes and odd, uneven ones.
CASES = [
    (2, 2, (11, 10, 11, 10), False, (9, 9)),
    (1, 1, (3, 2, 3, 2), False, (7, 5)),
    (2, 1, (6, 5, 7, 4), False, (6, 7)),
    (1, 2, (5, 5, 4, 6), True, (11, 8)),
    (4, 2, (21, 20, 19, 22), False, (5, 6)),
    (4, 1, (14, 13, 14, 13), False, (4, 4)),
    (2, 2, (-1, 12, 3, 8), True, (14, 13)),
]


def case_inputs(up, down, radial, hw, seed=0):
    rng = np.random.default_rng(seed)
    fs = 16.0 * max(up, down)
    fu = lowpass(6 * up, fs) if up > 1 else None
    fd = design_lowpass_filter(6 * down, cutoff=fs / 5, width=fs / 8, fs=fs, radial=radial) if down > 1 else None
    x = rng.standard_normal((2, *hw, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    return x, fu, fd, b


@pytest.mark.parametrize("up,down,padding,radial,hw", CASES)
@pytest.mark.parametrize("clamp", [None, 0.6])
def test_forward_equals_numpy_float64(up, down, padding, radial, hw, clamp):
    x, fu, fd, b = case_inputs(up, down, radial, hw)
    expected = numpy_filtered_lrelu(x, fu, fd, b, up, down, padding, np.sqrt(2), 0.2, clamp)
    args = dict(fu=fu, fd=fd, b=jnp.asarray(b), up=up, down=down, padding=padding, clamp=clamp)
    fast, ref = filtered_lrelu(jnp.asarray(x), **args), filtered_lrelu_ref(jnp.asarray(x), **args)
    assert fast.shape == expected.shape == (2, *output_size(hw, fu, fd, up, down, padding), 3)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(np.asarray(fast), expected, rtol=1e-5, atol=2e-6 * scale)
    np.testing.assert_allclose(np.asarray(ref), expected, rtol=1e-5, atol=2e-6 * scale)


@pytest.mark.parametrize("gain, slope, clamp, flip_filter, up, down, padding", [
    (1.0, 1.0, 256.0, False, 1, 1, (2, 2, 2, 2)),  # StyleGAN3's ToRGB: linear, clamped
    (0.5, 0.0, 0.25, False, 2, 2, (11, 10, 11, 10)),  # ReLU, clamped
    (3.0, 0.1, None, True, 3, 1, (9, 8, 10, 7)),  # factor 3, the filters correlated
    (2.0, 0.3, 1.5, True, 1, 3, (10, 9, 11, 8)),
])
def test_forward_off_the_default_gain_and_slope_equals_numpy_float64(gain, slope, clamp, flip_filter, up, down,
                                                                     padding):
    x, _, _, b = case_inputs(up, down, False, (7, 6), seed=1)
    fs = 16.0 * max(up, down)  # filters not symmetric, so that flipping them matters
    fu = lowpass(6 * up, fs) * np.linspace(0.5, 1.5, 6 * up) if up > 1 else None
    fd = lowpass(6 * down, fs) * np.linspace(1.5, 0.5, 6 * down) if down > 1 else None
    expected = numpy_filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)
    y = filtered_lrelu(jnp.asarray(x), fu=fu, fd=fd, b=jnp.asarray(b), up=up, down=down, padding=padding, gain=gain,
                       slope=slope, clamp=clamp, flip_filter=flip_filter)
    assert y.shape == expected.shape
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=2e-6 * max(np.abs(expected).max(), 1))


@pytest.mark.parametrize("up,down,padding,radial,hw", CASES[:4] + CASES[6:])
def test_first_order_gradients_equal_numpy_float64(up, down, padding, radial, hw):
    """d/dx and d/db of sum(filtered_lrelu * probe): the float64 gradient of the NumPy composition (its
    transpose written out: the leaky ReLU's mask times the adjoint filters) against JAX's."""
    x, fu, fd, b = case_inputs(up, down, radial, hw, seed=1)
    clamp = 0.8
    out = numpy_filtered_lrelu(x, fu, fd, b, up, down, padding, np.sqrt(2), 0.2, clamp)
    probe = np.random.default_rng(2).standard_normal(out.shape)

    def loss(x, b):
        return jnp.sum(filtered_lrelu(x, fu, fd, b, up, down, padding, clamp=clamp) * probe)

    dx, db = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(b))
    # Central differences in float64 on the NumPy composition, along random directions.
    rng = np.random.default_rng(3)
    for _ in range(3):
        vx, vb = rng.standard_normal(x.shape), rng.standard_normal(b.shape)
        eps = 1e-6

        def f(t, vx=vx, vb=vb):
            return np.sum(numpy_filtered_lrelu(x + t * vx, fu, fd, b + t * vb, up, down, padding, np.sqrt(2), 0.2,
                                               clamp) * probe)

        numeric = (f(eps) - f(-eps)) / (2 * eps)
        analytic = np.sum(np.asarray(dx, np.float64) * vx) + np.sum(np.asarray(db, np.float64) * vb)
        assert analytic == pytest.approx(numeric, rel=1e-3, abs=1e-3)


def test_no_dilated_or_transposed_convolution():
    x, fu, fd, b = case_inputs(2, 2, False, (9, 9))
    text = jax.jit(jax.grad(lambda x: jnp.sum(filtered_lrelu(x, fu, fd, None, 2, 2, 10) ** 2))).lower(
        jnp.asarray(x)).as_text()
    assert "lhs_dilate" not in text and "rhs_dilate" not in text and "convolution" not in text


@pytest.mark.parametrize("numtaps,cutoff,width,fs", [(12, 2.0, 4.6, 32), (12, 45.2, 18.5, 128), (24, 64, 8, 256)])
def test_separable_design_is_scipys_firwin(numtaps, cutoff, width, fs):
    expected = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
    np.testing.assert_array_equal(design_lowpass_filter(numtaps, cutoff, width, fs), expected.astype(np.float32))
    assert design_lowpass_filter(1, cutoff, width, fs) is None


def test_radial_design_is_nvidias_jinc_kaiser():
    numtaps, cutoff, width, fs = 12, 11.3, 9.2, 64
    f = design_lowpass_filter(numtaps, cutoff, width, fs, radial=True)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.sqrt(x[:, None] ** 2 + x[None, :] ** 2)
    jinc = scipy.special.j1(2 * np.pi * cutoff * r) / (np.pi * r)
    atten = 2.285 * (numtaps - 1) * np.pi * (width / (fs / 2)) + 7.95  # Kaiser's formula
    beta = 0.1102 * (atten - 8.7) if atten > 50 else 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    window = np.kaiser(numtaps, beta)
    expected = jinc * np.outer(window, window)
    np.testing.assert_allclose(f, expected / expected.sum(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(f, f.T, atol=0)  # radially symmetric


@pytest.mark.parametrize("kwargs", [dict(gain=0.0), dict(gain=-1.0), dict(slope=-0.2), dict(clamp=-1.0)])
def test_arguments_nvidia_asserts_against_are_refused(kwargs):
    """NVIDIA's filtered_lrelu asserts gain > 0, slope >= 0, clamp >= 0 (its CUDA kernel applies the gain
    before the leaky ReLU: a negative gain would compute another function than its reference)."""
    with pytest.raises(ValueError, match="filtered_lrelu needs gain > 0, slope >= 0 and clamp >= 0 or None"):
        filtered_lrelu(jnp.zeros((1, 4, 4, 1)), **kwargs)
