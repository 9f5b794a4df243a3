"""The two ablation ladders: every rung builds on another dataset, and trains a step in its tiny variant (slow:
twelve compilations of a training step)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.training.config import experiment_path, load_experiment
from stylegan_jax.training.loop import Trainer
from stylegan_jax.training.schedule import schedule
from tests.training.conftest import tiny_config

RUNGS = [f"ablations/{ladder}_{rung}" for ladder in ("stylegan1", "stylegan2") for rung in "abcdef"]
# FFHQ FIDs of the papers' Table 1, which each rung's docstring quotes.
FIDS = dict(zip(RUNGS, ["8.04", "5.25", "4.85", "4.88", "4.42", "4.40", "4.40", "4.39", "4.38", "4.34", "3.31",
                        "2.84"], strict=True))


def test_each_rung_differs_from_the_previous_as_the_papers_say():
    cfgs = {name: load_experiment(name) for name in RUNGS}
    s1 = [cfgs[f"ablations/stylegan1_{r}"] for r in "abcdef"]
    assert (s1[0].model, s1[0].loss, s1[0].epsilon_drift, s1[0].growing.initial_resolution) == ("pggan", "wgan_gp",
                                                                                                 0.001, 4)
    assert (s1[1].model, s1[1].loss, s1[1].r1_gamma, s1[1].growing.initial_resolution) == ("stylegan1",
                                                                                          "nonsaturating", 10, 8)
    assert [(c.G.use_styles, c.G.const_input_layer, c.G.use_noise, c.style_mixing_prob) for c in s1[1:]] == [
        (False, False, False, 0), (True, False, False, 0), (True, True, False, 0), (True, True, True, 0),
        (True, True, True, 0.9)]
    s2 = [cfgs[f"ablations/stylegan2_{r}"] for r in "abcdef"]
    assert [c.model for c in s2] == ["stylegan1"] + ["stylegan2_revised"] * 3 + ["stylegan2"] * 2
    assert [c.lazy_regularization for c in s2] == [False, False, True, True, True, True]
    assert [c.pl_weight for c in s2] == [0, 0, 0, 2, 2, 2] and [c.r1_gamma for c in s2] == [10] * 4 + [100, 10]
    assert [c.growing.initial_resolution for c in s2] == [8] * 4 + [0, 0]
    assert [c.G_lr for c in s2] == [0.001] * 4 + [0.002] * 2
    assert (s2[4].G.channel_base, s2[5].G.channel_base, s2[5].D.channel_base) == (16384, 32768, 32768)
    for name, cfg in cfgs.items():
        assert cfg.dataset == "ffhq1024" and cfg.resolution == 1024 and cfg.xflip
        assert f"FID {FIDS[name]}" in " ".join(experiment_path(name).read_text().split())



@pytest.mark.parametrize("name, resolution, tick", [
    ("ablations/stylegan2_e", 1024, 4.0), ("ablations/stylegan2_e", 256, 8.0), ("ablations/stylegan2_f", 512, 6.0),
    ("ablations/stylegan1_f", 64, 80.0), ("pggan", 128, 60.0)])
def test_a_run_that_does_not_grow_ticks_as_its_tf_loop_at_its_resolution(name, resolution, tick):
    """NVIDIA's TF ``TrainingSchedule``: ``tick_kimg_dict.get(resolution, tick_kimg_base)`` at the training
    resolution, which is the full one when not growing; ``tick`` where the table has none."""
    cfg = load_experiment(name)
    cfg.update(resolution=resolution)
    cfg.growing.initial_resolution = 0
    assert schedule(cfg, 0).resolution is None and schedule(cfg, 0).tick == tick
    cfg.tick_by_resolution = ((resolution * 2, 1.0),)
    assert schedule(cfg, 0).tick == cfg.tick


def test_the_tf_lineages_draw_each_grids_noise_anew_and_again_after_a_resume(data_dir, tmp_path):
    """NVIDIA's TF loops render each snapshot grid with ``Gs.run(is_validation=True)``, which draws the noise
    inputs anew (``randomize_noise``): the ladders' ``grid_noise`` is 'random', stylegan2-ada-pytorch's presets
    keep 'const'. Ours draws the noise from the seed and the grid's image count: a resumed run's grid at the
    same count is the same."""
    assert {load_experiment(name).grid_noise for name in RUNGS} == {"random"}
    assert load_experiment("ffhq256").grid_noise == load_experiment("quickstart").grid_noise == "const"
    trainers = {mode: Trainer(tiny_config(data_dir, grid_noise=mode), tmp_path / mode) for mode in ("random", "const")}
    state = trainers["random"].initial_state()
    state = state.replace(g_ema_params=jax.tree_util.tree_map_with_path(  # G's noise strengths start at 0: set 1
        lambda path, x: jnp.ones_like(x) if path[-1].key == "noise_strength" else x, state.g_ema_params))
    assert any(path[-1].key == "noise_strength" for path, _ in jax.tree_util.tree_leaves_with_path(state.g_ema_params))
    at_8, again_at_8, at_16 = (trainers["random"].fakes(state, nimg=nimg) for nimg in (8, 8, 16))
    np.testing.assert_array_equal(at_8, again_at_8)
    assert np.abs(at_16 - at_8).max() > 1e-3
    const_at_8, const_at_16 = (trainers["const"].fakes(state, nimg=nimg) for nimg in (8, 16))
    np.testing.assert_array_equal(const_at_8, const_at_16)
    assert np.abs(const_at_8 - at_8).max() > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNGS)
def test_rung_runs_on_another_dataset_and_trains_a_tiny_step(data_dir, tmp_path, name):
    cfg = load_experiment(name)
    cfg.update(dataset="digits-16", data_dir=str(data_dir), resolution=16, img_channels=1)
    cfg.metrics = ()  # the rungs' FID needs the user's Inception file (a run refuses to start without it)
    Trainer(cfg, tmp_path / "full").manager.close()  # full-size networks on 16x16 digits: the layout checks pass

    cfg.tiny = True
    trainer = Trainer(cfg, tmp_path / "tiny")
    sched = schedule(trainer.cfg, 0)
    assert sched.resolution == (4 if cfg.growing.initial_resolution else None)
    # Iteration 1 runs G_main and D_main (with R1 inside for the non-lazy rungs); rung D's iteration 0 also the
    # lazy R1 and path-length phases (the other lazy rungs' are the same code on the same or StyleGAN2's nets).
    step = 0 if name == "ablations/stylegan2_d" else 1
    state = trainer.initial_state()
    state, metrics = trainer.run_iteration(state, trainer.next_batch(sched), step, 0)
    trainer.manager.close()
    assert int(state.step) == 1
    assert set(metrics) == ({"G_main", "G_reg", "D_main", "D_reg"} if step == 0 else {"G_main", "D_main"})
    g, d = ({k: float(v) for k, v in m.items()} for m in jax.device_get((metrics["G_main"], metrics["D_main"])))
    if cfg.loss == "wgan_gp":  # a linear objective: D's loss is its reported parts, G's minus its fake score
        assert g["Loss/G/loss"] == pytest.approx(-g["Loss/scores/fake"], rel=1e-6)
        assert d["Loss/D/loss"] == pytest.approx(d["Loss/scores/fake"] - d["Loss/scores/real"], rel=1e-5, abs=1e-6)
        reg = cfg.wgan_lambda * d["Loss/gradient_penalty"] + cfg.epsilon_drift * d["Loss/epsilon_penalty"]
        assert d["Loss/D/reg"] == pytest.approx(reg, rel=1e-5, abs=1e-6)  # NVIDIA's names: the loss, then its reg
    else:  # logistic: above the softplus of the mean scores (Jensen); R1 * gamma / 2 as D/reg when not lazy
        assert cfg.loss == "nonsaturating" and ("Loss/r1_penalty" in d) == (not cfg.lazy_regularization)
        if not cfg.lazy_regularization:
            assert d["Loss/D/reg"] == pytest.approx(cfg.r1_gamma / 2 * d["Loss/r1_penalty"], rel=1e-5)
        main = d["Loss/D/loss"]
        assert main >= np.logaddexp(0, d["Loss/scores/fake"]) + np.logaddexp(0, -d["Loss/scores/real"]) - 1e-6
        assert g["Loss/G/loss"] >= np.logaddexp(0, -g["Loss/scores/fake"]) - 1e-6
