"""R3GAN's objective, penalties, schedules and scheduled Adam against closed forms and NumPy float64
re-derivations of R3GAN's formulas (``R3GAN/Trainer.py``, ``training/training_loop.py``) and PyTorch's Adam."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from stylegan_jax import losses
from stylegan_jax.training import hyperparams
from stylegan_jax.training.config import lineage_defaults
from stylegan_jax.training.state import make_optimizer, set_adam_schedule


def softplus(x):
    return np.logaddexp(0.0, x)


def test_relativistic_pairing_losses():
    rng = np.random.default_rng(0)
    fake, real = rng.standard_normal((2, 6, 1)) * 3
    g = losses.generator_relativistic(jnp.asarray(fake, jnp.float32), jnp.asarray(real, jnp.float32))
    np.testing.assert_allclose(g, softplus(-(fake - real)), rtol=1e-5)
    d_pair, d_zero = losses.discriminator_relativistic(jnp.asarray(fake, jnp.float32), jnp.asarray(real, jnp.float32))
    np.testing.assert_allclose(d_pair, softplus(-(real - fake)), rtol=1e-5)
    np.testing.assert_array_equal(d_zero, 0)
    # Relativistic: shifting both logits by a constant changes nothing.
    shifted = losses.generator_relativistic(jnp.asarray(fake + 5, jnp.float32), jnp.asarray(real + 5, jnp.float32))
    np.testing.assert_allclose(shifted, g, rtol=1e-5)
    assert losses.OBJECTIVES["rpgan"].pairs and not losses.OBJECTIVES["nonsaturating"].pairs


def test_r1_and_r2_are_squared_gradient_norms_by_finite_differences():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 3, 2))

    def d_np(x):  # a nonlinear critic, float64
        return np.sum(np.tanh(a * x) * x, axis=(1, 2, 3))

    def d_fn(x):
        return jnp.sum(jnp.tanh(jnp.asarray(a, jnp.float32) * x) * x, axis=(1, 2, 3))[:, None]

    reals, fakes = rng.standard_normal((2, 4, 3, 3, 2))
    cfg = lineage_defaults("stylegan2")
    cfg.update(loss="rpgan", r1_gamma=0.5, lazy_regularization=False)
    by_name = {p.name: p for p in losses.d_main_penalties(cfg)}
    assert list(by_name) == ["r1_penalty", "r2_penalty"]
    assert [p.grads_at for p in by_name.values()] == [("reals",), ("fakes",)]
    grads = {at: losses.input_gradients(d_fn, jnp.asarray(x, jnp.float32))[1] for at, x in (("reals", reals),
                                                                                          ("fakes", fakes))}
    r1 = by_name["r1_penalty"].per_sample(None, None, None, None, grads, None, 1.0)
    r2 = by_name["r2_penalty"].per_sample(None, None, None, None, grads, None, 1.0)
    # While growing, the gradient is that with respect to the full-resolution images: scaled by training / full.
    for name, unscaled in (("r1_penalty", r1), ("r2_penalty", r2)):
        np.testing.assert_allclose(by_name[name].per_sample(None, None, None, None, grads, None, 0.25),
                                   np.asarray(unscaled) / 16, rtol=1e-6)
    for x, got in ((reals, r1), (fakes, r2)):
        eps, grad = 1e-6, np.zeros_like(x)
        for idx in np.ndindex(x.shape[1:]):
            step = np.zeros_like(x)
            step[(slice(None), *idx)] = eps
            grad[(slice(None), *idx)] = (d_np(x + step) - d_np(x - step)) / (2 * eps)
        np.testing.assert_allclose(got, np.sum(grad**2, axis=(1, 2, 3)), rtol=1e-4)
    # One gamma weights both: (gamma / 2) * (R1 + R2) (R3GAN's Trainer); r2_gamma sets R2's own.
    hyper = hyperparams.at(cfg, 0)
    assert [p.weight(hyper) for p in by_name.values()] == [0.25, 0.25]
    cfg.r2_gamma = 2.0
    assert by_name["r2_penalty"].weight(hyperparams.at(cfg, 0)) == 1.0
    cfg.update(loss="nonsaturating", r2_gamma=None)  # no R2 without a pairing objective unless asked
    assert [p.name for p in losses.d_main_penalties(cfg)] == ["r1_penalty"]


def r3gan_cosine(cur_nimg, base_value, total_nimg, final_value):
    """R3GAN's cosine_decay_with_warmup(warmup_nimg=0, hold_base_value_nimg=0), in float64."""
    decay = 0.5 * (1 + np.cos(np.pi * cur_nimg / float(total_nimg)))
    value = base_value + (1 - decay) * (final_value - base_value)
    return float(np.where(cur_nimg > total_nimg, final_value, value))


