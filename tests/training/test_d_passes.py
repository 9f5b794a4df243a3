"""D's main step takes R1 and R2 from the passes that give its loss the logits: D runs once on the fakes and once
on the reals (as R3GAN's Trainer and NVIDIA's loss do), not once more per penalty."""

import numpy as np
import pytest

from stylegan_jax.training.config import load_experiment, shrink_to_tiny
from stylegan_jax.training.loop import Trainer
from stylegan_jax.training.steps import Phases


@pytest.mark.parametrize("experiment, penalties", [
    ("r3gan_cifar10", ["Loss/r1_penalty", "Loss/r2_penalty"]),  # R1 and R2 in every D step
    ("ablations/stylegan1_f", ["Loss/r1_penalty"]),  # R1 in every D step, not lazy
])
def test_d_main_runs_d_once_on_the_fakes_and_once_on_the_reals(experiment, penalties, data_dir, tmp_path,
                                                                 monkeypatch):
    cfg = load_experiment(experiment)
    cfg.tiny = True
    cfg = shrink_to_tiny(cfg)
    cfg.data_dir = str(data_dir)
    assert not cfg.lazy_regularization
    trainer = Trainer(cfg, tmp_path)
    state = trainer.initial_state()
    batch = trainer.device_batch(next(trainer.iterator))
    calls, run_D = [], Phases.run_D

    def counted(self, *args):
        calls.append(args)
        return run_D(self, *args)

    monkeypatch.setattr(Phases, "run_D", counted)
    outputs = trainer.phases["D_main"].eval_shape(state, *batch, np.float32(1), np.float32(0))[1]
    assert [name for name in penalties if name in outputs] == penalties
    assert len(calls) == 2


def test_lazy_d_reg_weighs_r1_at_the_reals_and_r2_at_gs_images(data_dir, tmp_path):
    """Lazy R1 and R2 together (R2 given its own gamma on a StyleGAN2 run): D_reg's gradient is that of
    ``D_reg_interval * (r1_gamma / 2 * mean |dD/dx|^2 at the reals + r2_gamma / 2 * mean |dD/dx|^2 at G's
    images)``, the images drawn as the phase draws them (phase index 3), each penalty at its own labels; read
    from Adam's first moment, which with beta1 = 0 is the gradient. The closed form with R2 left out or
    weighted by r1_gamma misses it."""
    import jax
    import jax.numpy as jnp

    from tests.training.conftest import tiny_config
    from tests.training.step_inputs import noise_key, phase_inputs, training_labels

    cfg = tiny_config(data_dir, r1_gamma=1.0, r2_gamma=3.0, D_reg_interval=2, style_mixing_prob=0.0,
                      betas=(0.0, 0.99), aug="noaug")
    trainer = Trainer(cfg, tmp_path, devices=jax.devices()[:1])
    state = trainer.initial_state()
    reals, labels = trainer.device_batch(next(trainer.iterator))
    before = jax.device_get(state)
    after, outputs = trainer.phases["D_reg"](state, reals, labels, np.float32(1), np.float32(0))
    mu = jax.device_get(after.d_opt)[0].mu  # optax's chain: scale_by_adam's state first
    reals, labels = jax.device_get((reals, labels))

    z, c, keys = phase_inputs(before, labels, "D_reg", trainer.layout.batch_gpu, trainer.G.z_dim,
                              training_labels(trainer))
    g_vars = {"params": before.g_params, "buffers": before.g_buffers}
    fakes = np.stack([trainer.G.apply(g_vars, z[k], c[k], rngs={"noise": noise_key(keys[k])})
                      for k in range(len(keys))])

    def mean_squared_grad_norm(d_params, images, images_labels):
        def per_minibatch(x, x_labels):
            grads = jax.grad(lambda x: jnp.sum(trainer.D.apply({"params": d_params}, x, x_labels)))(x)
            return jnp.sum(jnp.square(grads), axis=(1, 2, 3))

        return jnp.mean(jax.vmap(per_minibatch)(images, images_labels))

    mean_squared_grad_norm = jax.jit(mean_squared_grad_norm)

    def closed_form(d_params, r1_weight, r2_weight):
        return cfg.D_reg_interval * (r1_weight * mean_squared_grad_norm(d_params, reals, labels)
                                     + r2_weight * mean_squared_grad_norm(d_params, fakes, c))

    closed_form_grad = jax.jit(jax.grad(closed_form))  # one compile for the three weightings
    r1 = float(mean_squared_grad_norm(before.d_params, reals, labels))
    r2 = float(mean_squared_grad_norm(before.d_params, fakes, c))
    np.testing.assert_allclose(float(outputs["Loss/r1_penalty"]), r1, rtol=1e-5)
    np.testing.assert_allclose(float(outputs["Loss/r2_penalty"]), r2, rtol=1e-5)

    def misses(r1_weight, r2_weight) -> float:
        """The worst |mu - gradient| over D's largest gradient element (a bias's tiny gradient differs by
        float32 rounding relatively more: the phase differentiates the convolutions by the forward-form rule)."""
        pairs = list(zip(jax.tree_util.tree_leaves(mu), jax.tree_util.tree_leaves(
            closed_form_grad(before.d_params, r1_weight, r2_weight)), strict=True))
        return max(float(np.max(np.abs(m - g))) for m, g in pairs) / max(float(np.max(np.abs(g))) for _, g in pairs)

    assert misses(cfg.r1_gamma / 2, cfg.r2_gamma / 2) < 1e-4
    assert misses(cfg.r1_gamma / 2, 0.0) > 1e-2
    assert misses(cfg.r1_gamma / 2, cfg.r1_gamma / 2) > 1e-2
