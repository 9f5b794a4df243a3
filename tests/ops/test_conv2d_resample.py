import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.ops import conv2d_resample, setup_filter
from stylegan_jax.ops.conv2d_resample import gradient_rule
from tests.ops.reference import conv2d_resample_ref

F = setup_filter([1, 3, 3, 1])


@pytest.mark.parametrize(
    "k,up,down,padding",
    [(3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 2, 1), (1, 2, 1, 0), (1, 1, 2, 0), (4, 2, 1, 1), (3, 1, 1, -1),
     (3, 2, 2, 1), (1, 2, 2, 0)],  # up and down in one call: NVIDIA's too (no network uses it)
)
@pytest.mark.parametrize("groups,flip_weight", [(1, True), (2, False)])
def test_conv2d_resample_matches_reference(k, up, down, padding, groups, flip_weight):
    rng = np.random.default_rng(k + 10 * up + 100 * down)
    x, w = rng.standard_normal((2, 8, 8, 4)), rng.standard_normal((6, 4 // groups, k, k))
    y = conv2d_resample(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), F, up, down, padding,
                        groups, flip_weight)
    r = conv2d_resample_ref(x, w, F, up, down, padding, flip_weight, groups)
    assert y.shape == r.shape
    np.testing.assert_allclose(np.asarray(y), r, rtol=1e-4, atol=1e-4 * np.abs(r).max())


@pytest.mark.parametrize("kernel, up, down, padding, f, flip_filter", [
    ((3, 2), 2, 1, (1, 0, 2, 1), F, False),  # kh != kw, four paddings
    ((2, 3), 1, 2, (0, 1, -1, 1), F, True),  # a crop, the filter correlated
    ((3, 3), 3, 1, 1, setup_filter([1, 2, 1]), False),  # factor 3, an odd separable filter
    ((1, 1), 1, 3, (2, 1, 0, 2), setup_filter(np.outer([1, 3, 3, 1], [1, 2, 1])), False),  # a non-square 2-D one
    ((3, 3), 2, 1, 0, None, False),  # up without a filter: zero insertion
    ((3, 1), 2, 3, (1, 2, 0, 1), F, True),  # up and down
])
def test_conv2d_resample_matches_reference_off_the_networks_settings(kernel, up, down, padding, f, flip_filter):
    """What no network uses but NVIDIA's op defines: non-square kernels and filters, per-side padding and crops,
    factor 3, correlation filters, no filter."""
    rng = np.random.default_rng(sum(kernel) + 10 * up + 100 * down)
    x, w = rng.standard_normal((2, 7, 9, 4)), rng.standard_normal((6, 2, *kernel))
    y = conv2d_resample(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), f, up, down, padding, 2, False,
                        flip_filter)
    r = conv2d_resample_ref(x, w, f, up, down, padding, False, 2, flip_filter)
    assert y.shape == r.shape
    np.testing.assert_allclose(np.asarray(y), r, rtol=1e-4, atol=1e-4 * np.abs(r).max())


@pytest.mark.parametrize("size, kernel, up, down, padding", [
    ((2, 2), (3, 3), 1, 1, 0),  # a plain convolution: XLA alone would return an empty array
    ((5, 2), (1, 3), 1, 1, (0, 0, 1, 1)),  # the width alone too narrow
    ((1, 1), (3, 3), 1, 2, 0),  # the resampling paths
    ((1, 1), (3, 3), 2, 1, -2),
])
def test_an_input_too_small_for_the_kernel_is_one_clear_error(size, kernel, up, down, padding):
    """torch's conv2d raises where nothing would remain; so does ours, on every path, naming the sizes."""
    x, w = jnp.zeros((1, *size, 2)), jnp.zeros((3, 2, *kernel))
    with pytest.raises(ValueError, match=r"resampling an axis of \d+ samples .* leaves no output"):
        conv2d_resample(x, w, F if up > 1 or down > 1 else None, up, down, padding)


def test_up_conv_uses_no_transposed_or_dilated_convolution():
    x, w = jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 2, 3, 3))

    def loss(x, w):
        return jnp.sum(conv2d_resample(x, w, F, up=2, padding=1) ** 2)

    text = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(x, w).as_text()
    convs = re.findall(r"stride = \[([^\]]*)\].*?lhs_dilate = \[([^\]]*)\]", text)
    assert len(convs) >= 4  # forward phases and their gradients
    assert all(stride == "1, 1" and dilation == "1, 1" for stride, dilation in convs)


