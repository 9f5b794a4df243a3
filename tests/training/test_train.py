import logging
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.data import make_iterator, subset_indices
from stylegan_jax.errors import ConfigError
from stylegan_jax.training.loop import Trainer, TrainingDivergedError, _check_finite, run_config, train
from stylegan_jax.training.schedule import schedule
from stylegan_jax.training.steps import FINITE, Phases, active_phases
from tests.training.conftest import tiny_config, two_iterations


@pytest.fixture(scope="module")
def steps(data_dir, tmp_path_factory):
    """(conv2d's gradient rule, device count) -> every leaf of the state after `two_iterations` of the tiny
    config (iteration 0 runs all four phases), computed when a test first asks."""
    found = {}

    def get(conv_grad: str, num_devices: int) -> list[np.ndarray]:
        if (conv_grad, num_devices) not in found:
            cfg = tiny_config(data_dir, conv_grad=conv_grad)
            assert run_config(cfg, jax.devices()[:num_devices]).conv_grad == conv_grad
            found[conv_grad, num_devices] = two_iterations(cfg, jax.devices()[:num_devices],
                                                           tmp_path_factory.mktemp(f"{conv_grad}{num_devices}"))
        return found[conv_grad, num_devices]

    return get


@pytest.mark.parametrize("conv_grad", ["xla", "forward"])
def test_step_on_four_devices_equals_one_device(steps, conv_grad):
    """Every phase of iteration 0, then iteration 1, with 4 minibatches of 2 on 1 and on 4 devices, under
    each of conv2d's gradient rules."""
    for a, b in zip(steps(conv_grad, 1), steps(conv_grad, 4), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


@pytest.mark.slow
def test_one_device_step_with_forward_gradients_equals_xlas(steps, data_dir):
    """The default CPU path (one device: 'auto' is 'forward') against XLA's rule on the same device: every phase
    of iteration 0 (G main, path length, D main, R1), then iteration 1."""
    assert run_config(tiny_config(data_dir), jax.devices()[:1]).conv_grad == "forward"
    for a, b in zip(steps("forward", 1), steps("xla", 1), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_step_on_eight_devices_equals_one_device(data_dir, tmp_path):
    """The forward-form gradient rule on 8 devices with 2 minibatches on each (batch 32 in minibatches of 2:
    16 of them), in a process given 8 fake CPU devices (`tests.training.step_on_devices`): iteration 0's phases
    and iteration 1 equal the 1-device step's, as on 4 devices above."""
    out = tmp_path / "leaves.npz"
    env = dict(os.environ)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    subprocess.run([sys.executable, "-m", "tests.training.step_on_devices", str(data_dir), str(out), "8", "forward",
                    "32"], check=True, env=env, timeout=900)
    saved = np.load(out)
    count = len([k for k in saved if k.startswith("one_")])
    assert count == len([k for k in saved if k.startswith("many_")]) > 0
    for i in range(count):
        np.testing.assert_allclose(saved[f"many_{i}"], saved[f"one_{i}"], rtol=2e-4, atol=2e-5)


def test_non_finite_values_stop_the_run_within_a_tick(data_dir, tmp_path, monkeypatch):
    """A tick of 125 iterations: parameters poisoned in iteration 3 stop the run one iteration later (the
    per-iteration check, one iteration behind so that it never waits for the running one), not at the
    tick's end."""
    original, calls = Trainer.run_iteration, []

    def poisoning(self, state, batch, step, *args):
        calls.append(step)
        if step == 3:
            state = state.replace(g_params=jax.tree_util.tree_map(lambda p: p * np.nan, state.g_params))
        return original(self, state, batch, step, *args)

    monkeypatch.setattr(Trainer, "run_iteration", poisoning)
    with pytest.raises(TrainingDivergedError, match="iteration 3, phase G_main"):
        train(tiny_config(data_dir, kimg=2, tick=1), tmp_path)
    assert calls == [0, 1, 2, 3, 4]


def test_an_iteration_past_two_billion_images(data_dir, tmp_path):
    """R3GAN's ImageNet runs see 10 Gimg, past int32: D's step at nimg 3e9 (n_critic 2: iteration 1 runs D_main
    alone) takes G_ema's ramp-up there, beta = 0.5 ** (batch / min(ema_kimg * 1000, nimg * ema_rampup)), read
    back from G and a zeroed G_ema (a count wrapped to a negative one would give beta 0)."""
    cfg = tiny_config(data_dir, n_critic=2)
    trainer = Trainer(cfg, tmp_path, devices=jax.devices()[:1])
    state = trainer.initial_state()
    state = state.replace(g_ema_params=jax.tree_util.tree_map(jnp.zeros_like, state.g_ema_params))
    g = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(jax.device_get(state.g_params))])
    state, metrics = trainer.run_iteration(state, trainer.next_batch(), 1, 3_000_000_000)
    trainer.manager.close()
    assert list(metrics) == ["D_main"]
    ema = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(jax.device_get(state.g_ema_params))])
    moved = np.abs(g) > 1e-3
    beta = np.median(1 - ema[moved] / g[moved])
    assert beta == pytest.approx(0.5 ** (8 / min(cfg.ema_kimg * 1000, 3e9 * cfg.ema_rampup)), rel=1e-4)


