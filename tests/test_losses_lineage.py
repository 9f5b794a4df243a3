"""The lineage's objectives against closed forms in NumPy float64."""

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax import losses


def test_objectives_per_sample():
    logits = np.linspace(-3, 3, 7)[:, None]
    x = jnp.asarray(logits, jnp.float32)
    np.testing.assert_allclose(losses.generator_minimax(x), np.log(1 - 1 / (1 + np.exp(-logits))), rtol=1e-5)
    np.testing.assert_allclose(losses.generator_wasserstein(x), -logits)
    fake, real = losses.discriminator_wasserstein(x, -x)
    np.testing.assert_allclose(fake, logits)
    np.testing.assert_allclose(real, logits)
    fake, real = losses.discriminator_hinge(x, x)
    np.testing.assert_allclose(fake, np.maximum(0, 1 + logits))
    np.testing.assert_allclose(real, np.maximum(0, 1 - logits))
    np.testing.assert_allclose(losses.epsilon_drift(x), logits[:, 0] ** 2, rtol=1e-6)
    assert set(losses.OBJECTIVES) == {"nonsaturating", "minimax", "wgan", "wgan_gp", "hinge"}


def test_gradient_penalty_of_a_quadratic_critic():
    # D(x) = sum(a * x^2): dD/dx at x^ = r + u (f - r) is 2 a x^, so the penalty is (|2 a x^| - 1)^2.
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4, 2)) * 0.1
    reals, fakes = rng.standard_normal((2, 3, 4, 4, 2))
    key = jax.random.key(3)
    penalty = losses.gradient_penalty(lambda v: jnp.sum(jnp.asarray(a, jnp.float32) * v**2, axis=(1, 2, 3))[:, None],
                                      jnp.asarray(reals, jnp.float32), jnp.asarray(fakes, jnp.float32), key)
    u = np.asarray(jax.random.uniform(key, (3, 1, 1, 1)), np.float64)
    mixed = reals + (fakes - reals) * u
    norms = np.sqrt(np.sum((2 * a * mixed) ** 2, axis=(1, 2, 3)))
    np.testing.assert_allclose(penalty, (norms - 1) ** 2, rtol=1e-5)
    assert len(set(np.round(np.asarray(penalty), 6))) == 3  # u differs per sample
