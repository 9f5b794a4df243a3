import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax import losses


def test_logistic_losses_are_softplus():
    x = jnp.linspace(-5, 5, 11)[:, None]
    np.testing.assert_allclose(losses.generator_nonsaturating(x), np.log1p(np.exp(-np.asarray(x))), rtol=1e-5)
    fake, real = losses.discriminator_logistic(x, -x)
    np.testing.assert_allclose(fake, np.log1p(np.exp(np.asarray(x))), rtol=1e-5)
    np.testing.assert_allclose(real, np.log1p(np.exp(np.asarray(x))), rtol=1e-5)


def test_r1_penalty_of_a_quadratic_discriminator():
    # D(x) = sum(a * x^2) per image: dD/dx = 2 a x, so the penalty is sum((2 a x)^2).
    rng = np.random.default_rng(0)
    a, x = rng.standard_normal((4, 4, 2)), rng.standard_normal((3, 4, 4, 2))
    logits, grads = losses.input_gradients(lambda v: jnp.sum(a * v**2, axis=(1, 2, 3))[:, None], jnp.asarray(x))
    np.testing.assert_allclose(grads, 2 * a * x, rtol=1e-5)
    penalty = losses.squared_norms(grads)
    np.testing.assert_allclose(penalty, np.sum((2 * a * x) ** 2, axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(logits[:, 0], np.sum(a * x**2, axis=(1, 2, 3)), rtol=1e-5)


def test_path_lengths_of_a_linear_synthesis():
    # img = A @ w per ws entry: J^T y = A^T y, so |J^T y|^2 summed over w_dim, averaged over ws.
    # RGB: NVIDIA's noise is scaled by 1 / sqrt(H * W), not by the channels too
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4 * 4 * 3, 5))
    ws = jnp.asarray(rng.standard_normal((2, 3, 5)))

    def synthesis(ws):
        return jnp.einsum("pd,nkd->np", A, ws).reshape(-1, 4, 4, 3)

    key = jax.random.key(0)
    lengths = losses.path_lengths(synthesis, ws, key)
    y = np.asarray(jax.random.normal(key, (2, 4, 4, 3))) / 4.0
    grad = np.einsum("pd,np->nd", A, y.reshape(2, -1))  # the same for every ws entry
    np.testing.assert_allclose(lengths, np.sqrt(np.sum(grad**2, axis=1)), rtol=1e-5)


def test_pl_mean_update_and_penalty_gradient():
    # each minibatch lerps the stored mean by its own (as each of NVIDIA's GPUs its own copy), not in turn
    means = losses.update_pl_mean(jnp.float32(1.0), jnp.array([2.0, 3.0]), 0.01)
    np.testing.assert_allclose(means, [1.0 + 0.01 * (2.0 - 1.0), 1.0 + 0.01 * (3.0 - 1.0)], rtol=1e-6)

    # NVIDIA: the penalty's running mean carries this batch's gradient (factor decay), not the stored mean's.
    def loss(lengths):
        mean = losses.update_pl_mean(jnp.float32(1.0), jnp.mean(lengths)[None], 0.5)[0]
        return jnp.sum(losses.path_length_penalty(lengths, mean))

    lengths = jnp.array([1.0, 3.0])
    mean = 1.0 + 0.5 * (2.0 - 1.0)
    expected = [2 * (x - mean) - 0.5 * 0.5 * sum(2 * (m - mean) for m in [1.0, 3.0]) for x in [1.0, 3.0]]
    np.testing.assert_allclose(jax.grad(loss)(lengths), expected, rtol=1e-6)
