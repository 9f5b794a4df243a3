"""Progressive growing: NVIDIA's schedule and real-image fade, one compilation per resolution, the optimisers
reset when a fade-in starts (resuming mid-fade-in: tests/training/test_resume.py)."""

import json
import logging

import jax
import numpy as np
import optax
import pytest

from stylegan_jax.network_snapshot import load_network
from stylegan_jax.training.config import load_experiment, shrink_to_tiny
from stylegan_jax.training.loop import Trainer, first_fakes_name, kimg_tag, snapshot_tick, train
from stylegan_jax.training.schedule import batch_unit, downsample, fade_reals, lod_changed, schedule


def tiny_pggan(data_dir):
    """PGGAN's experiment, tiny: 16x16 digits in batches of 8; 8x8 for 16 images, 16x16 fading in over 24
    (alpha 1/3, 2/3 at nimg 24, 32), then 16x16 from nimg 40 on; the schedule evaluated every 4 iterations
    (``minibatch_repeats``: at nimg 0, 32, 64, ...)."""
    c = load_experiment("pggan")
    c.update(tiny=True, data_dir=str(data_dir))
    c = shrink_to_tiny(c)
    c.growing.update(initial_resolution=8, transition_kimg=0.024)
    return c


def test_schedule_is_nvidias():
    c = load_experiment("pggan")
    c.resolution = 16
    # (kimg, resolution, lod, alpha): 4x4 stable, 8x8 fading in, 8x8 stable, 16x16 fading in, 16x16 for ever.
    for kimg, res, lod, alpha in [(0, 4, 2, 1), (599, 4, 2, 1), (900, 8, 1.5, 0.5), (1200, 8, 1, 1),
                                  (1799, 8, 1, 1), (2250, 16, 0.25, 0.75), (2400, 16, 0, 1), (9000, 16, 0, 1)]:
        s = schedule(c, kimg * 1000)
        assert (s.resolution, s.lod, s.alpha) == pytest.approx((res, lod, alpha)), kimg
    assert [schedule(c, k * 1000).batch_size for k in (0, 900, 2400)] == [512, 256, 128]
    assert [schedule(c, k * 1000).batch_gpu for k in (0, 900, 2400)] == [64, 32, 16]
    c.resolution = 1024
    assert schedule(c, 20000_000).G_lr == 0.003 and schedule(c, 0).G_lr == 0.001
    # progressive_growing_of_gans' tick_kimg_dict: kimg per tick at the training resolution (4x4 to 1024x1024)
    ticks = [schedule(c, (600 + 1200 * i) * 1000 - 1).tick for i in range(9)]
    assert ticks == [160, 140, 120, 100, 80, 60, 40, 20, 10]
    assert batch_unit(c) == 32
    # NVIDIA resets the optimisers when a fade-in starts (floor moves) and when it ends (ceil moves).
    assert lod_changed(2.0, 1.99) and lod_changed(1.01, 1.0) and not lod_changed(1.75, 1.5)
    c.growing.initial_resolution = 0
    assert schedule(c, 5000_000).resolution is None and schedule(c, 0).alpha == 1


@pytest.mark.parametrize("height, width", [(8, 8), (8, 16)])  # W x H too: the two axes kept apart
def test_reals_are_downsampled_and_faded_as_nvidia(height, width):
    x = np.random.default_rng(0).standard_normal((2, height, width, 3))
    boxes = x.reshape(2, height // 2, 2, width // 2, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(downsample(x.astype(np.float32), 2), boxes, rtol=1e-5)
    y = np.repeat(np.repeat(boxes, 2, axis=1), 2, axis=2)
    for alpha in (0.0, 0.3, 1.0):
        np.testing.assert_allclose(fade_reals(x.astype(np.float32), np.float32(alpha)), x + (y - x) * (1 - alpha),
                                   rtol=1e-5, atol=1e-6)


def adam_count(opt_state) -> int:
    return int(optax.tree_utils.tree_get(opt_state, "count"))


def test_one_compilation_per_resolution_and_optimiser_resets(data_dir, tmp_path, caplog):
    cfg = tiny_pggan(data_dir)
    cfg.minibatch_repeats = 1  # the schedule every iteration: each of its phases within a few iterations
    cfg.tick, cfg.tick_by_resolution = 1.0, ((8, 0.024), (16, 0.008))  # NVIDIA's tick_kimg_dict, tiny
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        state = train(cfg, tmp_path / "a", stop_at_step=2)  # 8x8 stable: 16 images
    compiles = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
    assert sum("g_main" in m for m in compiles) == sum("d_main" in m for m in compiles) == 1
    assert adam_count(state.g_opt) == adam_count(state.d_opt) == 2
    caplog.clear()
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        state = train(cfg, tmp_path / "a", stop_at_step=6)  # 8x8 once more, 16x16 fading in, 16x16 stable
    compiles = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
    assert sum("g_main" in m for m in compiles) == sum("d_main" in m for m in compiles) == 2  # 8x8 again, 16x16
    # Reset at nimg 24 (the fade-in starts) and 40 (it ends): one iteration since.
    assert adam_count(state.g_opt) == adam_count(state.d_opt) == 1
    log = (tmp_path / "a" / "log.txt").read_text()
    assert "growing from 8x8" in log and "Resuming" in log
    # Ticks (PGGAN's loop has no tick 0): the stop (16), then each iteration's own resolution's tick (NVIDIA's
    # sched.tick_kimg): 16 -> 24 at 8x8 ends none (its tick is 24 images), 24 -> 32 and 32 -> 40 at 16x16 (8)
    # one each.
    lines = [json.loads(line) for line in (tmp_path / "a" / "stats.jsonl").read_text().splitlines()]
    assert [round(line["Progress/kimg"]["mean"] * 1000) for line in lines] == [16, 32, 40, 48]


def test_the_phases_count_the_loops_images_when_the_batch_changes(data_dir, tmp_path, monkeypatch):
    """A growing run whose batch halves at 16x16 (8 -> 4): the images seen before each iteration (NVIDIA's
    cur_nimg) are 0, 8, 16, 24, 28, 32, not the step times the current batch (12, 16, 20 at 16x16), and G_ema's
    ramp-up takes them: beta = 0.5 ** (batch / min(ema_kimg * 1000, nimg * ema_rampup)), read back from G,
    G_ema before and G_ema after each iteration (PGGAN: G_ema follows G after D's step, before G's)."""
    cfg = tiny_pggan(data_dir)
    cfg.minibatch_repeats = 1  # the schedule every iteration
    cfg.growing.batch_size, cfg.growing.batch_gpu = ((16, 4),), ((16, 1),)
    cfg.ema_beta, cfg.ema_kimg, cfg.ema_rampup = None, 10.0, 0.5
    seen = []
    run_iteration = Trainer.run_iteration

    def recording(self, state, batch, step, nimg=None, sched=None):
        g, ema = jax.device_get((state.g_params, state.g_ema_params))  # before the phases donate the state
        state, metrics = run_iteration(self, state, batch, step, nimg, sched)
        seen.append((nimg, g, ema, jax.device_get(state.g_ema_params)))
        return state, metrics

    monkeypatch.setattr(Trainer, "run_iteration", recording)
    train(cfg, tmp_path, stop_at_step=6)
    assert [nimg for nimg, *_ in seen] == [0, 8, 16, 24, 28, 32]
    for nimg, g, before, after in seen[1:]:  # iteration 0: G_ema is G, beta cannot be read back
        batch = 8 if nimg < 24 else 4
        g, before, after = (np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(t)]) for t in (g, before,
                                                                                                          after))
        moved = np.abs(before - g) > 1e-4
        beta = np.median((after - g)[moved] / (before - g)[moved])
        assert beta == pytest.approx(0.5 ** (batch / min(10_000, nimg * 0.5)), rel=1e-3), nimg


