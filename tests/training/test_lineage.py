"""The lineage's experiments (GAN, cGAN, WGAN, WGAN-GP, hinge) train on 4 fake devices with finite, changing
losses; DCGAN's per-minibatch batch norm keeps a step independent of the device count."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax import metrics
from stylegan_jax.metrics import class_accuracy
from stylegan_jax.training.config import load_experiment
from stylegan_jax.training.loop import Trainer, train
from stylegan_jax.training.reporting import Reporter
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


def test_class_accuracy_judges_samples_by_their_class(data_dir):
    x, y = class_accuracy.real_images("digits-16", str(data_dir))
    classifier, real_accuracy = class_accuracy.train_classifier(x, y)
    assert x.shape == (1797, 256) and real_accuracy > 0.9
    means = np.stack([x[y == k].mean(axis=0) for k in range(10)]).reshape(10, 16, 16, 1)

    class MeanImage(nn.Module):  # "draws" the mean real image of the class, or of class 3 for every label
        z_dim: int = 4
        cheat: bool = False

        def __call__(self, z, c, noise_mode="const"):
            return jnp.asarray(means)[jnp.full(len(c), 3) if self.cheat else jnp.argmax(c, axis=1)]

    assert class_accuracy.class_accuracy(MeanImage(), {}, classifier, 10, per_class=3).min() == 1
    wrong = class_accuracy.class_accuracy(MeanImage(cheat=True), {}, classifier, 10, per_class=3)
    assert wrong[3] == 1 and wrong.sum() == 1


def test_metrics_are_computed_and_logged_at_snapshots(data_dir, tmp_path, monkeypatch):
    calls = []

    def calc_metric(name, *, G, G_vars, dataset, mirror, progress):
        calls.append((name, sorted(G_vars), G.img_resolution, mirror))
        return {"results": {f"{name}_value": 1.5}, "metric": name}

    monkeypatch.setattr(metrics, "calc_metric", calc_metric)
    logged = []
    scalars = Reporter.scalars
    monkeypatch.setattr(Reporter, "scalars", lambda self, values, nimg: (logged.extend(values), scalars(self, values,
                                                                                                        nimg)))
    cfg = tiny_dcgan(data_dir, "cgan", kimg=0.016, tick=0.008, snap=2, metrics=("m1", "m2"))
    train(cfg, tmp_path)
    assert calls == [("m1", ["buffers", "params"], 16, False), ("m2", ["buffers", "params"], 16, False)]
    line = json.loads((tmp_path / "metric-m1.jsonl").read_text())
    assert line["results"] == {"m1_value": 1.5} and line["snapshot_pkl"] == "network-snapshot-000000"
    assert {"Metrics/m1_value", "Metrics/m2_value"} <= set(logged)