@pytest.mark.parametrize("k,padding", [
    (3, 2),  # StyleGAN3's k - 1: XLA:CPU's weight-gradient convolution for it is a naive loop, 20x slower
    (1, 0),  # a 1x1 kernel: XLA's convolution transposes its input, a slow fusion inside a training step
])
def test_weight_gradient_off_xlas_fast_path_is_per_tap_matmuls_equal_to_xlas(k, padding):
    """Without vmap, the weight gradient of a correlation off XLA:CPU's fast path (padded beyond 'same', or
    a single tap) is taken as per-tap matmuls: no weight-gradient convolution in the program, and the
    gradients equal XLA's rule in float64."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 8, 8, 4)), rng.standard_normal((6, 4, k, k))

    def grads():
        fn = jax.jit(jax.grad(lambda x, w: jnp.sum(jnp.tanh(conv2d_resample(x, w, padding=padding)) ** 2),
                              argnums=(0, 1)))
        return fn(x, w), fn.lower(x, w).as_text().count("stablehlo.convolution")

    with jax.enable_x64(True):
        with gradient_rule("forward"):
            ours, ours_convs = grads()
        with gradient_rule("xla"):
            xlas, xlas_convs = grads()
    assert (ours_convs, xlas_convs) == (2, 3)  # forward and input gradient; XLA adds the weight gradient's
    for a, b in zip(ours, xlas, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10 * np.abs(b).max())


@pytest.mark.parametrize("k,up,down,padding,groups", [
    (3, 1, 1, 1, 1), (3, 2, 1, 1, 1), (3, 1, 2, 1, 1), (1, 1, 2, 0, 1),
    (3, 1, 1, 1, 2), (3, 2, 1, 1, 4), (4, 1, 1, 0, 4), (1, 1, 1, 0, 2),
    (3, 1, 1, 2, 1),  # StyleGAN3's padding k - 1: the ungrouped weight gradient as per-tap matmuls
])
def test_forward_form_gradients_equal_xlas_to_second_order(k, up, down, padding, groups):
    """conv2d's custom VJP (the input gradient as a forward correlation, grouped or more than 'same'-padded
    weight gradients as per-tap matmuls) gives XLA's first and second derivatives: an R1-style penalty
    |d/dx f(x, w)|^2 and its gradient in w, in float64, and under vmap."""
    rng = np.random.default_rng(k + up + down + groups)
    x, w = rng.standard_normal((3, 2, 8, 8, 4)), rng.standard_normal((8, 4 // groups, k, k))

    def loss(x, w):
        return jnp.sum(jnp.tanh(conv2d_resample(x, w, F, up, down, padding, groups)) ** 2)

    def penalty(w, x):
        grad_x = jax.grad(loss)(x, w)
        return jnp.sum(grad_x**2), jax.grad(loss, argnums=1)(x, w)

    def derivatives():
        per_batch = jax.vmap(jax.value_and_grad(penalty, argnums=(0, 1), has_aux=True), in_axes=(None, 0))
        fn = jax.jit(lambda w, x: per_batch(w, x))
        hlo = fn.lower(w, x).as_text()
        return fn(w, x), hlo

    with jax.enable_x64(True):
        with gradient_rule("forward"):
            ours, ours_hlo = derivatives()
        with gradient_rule("xla"):
            xlas, xlas_hlo = derivatives()
    assert ours_hlo != xlas_hlo  # two different programs
    assert ours[0][0].dtype == np.float64
    for a, b in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(xlas), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10 * np.abs(b).max())


@pytest.mark.parametrize("minibatches,groups", [(1, 1), (3, 1), (3, 2)])
def test_forward_form_weight_gradients_under_vmap_are_xlas_and_differentiable(minibatches, groups):
    """The first-order weight gradient per minibatch (XLA's rule for one, batched per-tap matmuls for
    several) and a penalty on it differentiated again in w and x: equal to XLA's rule in float64."""
    rng = np.random.default_rng(minibatches + groups)
    x, w = rng.standard_normal((minibatches, 2, 8, 8, 4)), rng.standard_normal((8, 4 // groups, 3, 3))

    def loss(x, w):
        return jnp.sum(jnp.tanh(conv2d_resample(x, w, F, padding=1, groups=groups)) ** 2)

    def weight_penalty(w, x):
        return jnp.sum(jax.grad(loss, argnums=1)(x, w) ** 2)

    def derivatives():
        fn = jax.jit(jax.vmap(jax.value_and_grad(weight_penalty, argnums=(0, 1)), in_axes=(None, 0)))
        return fn(w, x)

    with jax.enable_x64(True):
        with gradient_rule("forward"):
            ours = derivatives()
        with gradient_rule("xla"):
            xlas = derivatives()
    for a, b in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(xlas), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10 * np.abs(b).max())
