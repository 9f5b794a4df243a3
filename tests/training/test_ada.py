"""ADA in training: D sees augmented reals and fakes, p follows NVIDIA's controller (clamped at 0 only), moves
without recompiling, and lives in the state (a killed run resumes with its p: tests/training/test_preemption.py)."""

import json
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.durations import format_time
from stylegan_jax.training.config import load_experiment
from stylegan_jax.training.loop import Trainer, train
from stylegan_jax.training.schedule import schedule
from stylegan_jax.training.steps import AUG_FAKE, AUG_REAL, active_phases, augment_pipe
from tests.training.conftest import tiny_config
from tests.training.step_inputs import noise_key, phase_inputs, training_labels


def ada_config(data_dir, **overrides):
    return tiny_config(data_dir, **{"aug": "ada", "ada_interval": 4, "ada_kimg": 0.1, **overrides})


def test_the_controller_moves_p_as_nvidia_by_hand(data_dir, tmp_path):
    cfg = ada_config(data_dir, p=0.5)
    trainer = Trainer(cfg, tmp_path)
    state = trainer.initial_state()
    batch = trainer.device_batch(next(trainer.iterator))
    batch_size, interval, kimg = 8, 4, 0.1
    adjust = batch_size * interval / (kimg * 1000)  # 0.32 per update
    p = 0.5
    # (sum of signs, count) since the last update -> NVIDIA: p += sign(mean - target) * adjust, clamped at 0.
    for total, count in [(8.0, 10.0), (6.0, 10.0), (1.0, 10.0), (-3.0, 10.0), (-10.0, 10.0), (10.0, 10.0),
                         (10.0, 10.0), (10.0, 10.0), (10.0, 10.0)]:
        state = state.replace(aug={"p": state.aug["p"], "signs": jnp.array([total, count], jnp.float32)})
        state, out = trainer.phases["ADA"](state, *batch, np.float32(1), np.float32(0))
        p = max(p + np.sign(total / count - cfg.ada_target) * adjust, 0.0)
        assert float(state.aug["p"]) == pytest.approx(p, abs=1e-6)
        assert float(out["ADA/signs/real"]) == pytest.approx(total / count)
        np.testing.assert_array_equal(np.asarray(state.aug["signs"]), [0, 0])
    assert p == pytest.approx(1.28)  # clamped at 0 after (-10, 10); past 1 at the end, as NVIDIA's p goes


def test_d_counts_the_signs_of_every_real_it_sees(data_dir, tmp_path):
    """ADA's statistic: sign(D(x)) of every real that D_main and D_reg see, each with that phase's D (at p 0 the
    pipe leaves the images as they are), summed: D's logits written out, not the fakes' nor a count."""
    cfg = ada_config(data_dir)
    trainer = Trainer(cfg, tmp_path)
    state = trainer.initial_state()
    assert float(state.aug["p"]) == 0
    reals, labels = trainer.device_batch(next(trainer.iterator))
    assert active_phases(cfg, 0) == ["G_main", "G_reg", "D_main", "D_reg"]
    assert active_phases(cfg, 3)[-1] == "ADA"  # after the 4th iteration, as NVIDIA's batch_idx % 4 == 0
    phases, sched = trainer.phases_for(schedule(cfg, 0))[2], schedule(cfg, 0)
    expected = 0.0
    for name in active_phases(cfg, 0):
        if name.startswith("D"):
            logits = jax.vmap(lambda x, c, d=state.d_params: trainer.D.apply({"params": d}, x, c))(reals, labels)
            expected += float(np.sign(np.asarray(logits)).sum())
        state, _ = phases[name](state, reals, labels, np.float32(sched.alpha), np.float32(0))
    total, count = np.asarray(state.aug["signs"])
    assert count == 2 * 8  # D_main's 8 reals and D_reg's 8
    assert total == expected and abs(total) < count  # both signs occur: a wrong sign would show


def test_p_moves_without_recompiling(data_dir, tmp_path, caplog):
    cfg = ada_config(data_dir, ada_interval=1)
    trainer = Trainer(cfg, tmp_path)
    state = trainer.initial_state()
    batch = trainer.device_batch(next(trainer.iterator))
    state, _ = trainer.run_iteration(state, batch, 0)  # compiles every phase
    jax.block_until_ready(state)
    ps = []
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        for step in range(1, 6):
            state, _ = trainer.run_iteration(state, trainer.device_batch(next(trainer.iterator)), step)
            ps.append(float(state.aug["p"]))
    assert [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()] == []
    assert len(set(ps)) > 1, ps  # p moved (by 0.08 a step)


def test_noaug_has_no_augmentation_state_and_fixed_keeps_p(data_dir, tmp_path):
    assert Trainer(tiny_config(data_dir), tmp_path / "a").initial_state().aug == {}
    cfg = tiny_config(data_dir, aug="fixed", p=0.3)
    trainer = Trainer(cfg, tmp_path / "b")
    state = trainer.initial_state()
    assert "ADA" not in active_phases(cfg, 3)
    state, _ = trainer.run_iteration(state, trainer.device_batch(next(trainer.iterator)), 0)
    assert float(state.aug["p"]) == pytest.approx(0.3)


