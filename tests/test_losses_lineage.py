"""The lineage's objectives against closed forms in NumPy float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
    assert set(losses.OBJECTIVES) == {"nonsaturating", "minimax", "wgan", "wgan_gp", "hinge", "rpgan"}


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


def test_the_config_chooses_the_objective_and_d_regularisers_as_values():
    from stylegan_jax.training import hyperparams
    from stylegan_jax.training.config import lineage_defaults

    cfg = lineage_defaults("pggan")
    cfg.update(loss="wgan_gp", epsilon_drift=0.001, r1_gamma=0.0)
    assert losses.objective(cfg).name == "wgan_gp"
    assert [p.name for p in losses.d_main_penalties(cfg)] == ["gradient_penalty", "epsilon_penalty"]
    assert [p.weight(hyperparams.at(cfg, 0)) for p in losses.d_main_penalties(cfg)] == [cfg.wgan_lambda, 0.001]
    cfg.update(loss="nonsaturating", epsilon_drift=0.0, r1_gamma=10.0, lazy_regularization=False)
    assert [(p.name, p.weight(hyperparams.at(cfg, 0))) for p in losses.d_main_penalties(cfg)] == [("r1_penalty", 5.0)]
    cfg.lazy_regularization = True  # R1 is then its own phase, D_reg
    assert losses.d_main_penalties(cfg) == []
    cfg.loss = "least_squares"
    with pytest.raises(ValueError, match="--config.loss: unknown objective 'least_squares'"):
        losses.objective(cfg)


def test_a_new_objective_is_one_entry_and_the_step_uses_it(monkeypatch, tmp_path):
    """An objective whose losses are identically zero gives zero gradients: D_main leaves D unchanged, where
    the non-saturating loss moves every D parameter."""
    from stylegan_jax.data import resolve_dataset
    from stylegan_jax.training.config import load_experiment
    from stylegan_jax.training.loop import Trainer

    monkeypatch.setitem(losses.OBJECTIVES, "zero",
                        losses.Objective("zero", lambda f: 0.0 * f, lambda f, r: (0.0 * f, 0.0 * r)))
    resolve_dataset("digits-16", data_dir=tmp_path)
    unchanged = {}
    for name in ("zero", "nonsaturating"):
        cfg = load_experiment("gan")
        cfg.update(tiny=True, data_dir=str(tmp_path), loss=name)
        trainer = Trainer(cfg, tmp_path / name)
        state = trainer.initial_state()
        before = jax.tree_util.tree_leaves(jax.device_get(state.d_params))
        state, _ = trainer.run_iteration(state, trainer.next_batch(), 0)
        after = jax.tree_util.tree_leaves(jax.device_get(state.d_params))
        unchanged[name] = [np.array_equal(a, b) for a, b in zip(before, after, strict=True)]
    assert all(unchanged["zero"]) and not any(unchanged["nonsaturating"])