def test_no_recompilation_inside_the_loop(data_dir, tmp_path, caplog):
    cfg = tiny_config(data_dir, G_reg_interval=2, D_reg_interval=3)
    trainer = Trainer(cfg, tmp_path)
    state = trainer.initial_state()
    batch = trainer.device_batch(next(trainer.iterator))
    state, _ = trainer.run_iteration(state, batch, 0)  # compiles all four phases
    jax.block_until_ready(state)
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        for step in range(1, 7):  # G_reg at 2, 4, 6; D_reg at 3, 6
            batch = trainer.device_batch(next(trainer.iterator))
            state, _ = trainer.run_iteration(state, batch, step)
        jax.block_until_ready(state)
    assert sum(len(active_phases(cfg, s)) for s in range(1, 7)) == 6 * 2 + 3 + 2
    compiles = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
    assert compiles == []


def test_non_finite_values_stop_the_run_naming_step_and_phase(data_dir, tmp_path, monkeypatch):
    with pytest.raises(TrainingDivergedError, match="non-finite Loss/D/loss .* iteration 7, phase D_main; the "
                                                    "last good checkpoint is kept"):
        _check_finite([(7, {"G_main": {"Loss/G/loss": 1.0, FINITE: True},
                            "D_main": {"Loss/D/loss": float("nan"), FINITE: False}})], checkpointed=True)
    with pytest.raises(TrainingDivergedError, match="parameters after iteration 8, phase G_main; the last good"):
        _check_finite([(7, {"D_main": {"Loss/D/loss": 1.0, FINITE: True}}),
                       (8, {"G_main": {"Loss/G/loss": 1.0, FINITE: False}, "D_main": {"Loss/D/loss": 1.0,
                                                                                     FINITE: False}})], True)

    original = Trainer.initial_state

    def poisoned(self):
        state = original(self)
        return state.replace(d_params=jax.tree_util.tree_map(lambda p: p * np.nan, state.d_params))

    monkeypatch.setattr(Trainer, "initial_state", poisoned)
    with pytest.raises(TrainingDivergedError, match="iteration 0, phase G_main; no checkpoint was saved before it"):
        train(tiny_config(data_dir, kimg=0.016), tmp_path)
    assert not list((tmp_path / "checkpoints").glob("[0-9]*"))  # nothing corrupt was saved


def test_a_subset_run_trains_on_nvidias_random_subset_only(data_dir, tmp_path):
    trainer = Trainer(tiny_config(data_dir, subset=12, seed=3), tmp_path)  # digits-16: 1797 images
    seen = np.concatenate([next(trainer.iterator)["image"] for _ in range(6)])  # 48 draws: every image, repeated
    everything = next(make_iterator(trainer.dataset_path, batch_size=1797, shuffle=False, num_epochs=1))["image"]
    kept = everything[subset_indices(1797, 12, 3)]
    assert {x.tobytes() for x in seen} == {x.tobytes() for x in kept}


