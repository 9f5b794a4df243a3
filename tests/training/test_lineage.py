"""The lineage's experiments (GAN, cGAN, WGAN, WGAN-GP, hinge) train on 4 fake devices with finite, changing
losses; DCGAN's per-minibatch batch norm keeps a step independent of the device count."""

import jax
import numpy as np
import pytest

from stylegan_jax.training.config import load_experiment
from stylegan_jax.training.loop import Trainer
from stylegan_jax.training.steps import active_phases


def tiny_dcgan(data_dir, experiment, **overrides):
    """An experiment shrunk to digits-16, batch 8 in minibatches of 2, narrow networks."""
    c = load_experiment(experiment)
    c.update(dataset="digits-16", data_dir=str(data_dir), resolution=16, batch_size=8, batch_gpu=2, grid=2)
    c.G.update(z_dim=8, channel_base=128, channel_max=16, embed_dim=4)
    c.D.update(channel_base=128, channel_max=16)
    c.update(overrides)
    return c


def run(cfg, workdir, steps, devices=None):
    """``steps`` iterations; returns (final state, per-iteration metrics)."""
    trainer = Trainer(cfg, workdir, devices=devices)
    state, history = trainer.initial_state(), []
    for step in range(steps):
        state, metrics = trainer.run_iteration(state, trainer.next_batch(), step)
        history.append(jax.device_get(metrics))
    trainer.manager.close()
    return state, history


@pytest.mark.parametrize("experiment, overrides", [
    ("gan", {"loss": "minimax"}),
    ("cgan", {}),
    ("cgan", {"D.conditioning": "concat", "G.upsample": "transposed"}),
    ("wgan", {}),
    ("wgan_gp", {}),
    ("gan", {"loss": "hinge"}),
])
def test_lineage_trains_with_finite_changing_losses(data_dir, tmp_path, experiment, overrides):
    cfg = tiny_dcgan(data_dir, experiment)
    for key, value in overrides.items():
        node, leaf = (cfg, key) if "." not in key else (cfg[key.split(".")[0]], key.split(".")[1])
        node[leaf] = value
    steps = 2 * cfg.n_critic
    state, history = run(cfg, tmp_path, steps)
    assert [set(m) for m in history] == [set(active_phases(cfg, s)) for s in range(steps)]
    d_losses = [m["D_main"]["Loss/D/loss"] for m in history]
    g_losses = [m["G_main"]["Loss/G/loss"] for m in history if "G_main" in m]
    assert len(g_losses) == 2 and np.all(np.isfinite(d_losses + g_losses))
    assert len(set(np.round(d_losses, 6))) > 1 and g_losses[0] != g_losses[1]
    if cfg.loss == "wgan_gp":
        penalties = [m["D_main"]["Loss/gradient_penalty"] for m in history]
        assert np.all(np.isfinite(penalties)) and min(penalties) > 0
    if cfg.wgan_clip:
        assert max(float(np.abs(x).max()) for x in jax.tree_util.tree_leaves(state.d_params)) <= cfg.wgan_clip
    # G's batch-norm running averages moved from their initial (0, 1).
    means = [np.asarray(x) for x in jax.tree_util.tree_leaves(state.g_buffers)]
    assert means and any(np.abs(m - np.round(m)).max() > 0 for m in means)


def test_batch_norm_step_does_not_depend_on_the_device_count(data_dir, tmp_path):
    cfg = tiny_dcgan(data_dir, "cgan")
    results = [jax.tree_util.tree_leaves(jax.device_get(run(cfg, tmp_path / str(n), 2, jax.devices()[:n])[0]))
               for n in (1, 4)]
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