@pytest.mark.slow
def test_the_tick_line_shows_augment_and_the_sign_statistic(data_dir, tmp_path, capsys):
    """NVIDIA's status line, printed and in log.txt, with its statistics' values (stats.jsonl's), and ours
    after it: G's and D's losses and ``Loss/signs/real`` (one iteration, ADA's update after it: ada_interval 1;
    no path length and the colour pipe, the least to compile)."""
    state = train(ada_config(data_dir, ada_interval=1, kimg=0.008, pl_weight=0.0, augpipe="color"), tmp_path)
    ticks = [line for line in capsys.readouterr().out.splitlines() if line.startswith("tick 0 ")]
    logged = [line for line in (tmp_path / "log.txt").read_text().splitlines() if line.startswith("tick 0 ")]
    assert len(ticks) == 1 and logged == ticks
    stats = {k: v["mean"] for k, v in json.loads((tmp_path / "stats.jsonl").read_text().splitlines()[0]).items()
             if k != "timestamp"}
    assert -1 <= stats["Loss/signs/real"] <= 1 and stats["Progress/augment"] == float(state.aug["p"])
    assert ticks[0] == (
        f"tick 0     kimg 0.0      time {format_time(stats['Timing/total_sec']):<12s} sec/tick "
        f"{stats['Timing/sec_per_tick']:<7.1f} sec/kimg {stats['Timing/sec_per_kimg']:<7.2f} maintenance "
        f"{stats['Timing/maintenance_sec']:<6.1f} cpumem {stats['Resources/cpu_mem_gb']:<6.2f} gpumem 0.00   "
        f"reserved 0.00   augment {stats['Progress/augment']:.3f} G {stats['Loss/G/loss']:.3f} "
        f"D {stats['Loss/D/loss']:.3f} signs/real {stats['Loss/signs/real']:.3f}")


@pytest.mark.slow
def test_d_sees_augmented_images_and_g_learns_through_the_pipe(data_dir, tmp_path):
    """aug=fixed: with the same state, batch and keys, p = 1 changes D's scores of the reals and of the fakes
    (both augmented) and G's update (its gradient flows through the pipe: a blocked one would leave G as it
    was)."""
    # no style mixing: the reference below makes D_main's fakes with G alone
    trainer = Trainer(tiny_config(data_dir, aug="fixed", p=1.0, style_mixing_prob=0.0), tmp_path)
    batch = trainer.device_batch(next(trainer.iterator))

    def run(phase, p):  # a fresh state each time: the phases donate theirs
        state = trainer.initial_state()
        state = state.replace(aug={**state.aug, "p": jax.device_put(np.float32(p), state.aug["p"].sharding)})
        before = g_of(state)
        state, out = trainer.phases[phase](state, *batch, np.float32(1), np.float32(0))
        return before, g_of(state), {k: float(v) for k, v in out.items()}

    def g_of(state):  # every G parameter, flat
        return np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(jax.device_get(state.g_params))])

    _, _, plain = run("D_main", 0.0)
    _, _, augmented = run("D_main", 1.0)
    for name in ("Loss/scores/real", "Loss/scores/fake", "Loss/D/loss"):
        assert abs(augmented[name] - plain[name]) > 1e-4, (name, augmented[name], plain[name])
    # D's real scores: each minibatch's reals through the pipe at p 1 with the reals' own draw of its key
    state = trainer.initial_state()
    reals, labels = (np.asarray(x) for x in jax.device_get(batch))
    keys = phase_inputs(state, labels, "D_main", trainer.layout.batch_gpu, trainer.G.z_dim)[2]
    pipe, d_params = augment_pipe(trainer.cfg), jax.device_get(state.d_params)
    scores = jax.jit(jax.vmap(lambda x, c, key: trainer.D.apply(
        {"params": d_params}, pipe(x, jax.random.fold_in(key, AUG_REAL), 1.0), c)))(reals, labels, keys)
    assert augmented["Loss/scores/real"] == pytest.approx(float(np.mean(scores)), rel=1e-5)
    # ... and its fake scores: G's images of the phase's z and labels through the pipe with the fakes' own
    # draw (NVIDIA's run_D draws anew for each call), not the reals'
    z, c, keys = phase_inputs(state, labels, "D_main", trainer.layout.batch_gpu, trainer.G.z_dim,
                              training_labels(trainer))
    g_vars = jax.device_get({"params": state.g_params, "buffers": state.g_buffers})

    def fake_scores(draw):
        return jax.jit(jax.vmap(lambda z, c, key: trainer.D.apply({"params": d_params}, pipe(
            trainer.G.apply(g_vars, z, c, rngs={"noise": noise_key(key)}), jax.random.fold_in(key, draw), 1.0),
            c)))(z, c, keys)

    assert augmented["Loss/scores/fake"] == pytest.approx(float(np.mean(fake_scores(AUG_FAKE))), rel=1e-5)
    assert augmented["Loss/scores/fake"] != pytest.approx(float(np.mean(fake_scores(AUG_REAL))), rel=1e-3)
    start, plain, _ = run("G_main", 0.0)
    _, augmented, _ = run("G_main", 1.0)
    assert np.abs(augmented - start).max() > 1e-4  # G moved: a gradient through the pipe
    assert not np.allclose(augmented, plain, rtol=0, atol=1e-6)  # ... another than at p = 0


def test_fixed_augmentation_at_p_0_builds_no_pipe(data_dir):
    """NVIDIA builds no pipe for --aug fixed at p 0 (it would change nothing at a cost); at p > 0, and under
    R3GAN's schedule from p 0, the pipe runs."""
    assert augment_pipe(tiny_config(data_dir, aug="fixed", p=0.0)) is None
    assert augment_pipe(tiny_config(data_dir, aug="fixed", p=0.2)) is not None
    assert augment_pipe(tiny_config(data_dir, aug="ada", p=0.0)) is not None
    r3gan = load_experiment("r3gan_cifar10")
    assert r3gan.aug == "fixed" and r3gan.p == 0 and augment_pipe(r3gan) is not None