def test_the_tf_loops_groups_of_iterations_and_ticks_are_nvidias():
    """Groups of 4 iterations in PGGAN's, StyleGAN's and StyleGAN2's TF loops (minibatch_repeats), 1 in
    stylegan2-ada-pytorch's; snapshot points at ticks 0, 10, 20 (StyleGAN2's TF loop, with tick 0), 10, 20
    (PGGAN's, whose ticks start at 1) and 1, 10, 20 (StyleGAN's: network_snapshot_ticks or tick 1); the first
    fakes grid fakes000000.png in PGGAN's and StyleGAN's loops, fakes_init.png in StyleGAN2's."""
    names = ("ablations/stylegan2_b", "pggan", "ablations/stylegan1_b", "ablations/stylegan2_f", "ffhq256")
    cfgs = [load_experiment(name) for name in names]
    assert [c.minibatch_repeats for c in cfgs] == [4, 4, 4, 4, 1]
    assert [c.tick_zero for c in cfgs] == [True, False, False, True, True]
    assert [[t for t in range(0 if c.tick_zero else 1, 25) if snapshot_tick(c, t)] for c in cfgs[:3]] == [
        [0, 10, 20], [10, 20], [1, 10, 20]]
    assert [first_fakes_name(c, 0) for c in cfgs] == [
        "fakes_init", "fakes000000", "fakes000000", "fakes_init", "fakes_init"]



@pytest.mark.parametrize("experiment", ["pggan", "ablations/stylegan1_f"])
def test_a_snapshot_taken_mid_growth_renders_what_the_run_trains(experiment, data_dir, tmp_path):
    """NVIDIA's G carries its lod: a network snapshot of a growing run (what generate and the metrics load)
    renders at the schedule's resolution and fade-in, enlarged to full size as the run's fakes grid, not
    through the untrained higher blocks; a grown run's snapshot is the plain network."""
    c = load_experiment(experiment)
    c.update(tiny=True, data_dir=str(data_dir))
    c = shrink_to_tiny(c)
    c.growing.update(initial_resolution=8, transition_kimg=0.024)
    trainer = Trainer(c, tmp_path)
    state = trainer.initial_state()
    z, labels = trainer.grid_inputs()
    for nimg, grown in ((8, (8, 1.0)), (24, (16, 1 / 3)), (64, None)):  # 8x8; 16x16 fading in; grown
        trainer.save_network(state, nimg)
        network = load_network(tmp_path / f"network-snapshot-{kimg_tag(c, nimg)}")
        if grown is None:
            assert "grown_resolution" not in network.G_kwargs
            continue
        assert (network.G_kwargs["grown_resolution"], network.G_kwargs["grown_alpha"]) == pytest.approx(grown)
        G = trainer.family.build_generator(network.G_kwargs)
        images = G.apply(network.G_ema, z, labels, noise_mode="const")
        np.testing.assert_allclose(images, trainer.fakes(state, schedule(c, nimg)), rtol=1e-5, atol=1e-5)
        assert not np.allclose(images, trainer.fakes(state, schedule(c, 64)), atol=1e-3)  # not the full network
