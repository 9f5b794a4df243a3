"""The lineage's experiments (GAN, cGAN, WGAN, WGAN-GP, hinge) take a step on 4 fake devices whose losses
are the objectives' closed forms; DCGAN's per-minibatch batch norm keeps a step independent of the device
count."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax import metrics
from stylegan_jax.metrics import class_accuracy
from stylegan_jax.network_snapshot import load_network
from stylegan_jax.training.config import load_experiment
from stylegan_jax.training.loop import Trainer, train
from stylegan_jax.training.reporting import Reporter
from stylegan_jax.training.steps import active_phases
from tests.training.step_inputs import noise_key, phase_inputs, training_labels


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


def g_loss(loss: str, logits) -> np.ndarray:
    """G's per-sample loss in closed form: -log sigmoid(l) (non-saturating), log(1 - sigmoid(l)) (minimax),
    -l (against a critic)."""
    l = np.asarray(logits, np.float64)  # noqa: E741
    return {"nonsaturating": np.logaddexp(0, -l), "minimax": -np.logaddexp(0, l)}.get(loss, -l)


def d_loss(loss: str, fake, real) -> float:
    """D's loss in closed form: logistic, Wasserstein (WGAN, WGAN-GP without its penalty) or hinge."""
    f, r = np.asarray(fake, np.float64), np.asarray(real, np.float64)
    if loss in ("nonsaturating", "minimax"):
        return float(np.mean(np.logaddexp(0, f)) + np.mean(np.logaddexp(0, -r)))
    if loss == "hinge":
        return float(np.mean(np.maximum(0, 1 + f)) + np.mean(np.maximum(0, 1 - r)))
    return float(np.mean(f) - np.mean(r))