def test_schedules_follow_r3gans_formula_at_several_steps():
    from stylegan_jax.training.config import load_experiment

    cfg = load_experiment("r3gan_ffhq256")
    total = 2e7
    at = jax.jit(lambda nimg: hyperparams.at(cfg, nimg))
    for nimg in (0, 256, 1e6, 5e6, 1e7, 1.5e7, 2e7 - 256, 2e7, 3e7):
        values = at(jnp.float32(nimg))
        expected = {"G_lr": r3gan_cosine(nimg, 2e-4, total, 5e-5), "D_lr": r3gan_cosine(nimg, 2e-4, total, 5e-5),
                    "beta2": r3gan_cosine(nimg, 0.9, total, 0.99),
                    "r1_gamma": r3gan_cosine(nimg, 150, total, 15), "r2_gamma": r3gan_cosine(nimg, 150, total, 15),
                    "ema_kimg": r3gan_cosine(nimg, 0, total, 500e3) / 1000, "p": r3gan_cosine(nimg, 0, total, 0.3)}
        for key, value in expected.items():
            assert float(values[key]) == pytest.approx(value, rel=2e-6, abs=1e-9), (nimg, key)
    assert at._cache_size() == 1  # one compilation for every step
    cfg.decay_kimg = 0.0
    assert hyperparams.at(cfg, 1e6)["G_lr"] == 2e-4  # nothing decays: the base values, as Python floats


@pytest.mark.parametrize("reg_interval", [None, 4])
def test_scheduled_adam_is_pytorchs_adam_with_the_current_beta2(reg_interval):
    """PyTorch's Adam with betas (0, b2_t) and lr_t changed before each step (R3GAN sets them per
    iteration): m = g, v = b2_t v + (1 - b2_t) g^2, update = lr_t m / (sqrt(v) / sqrt(1 - b2_t^t) + eps).
    With a lazy regulariser every k steps (a scheduled StyleGAN2 run), NVIDIA's scaling of this step's values:
    lr_t * k / (k + 1) and b2_t ** (k / (k + 1))."""
    cfg = lineage_defaults("r3gan")
    cfg.update(betas=(0.0, 0.9), eps=1e-8)
    tx = make_optimizer(2e-4, cfg, reg_interval, scheduled=True)
    ratio = 1.0 if reg_interval is None else 4 / 5
    rng = np.random.default_rng(2)
    param = rng.standard_normal(5)
    state, p, v = tx.init(jnp.asarray(param, jnp.float32)), param.copy(), np.zeros(5)
    for t in range(1, 6):
        lr, b2 = 2e-4 - 1e-5 * t, 0.9 + 0.015 * t
        grad = rng.standard_normal(5)
        state = set_adam_schedule(state, lr, b2, reg_interval)
        updates, state = tx.update(jnp.asarray(grad, jnp.float32), state)
        got = np.asarray(optax.apply_updates(jnp.asarray(p, jnp.float32), updates), np.float64)
        lr, b2 = lr * ratio, b2**ratio
        v = b2 * v + (1 - b2) * grad**2
        p = p - lr * grad / (np.sqrt(v) / np.sqrt(1 - b2**t) + 1e-8)
        np.testing.assert_allclose(got, p, rtol=1e-5, atol=1e-7)


def test_bad_schedules_are_one_error_naming_the_key():
    from stylegan_jax.errors import ConfigError

    cfg = lineage_defaults("r3gan")
    cfg.decay_kimg = 10.0
    cfg.decay.p = 0.3
    with pytest.raises(ConfigError, match="--config.decay.p: .* needs --aug=fixed"):
        hyperparams.check(cfg)
    cfg.update(aug="fixed", optimizer="rmsprop")
    cfg.decay.G_lr = 1e-5
    with pytest.raises(ConfigError, match="needs --config.optimizer='adam'"):
        hyperparams.check(cfg)
    cfg.update(optimizer="adam", r1_gamma=0.0)  # R3GAN's one gamma: R1 and R2 off from the start
    cfg.decay.r1_gamma = 0.2
    with pytest.raises(ConfigError, match=r"^r1_gamma 0 \(--gamma or --config.r1_gamma\) turns the penalty off, but "
                       r"the run schedules r1_gamma to 0.2 \(--config.decay.r1_gamma\): give "
                       "--config.decay.r1_gamma=None too to keep it off, or a start above 0$"):
        hyperparams.check(cfg)
    cfg.decay.r1_gamma = None
    hyperparams.check(cfg)  # off throughout
    cfg.update(r1_gamma=1.0, r2_gamma=0.0)
    cfg.decay.r2_gamma = 0.5
    with pytest.raises(ConfigError, match=r"^r2_gamma 0 \(--config.r2_gamma\) turns the penalty off"):
        hyperparams.check(cfg)
    cfg.update(r1_gamma=0.0, r2_gamma=None)  # R2 follows R1's 0, and only R2 is scheduled
    with pytest.raises(ConfigError, match=r"^r2_gamma None \(following r1_gamma 0.0 under this objective, or R2 off\) "
                       r"turns the penalty off, but the run schedules r2_gamma to 0.5"):
        hyperparams.check(cfg)