def test_a_subset_or_dataset_smaller_than_the_process_count_is_refused(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(jax, "process_count", lambda: 2)  # each process reads its own share of the subset
    with pytest.raises(ConfigError, match="--subset 1: each of the 2 processes reads its own share"):
        Trainer(tiny_config(data_dir, subset=1), tmp_path)
    monkeypatch.setattr(jax, "process_count", lambda: 1798)  # the whole dataset (1797 images) alike
    with pytest.raises(ConfigError, match="holds 1797 images, and each of the 1798 processes reads its own share"):
        Trainer(tiny_config(data_dir), tmp_path)


@pytest.mark.parametrize("nan_to_num", [True, False])
def test_non_finite_gradients_are_cleaned_as_nvidias_loop_cleans_them_unless_turned_off(data_dir, tmp_path,
                                                                                        nan_to_num):
    """NVIDIA's nan_to_num(nan=0, posinf=1e5, neginf=-1e5) before Adam: a NaN gradient moves nothing and an
    infinite one moves by a finite step; R3GAN's loop (``grad_nan_to_num=False``) passes them to Adam."""
    trainer = Trainer(tiny_config(data_dir, grad_nan_to_num=nan_to_num), tmp_path)
    try:
        state = trainer.initial_state()
        layout, (g_tx, d_tx), _ = trainer.phases_for(schedule(trainer.cfg, 0))
        phases = Phases(trainer.cfg, trainer.family, trainer.G, trainer.D, g_tx, d_tx, layout, None, trainer.labels)
        leaves, tree = jax.tree.flatten(state.d_params)
        grads = jax.tree.unflatten(tree, [jnp.full_like(leaves[0], jnp.inf)] +
                                   [jnp.full_like(x, jnp.nan) for x in leaves[1:]])
        params, _ = phases.apply_updates("D", grads, state.d_opt, state.d_params, phases.hyper(0))
    finally:
        trainer.manager.close()
    after = jax.tree.leaves(params)
    if nan_to_num:
        assert np.isfinite(after[0]).all() and not np.array_equal(after[0], leaves[0])
        for a, b in zip(after[1:], leaves[1:], strict=True):
            np.testing.assert_array_equal(a, b)
    else:
        assert not any(np.isfinite(x).any() for x in after)


@pytest.mark.parametrize("finite", [False, True])
def test_the_tf_lineages_skip_a_phase_whose_gradients_are_not_all_finite(data_dir, tmp_path, finite):
    """``skip_nonfinite_updates`` (NVIDIA's TF optimisers: ``tf.cond(grad_ok, apply, no_op)``): one NaN anywhere
    leaves D's weights, Adam's moments and its step count as they were; finite gradients update as without it."""
    trainer = Trainer(tiny_config(data_dir), tmp_path)
    try:
        state = trainer.initial_state()
        layout, (g_tx, d_tx), _ = trainer.phases_for(schedule(trainer.cfg, 0))
    finally:
        trainer.manager.close()
    leaves, tree = jax.tree.flatten(state.d_params)
    grads = [jnp.full_like(x, 0.5 + i) for i, x in enumerate(leaves)]
    if not finite:
        grads[-1] = grads[-1].at[(0,) * grads[-1].ndim].set(jnp.nan)
    grads = jax.tree.unflatten(tree, grads)

    def updated(skip: bool):
        cfg = trainer.cfg.copy_and_resolve_references()
        cfg.skip_nonfinite_updates = skip
        phases = Phases(cfg, trainer.family, trainer.G, trainer.D, g_tx, d_tx, layout, None, trainer.labels)
        return jax.tree.leaves(phases.apply_updates("D", grads, state.d_opt, state.d_params, phases.hyper(0)))

    skipped = updated(True)
    expected = updated(False) if finite else jax.tree.leaves((state.d_params, state.d_opt))
    assert len(skipped) == len(expected)
    for a, b in zip(skipped, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    moved = [not np.array_equal(a, b) for a, b in zip(skipped[:len(leaves)], leaves, strict=True)]
    assert all(moved) if finite else not any(moved)
