"""Float64 NumPy layers for the forward-pass references of tests/models/test_*_numpy_forward.py, written from
the papers' and NVIDIA's definitions without calling stylegan_jax: NHWC activations, torch weight layouts
([out, in, k, k], [out, in]) unless a caller says otherwise. Every constant a layer needs (gains, slopes,
weight scales) is an argument the caller states."""

import jax
import numpy as np

from tests.ops.reference import conv2d_resample_ref, upfirdn2d_ref

#: NVIDIA's [1, 3, 3, 1] resampling filter, normalised to sum 1 (separable outer product).
FIR = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0


def randomized(variables, seed):
    """Every leaf replaced by N(0, 1) scaled to the leaf's own spread (0.5 where the leaf is constant, as the
    zero biases and noise strengths and the one-initialised scales are), so that no term is zero at test time.
    Returns float32 arrays (what the module sees) as a tree of the same structure."""
    rng = np.random.default_rng(seed)

    def draw(x):
        x = np.asarray(x, np.float64)
        spread = float(np.std(x)) if x.size > 1 and np.std(x) > 0 else 0.5
        return (np.mean(x) + spread * rng.standard_normal(x.shape)).astype(np.float32)

    return jax.tree_util.tree_map(draw, variables)


def f64(tree):
    """A tree of arrays as float64 NumPy."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), tree)


def lrelu(x, slope=0.2):
    return np.where(x >= 0, x, slope * x)


def conv(x, weight, up=1, down=1):
    """Correlation of x [N, H, W, in] with weight [out, in, k, k], 'same' zero padding k // 2, with NVIDIA's
    FIR resampling: zero insertion + [1, 3, 3, 1] (gain 4) before the conv for ``up``, the filter then every
    second sample after it for ``down`` (the functions of upsample_conv_2d / conv_downsample_2d). An upsampling
    conv applies its stored weight spatially flipped (a true convolution): stylegan2-ada-pytorch's layout,
    ``flip_weight=(up == 1)``, whose legacy.py flips TF's ``Conv0_up`` / ``Skip`` weights on import."""
    return conv2d_resample_ref(x, weight, FIR, up=up, down=down, padding=weight.shape[-1] // 2, flip_weight=up == 1)


def upsample_fir(x):
    """NVIDIA's upsample_2d with [1, 3, 3, 1]: zero insertion, pad (2, 1), FIR with gain 4."""
    return upfirdn2d_ref(x, FIR, up=(2, 2), pad=(2, 1, 2, 1), gain=4.0)


def downsample_fir(x):
    """NVIDIA's downsample_2d with [1, 3, 3, 1]: pad (1, 1), FIR, every second sample."""
    return upfirdn2d_ref(x, FIR, down=(2, 2), pad=(1, 1, 1, 1))


def box_down(x):
    """2x2 average pooling (NVIDIA's naive_downsample_2d)."""
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def flatten_nchw(x):
    """[N, H, W, C] -> [N, C * H * W] in NCHW order (NVIDIA's dense layers read their input so)."""
    return np.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)


def assert_close(actual, expected, rtol=1e-4):
    """The module's float32 output against the float64 reference, within rtol of the output's scale."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = float(np.max(np.abs(expected)))
    assert scale > 1e-3, "the reference output is degenerate"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)
