"""TensorFlow's AdamOptimizer, which NVIDIA's TF code (PGGAN, StyleGAN1, StyleGAN2's TF loop) trains with:
`state.make_optimizer` with ``adam_epsilon_hat`` against TF's ApplyAdam kernel written out in NumPy float64
(lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t); var -= lr_t * m / (sqrt(v) + eps)), with the lazy-regularisation
scaling of stylegan2's TF loop (lr, b1 and b2 to the power interval / (interval + 1))."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from stylegan_jax.training.config import lineage_defaults
from stylegan_jax.training.state import lazy_ratio, make_optimizer


def tf_adam_steps(grads: list[np.ndarray], lr: float, b1: float, b2: float, eps: float) -> np.ndarray:
    """The total update of TF's ApplyAdam over ``grads`` (one per step), float64."""
    m = v = total = np.zeros_like(grads[0])
    for t, g in enumerate(grads, start=1):
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        total = total - lr_t * m / (np.sqrt(v) + eps)
    return total


@pytest.mark.parametrize("interval", [None, 16])
def test_adam_epsilon_hat_is_tensorflows_adam(interval):
    cfg = lineage_defaults("stylegan2")
    cfg.update(adam_epsilon_hat=True, betas=(0.5, 0.99), eps=1e-8)
    lr = 0.002
    tx = make_optimizer(lr, cfg, interval)
    # Gradients from 1e-9 (where eps dominates and TF's form differs from PyTorch's) to 1.
    scales = np.float32([1e-9, 3e-8, 1e-7, 1e-6, 1e-3, 1.0])
    rng = np.random.default_rng(0)
    grads = [scales * rng.uniform(0.5, 1.5, scales.shape).astype(np.float32) for _ in range(5)]
    params = jnp.zeros(scales.shape, jnp.float32)
    state = tx.init(params)
    for g in grads:
        updates, state = tx.update(jnp.asarray(g), state, params)
        params = optax.apply_updates(params, updates)
    ratio = lazy_ratio(interval)
    b1, b2 = 0.5**ratio, 0.99**ratio
    expected = tf_adam_steps([g.astype(np.float64) for g in grads], lr * ratio, b1, b2, 1e-8)
    np.testing.assert_allclose(np.asarray(params), expected, rtol=2e-5)
    # PyTorch's form (eps after the bias correction) misses the smallest gradients' steps.
    cfg.adam_epsilon_hat = False
    pytorch = make_optimizer(lr, cfg, interval)
    pytorch_params = jnp.zeros(scales.shape, jnp.float32)
    pytorch_state = pytorch.init(pytorch_params)
    for g in grads:
        updates, pytorch_state = pytorch.update(jnp.asarray(g), pytorch_state, pytorch_params)
        pytorch_params = optax.apply_updates(pytorch_params, updates)
    assert abs(float(pytorch_params[0]) / expected[0] - 1) > 0.1