@pytest.mark.parametrize("experiment, overrides", [
    ("gan", {"loss": "minimax"}),
    ("cgan", {}),
    ("cgan", {"D.conditioning": "concat", "G.upsample": "transposed"}),
    ("wgan", {}),
    ("wgan_gp", {}),
    ("gan", {"loss": "hinge"}),
])
def test_lineage_iteration_gives_the_closed_form_losses(data_dir, tmp_path, experiment, overrides):
    """Iteration 0 (G_main, D_main) on 4 devices: the reported losses, scores and WGAN-GP penalty equal the
    closed forms of the objective on D's logits, recomputed minibatch by minibatch from the same inputs
    (``step_inputs``); G's batch-norm running averages are the mean of the minibatches' updates; G_ema = G
    (ema_kimg 0); WGAN's clipped weights are exactly +-clip where the step could not bring them inside."""
    cfg = tiny_dcgan(data_dir, experiment)
    for key, value in overrides.items():
        node, leaf = (cfg, key) if "." not in key else (cfg[key.split(".")[0]], key.split(".")[1])
        node[leaf] = value
    n = cfg.n_critic
    assert [active_phases(cfg, s) for s in range(n + 1)] == (
        [["G_main", "D_main"]] + [["D_main"]] * (n - 1) + [["G_main", "D_main"]])
    trainer = Trainer(cfg, tmp_path)
    G, D, batch_gpu, alpha = trainer.G, trainer.D, trainer.layout.batch_gpu, np.float32(1)
    reals, labels = trainer.next_batch()
    state = trainer.initial_state()
    before = jax.device_get(state)
    state, g_metrics = trainer.phases["G_main"](state, reals, labels, alpha, np.float32(0))
    mid = jax.device_get(state)
    state, d_metrics = trainer.phases["D_main"](state, reals, labels, alpha, np.float32(0))
    after, g_metrics, d_metrics = jax.device_get((state, g_metrics, d_metrics))
    trainer.manager.close()
    reals, labels = np.asarray(reals), np.asarray(labels)

    @jax.jit
    def fakes_and_stats(g_vars, z, c, key):  # G in training mode on one minibatch (DCGAN: batch norm)
        img, new = G.apply(g_vars, z, c, train=True, rngs={"noise": noise_key(key)}, mutable=["buffers"])
        return img, new["buffers"]

    logits = jax.jit(lambda d_params, img, c: D.apply({"params": d_params}, img, c))

    def generated(state, phase):
        z, c, keys = phase_inputs(state, labels, phase, batch_gpu, G.z_dim, training_labels(trainer))
        out = [fakes_and_stats({"params": state.g_params, "buffers": state.g_buffers}, *x)
               for x in zip(z, c, keys, strict=True)]
        stats = jax.tree_util.tree_map(lambda *x: np.mean(np.stack(x), axis=0), *[b for _, b in out])
        return [img for img, _ in out], c, keys, stats

    def close(a, b, name):
        np.testing.assert_allclose(float(a), b, rtol=1e-4, atol=1e-5, err_msg=name)

    # G_main at the initial parameters.
    img, c, _, stats = generated(before, "G_main")
    fake = np.stack([logits(before.d_params, x, y) for x, y in zip(img, c, strict=True)])
    close(g_metrics["Loss/G/loss"], np.mean(g_loss(cfg.loss, fake)), "G loss")
    close(g_metrics["Loss/scores/fake"], np.mean(fake), "G's fake score")
    # NVIDIA's per-sample statistics: beside each mean, the mean of the samples' squares and their number
    close(g_metrics["Loss/G/loss@squares"], np.mean(np.square(g_loss(cfg.loss, fake))), "G loss's squares")
    assert float(g_metrics["Loss/G/loss@count"]) == fake.size
    for a, b in zip(jax.tree_util.tree_leaves(mid.g_buffers), jax.tree_util.tree_leaves(stats), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    # D_main: fakes of G after G_main, D at its initial parameters.
    img, c, keys, stats = generated(mid, "D_main")
    fake = np.stack([logits(mid.d_params, x, y) for x, y in zip(img, c, strict=True)])
    real = np.stack([logits(mid.d_params, x, y) for x, y in zip(reals, labels, strict=True)])
    expected = d_loss(cfg.loss, fake, real)
    if cfg.loss == "wgan_gp":  # lambda * (|dD/dx| - 1)^2 at x = real + u (fake - real), u ~ U[0, 1) per image
        penalties = []
        for x, y, lab, key in zip(reals, img, labels, keys, strict=True):
            u = np.asarray(jax.random.uniform(jax.random.fold_in(key, 1), (batch_gpu, 1, 1, 1), jnp.float32))
            mixed = jnp.asarray(x + (np.asarray(y) - x) * u)
            grads = jax.grad(lambda v, lab=lab: jnp.sum(logits(mid.d_params, v, lab)))(mixed)
            norms = np.sqrt(np.sum(np.square(np.asarray(grads, np.float64)), axis=(1, 2, 3)))
            penalties.append((norms - 1) ** 2)
        close(d_metrics["Loss/gradient_penalty"], np.mean(penalties), "gradient penalty")
        close(d_metrics["Loss/D/reg"], cfg.wgan_lambda * np.mean(penalties), "D's regulariser")
    close(d_metrics["Loss/D/loss"], expected, "D loss")
    close(d_metrics["Loss/signs/fake"], np.mean(np.sign(fake)), "fake signs")
    close(d_metrics["Loss/signs/real"], np.mean(np.sign(real)), "real signs")
    close(d_metrics["Loss/scores/fake"], np.mean(fake), "fake score")
    close(d_metrics["Loss/scores/real"], np.mean(real), "real score")
    close(d_metrics["Loss/scores/real@squares"], np.mean(np.square(real)), "real scores' squares")
    assert float(d_metrics["Loss/scores/real@count"]) == real.size == float(d_metrics["Loss/D/loss@count"])
    for a, b in zip(jax.tree_util.tree_leaves(after.g_buffers), jax.tree_util.tree_leaves(stats), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert cfg.ema_kimg == 0 and cfg.ema_beta is None  # beta = 0.5 ** (batch / 1e-8) = 0: G_ema is G
    for a, b in zip(jax.tree_util.tree_leaves((after.g_ema_params, after.g_ema_buffers)),
                    jax.tree_util.tree_leaves((after.g_params, after.g_buffers)), strict=True):
        np.testing.assert_array_equal(a, b)
    if cfg.wgan_clip:  # RMSProp's first step moves a weight by at most lr / sqrt(1 - 0.99) = 10 lr
        clip, clipped = cfg.wgan_clip, 0
        for p0, p1 in zip(jax.tree_util.tree_leaves(mid.d_params), jax.tree_util.tree_leaves(after.d_params),
                          strict=True):
            outside = np.abs(p0) > clip + 10 * cfg.D_lr
            np.testing.assert_array_equal(p1[outside], np.sign(p0[outside]) * np.float32(clip))
            assert np.abs(p1).max() <= clip and np.abs(p1 - np.clip(p0, -clip, clip)).max() <= 10 * cfg.D_lr * 1.001
            clipped += outside.sum()
        assert clipped > 100  # N(0, 0.02) initial weights: most lie outside [-0.01, 0.01]


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
    calls, scored = [], []

    def calc_metric(name, *, G, G_vars, family, dataset, mirror, progress, subset, subset_seed):
        calls.append((name, sorted(G_vars), G.img_resolution, mirror, family.name))
        scored.append(jax.tree.map(np.asarray, G_vars))
        return {"results": {f"{name}_value": 1.5}, "metric": name}

    monkeypatch.setattr(metrics, "calc_metric", calc_metric)
    for name in ("m1", "m2"):  # registered, so that the config check before training accepts them
        monkeypatch.setitem(metrics.METRICS, name, None)
    logged = []
    scalars = Reporter.scalars
    monkeypatch.setattr(Reporter, "scalars", lambda self, values, nimg: (logged.extend(values), scalars(self, values,
                                                                                                        nimg)))
    cfg = tiny_dcgan(data_dir, "cgan", kimg=0.016, tick=0.008, snap=2, metrics=("m1", "m2"))
    train(cfg, tmp_path)
    # at NVIDIA's tick 0 (the first iteration) and at the end
    assert calls == [(m, ["buffers", "params"], 16, False, "dcgan") for _ in range(2) for m in ("m1", "m2")]
    # what was scored is the G_ema the snapshot holds (the weights of that point, not of a later step)
    snapshot = load_network(tmp_path / "network-snapshot-000000.016")
    assert jax.tree.structure(scored[-1]) == jax.tree.structure(snapshot.G_ema)
    for a, b in zip(jax.tree.leaves(scored[-1]), jax.tree.leaves(snapshot.G_ema), strict=True):
        np.testing.assert_array_equal(a, b)
    lines = [json.loads(line) for line in (tmp_path / "metric-m1.jsonl").read_text().splitlines()]
    assert [line["snapshot_pkl"] for line in lines] == ["network-snapshot-000000.008", "network-snapshot-000000.016"]
    assert all(line["results"] == {"m1_value": 1.5} for line in lines)
    assert {"Metrics/m1_value", "Metrics/m2_value"} <= set(logged)
    log = (tmp_path / "log.txt").read_text().splitlines()  # printed and logged as NVIDIA's report_metric
    assert [json.loads(line)["snapshot_pkl"] for line in log if line.startswith('{"results"') and '"m1"' in line] == [
        "network-snapshot-000000.008", "network-snapshot-000000.016"]

    # A process killed after the last checkpoint, before m2's result was written: run again, the finished run
    # computes only what its snapshot point lacks.
    (tmp_path / "metric-m2.jsonl").unlink()
    calls.clear()
    train(cfg, tmp_path)
    assert [call[0] for call in calls] == ["m2"]
    assert json.loads((tmp_path / "metric-m2.jsonl").read_text())["snapshot_pkl"] == "network-snapshot-000000.016"

    # The newest checkpoint unreadable: the run falls back to the one before and saves the last snapshot again,
    # whose results replace the earlier ones (one line per snapshot).
    newest = max((tmp_path / "checkpoints").iterdir(), key=lambda path: int(path.name))
    (newest / "meta" / "metadata").write_text("{ garbage")
    calls.clear()
    train(cfg, tmp_path)
    assert [call[0] for call in calls] == ["m2", "m1", "m2"]  # m2 missed the resumed point's snapshot (above)
    for name in ("m1", "m2"):
        lines = (tmp_path / f"metric-{name}.jsonl").read_text().splitlines()
        assert [json.loads(line)["snapshot_pkl"] for line in lines] == [
            "network-snapshot-000000.008", "network-snapshot-000000.016"]
