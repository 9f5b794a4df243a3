"""Transfer learning: a new run initialised from a pretrained network (names and shapes that match are copied,
the rest listed), NVIDIA's resume settings, and Freeze-D (D's highest-resolution layers never change)."""

import dataclasses
import json
from pathlib import Path

import flax
import jax
import numpy as np
import optax
import pytest

from stylegan_jax.convert import torch_r3gan
from stylegan_jax.data.convert import convert_images
from stylegan_jax.errors import ConfigError
from stylegan_jax.io.network_pickle import read_network_pickle
from stylegan_jax.models.stylegan2 import discriminator_layers
from stylegan_jax.network_snapshot import load_network
from stylegan_jax.training.config import load_experiment
from stylegan_jax.training.loop import Trainer, run_config, train
from stylegan_jax.training.schedule import schedule
from stylegan_jax.training.steps import Phases
from stylegan_jax.training.transfer import initialise_from, load_source, source_path, transfer_settings
from tests.data.imagefiles import random_pixels, save
from tests.training.conftest import tiny_config

NVIDIA_PICKLE = Path(__file__).parents[1] / "fixtures" / "nvidia_pickles" / "ada_skip16.pkl"
#: Written by R3GAN's training loop's code (tests/fixtures/make_r3gan_pickles.py): cur_nimg 1234, each network's
#: Adam state after one step with betas (0, 0), so that exp_avg is a gradient and exp_avg_sq its square.
R3GAN_PICKLE = Path(__file__).parents[1] / "fixtures" / "r3gan_pickles" / "uncond16.pkl"


def flat(tree):
    return {k: np.asarray(v) for k, v in flax.traverse_util.flatten_dict(jax.device_get(tree), sep="/").items()}


@pytest.fixture(scope="module")
def pretrained(data_dir, tmp_path_factory):
    """A snapshot of a tiny network initialised with another seed: (path, its state)."""
    run = tmp_path_factory.mktemp("pretrained")
    trainer = Trainer(tiny_config(data_dir, seed=1), run)
    state = trainer.initial_state()
    # G and G_ema apart, the buffers (w_avg) not zero: a swap or a tree left uncopied shows
    shifted = lambda shift: lambda x: x + np.asarray(shift, x.dtype)  # noqa: E731
    state = state.replace(g_ema_params=jax.tree.map(shifted(0.25), state.g_ema_params),
                          g_buffers=jax.tree.map(shifted(1), state.g_buffers),
                          g_ema_buffers=jax.tree.map(shifted(2), state.g_ema_buffers))
    trainer.save_network(state, 0)
    trainer.manager.close()
    return run / "network-snapshot-000000.000", state  # tiny runs tick under 1 kimg


def test_a_new_run_starts_from_the_pretrained_networks(data_dir, tmp_path, pretrained):
    path, source = pretrained
    cfg = tiny_config(data_dir, resume_from=str(path))
    assert (run_config(cfg, jax.devices()).ada_kimg, run_config(cfg, jax.devices()).ema_rampup) == (100.0, None)
    sg3r = load_experiment("stylegan3_r")  # StyleGAN3's train.py: --resume turns StyleGAN3-R's blur of D's images off
    assert (sg3r.blur_init_sigma, transfer_settings(sg3r).blur_init_sigma) == (10.0, 10.0)
    sg3r.resume_from = str(path)
    assert (transfer_settings(sg3r).blur_init_sigma, transfer_settings(sg3r).ada_kimg) == (0.0, 100.0)
    trainer = Trainer(cfg, tmp_path)
    fresh = trainer.initial_state()
    lines = []
    state, nimg = initialise_from(fresh, load_source(str(path)), str(path), 16, lines.append)
    for field in ("g_params", "g_buffers", "g_ema_params", "g_ema_buffers", "d_params"):
        got, want = flat(getattr(state, field)), flat(getattr(source, field))
        assert got.keys() == want.keys()
        for name in got:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{field}/{name}")
    tensors = sum(len(flat(getattr(source, f))) for f in ("g_params", "g_buffers", "g_ema_params", "g_ema_buffers",
                                                         "d_params"))
    assert lines == [f"resume_from {path}: copied {tensors} of {tensors} tensors"]
    assert nimg == 0 and int(state.step) == 0 and int(jax.tree_util.tree_leaves(state.g_opt)[0]) == 0  # a new run


def test_what_does_not_match_is_listed_and_nothing_matching_is_an_error(data_dir, tmp_path, pretrained):
    path, source = pretrained
    cfg = tiny_config(data_dir)
    cfg.D.channel_max = 32  # D's widths differ; G is the same
    wider = Trainer(cfg, tmp_path)
    lines = []
    state, _ = initialise_from(wider.initial_state(), load_source(str(path)), str(path), 16, lines.append)
    assert len(lines) == 1 and "not matched" in lines[0] and "D/params/b4/fc/weight" in lines[0]
    np.testing.assert_array_equal(flat(state.g_params)["synthesis/b4/const"],
                                  flat(source.g_params)["synthesis/b4/const"])
    nothing = wider.initial_state().replace(g_params={}, g_buffers={}, g_ema_params={}, g_ema_buffers={},
                                            d_params={"x": np.zeros(3, np.float32)})
    with pytest.raises(ConfigError, match="none of its parameters match"):
        initialise_from(nothing, load_source(str(path)), str(path), 16, print)


def test_a_network_of_another_model_family_is_refused_before_anything_is_written(data_dir, tmp_path):
    """An R3GAN snapshot into a StyleGAN2 run would match a handful of names at most; it is one error."""
    workdir = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"uncond16.pkl: the network's model is 'r3gan', this run's 'stylegan2'; "
                                          "a transfer starts from a network of the run's own model family"):
        Trainer(tiny_config(data_dir, resume_from=str(R3GAN_PICKLE)), workdir)
    assert not workdir.exists() or not any(workdir.iterdir())


def test_a_source_of_another_canvas_layout_gives_no_d(data_dir, tmp_path, pretrained):
    """D's dense layer reads its 4x4-stage features flattened: from a 64x32 source into a 32x64 run (canvases
    8x4 and 4x8, W x H) the weight has the same shape and another meaning, so D is not copied; G is."""
    path, source = pretrained
    network = load_source(str(path))
    network = dataclasses.replace(network, G_kwargs={**network.G_kwargs, "img_resolution": [32, 64]})  # 64x32
    trainer = Trainer(tiny_config(data_dir), tmp_path)
    fresh = trainer.initial_state()
    lines = []
    state, _ = initialise_from(fresh, network, str(path), (64, 32), lines.append)  # a 32x64 run
    assert "; D not copied: the source's 4x4-stage canvas is 8x4, this run's 4x8 (W x H)" in lines[0]
    for name, value in flat(state.d_params).items():
        np.testing.assert_array_equal(value, flat(fresh.d_params)[name])
    np.testing.assert_array_equal(flat(state.g_params)["synthesis/b4/const"],
                                  flat(source.g_params)["synthesis/b4/const"])


def test_a_transfer_keeps_a_resolution_given_as_text(data_dir, tmp_path, pretrained):
    """``--config.resolution=16x16`` (or ``'16'``) with ``resume_from``: the loop resolves it to 16 later, which
    a config whose references were resolved by the transfer settings refused with a TypeError."""
    cfg = tiny_config(data_dir, resume_from=str(pretrained[0]))
    cfg.resolution = "16x16"
    assert Trainer(cfg, tmp_path).cfg.resolution == 16


def test_freeze_d_freezes_nvidias_highest_resolution_layers(data_dir, tmp_path):
    cfg = tiny_config(data_dir, freeze_d=2)
    trainer = Trainer(cfg, tmp_path)
    state = trainer.initial_state()
    assert discriminator_layers(jax.device_get(state.d_params)) == [
        "b16/fromrgb", "b16/conv0", "b16/conv1", "b16/skip", "b8/conv0", "b8/conv1", "b8/skip"]
    assert trainer.frozen_d == ["b16/fromrgb", "b16/conv0"]
    before = flat(state.d_params)
    state, _ = trainer.run_iteration(state, trainer.device_batch(next(trainer.iterator)), 0)
    after = flat(state.d_params)
    for name in before:
        frozen = name.startswith(("b16/fromrgb/", "b16/conv0/"))
        assert np.array_equal(before[name], after[name]) == frozen, name


@pytest.mark.parametrize("frozen_grads_finite", [True, False])
def test_frozen_layers_are_neither_clipped_nor_counted_in_the_finite_check(data_dir, tmp_path, frozen_grads_finite):
    """Freeze-D with WGAN's weight clipping and the TF lineage's skip of a phase whose gradients are not all
    finite: the frozen layers keep their weights (also those outside the clip), the trained ones are clipped,
    and a non-finite gradient of a frozen layer (never applied) does not skip the phase."""
    cfg = tiny_config(data_dir, freeze_d=2, wgan_clip=0.05, skip_nonfinite_updates=True)
    trainer = Trainer(cfg, tmp_path)
    try:
        state = trainer.initial_state()
        layout, (g_tx, d_tx), _ = trainer.phases_for(schedule(trainer.cfg, 0))
    finally:
        trainer.manager.close()
    phases = Phases(trainer.cfg, trainer.family, trainer.G, trainer.D, g_tx, d_tx, layout, None, trainer.labels,
                    trainer.frozen_d)
    before = flat(state.d_params)
    is_frozen = {name: name.startswith(("b16/fromrgb/", "b16/conv0/")) for name in before}
    bad = 0.5 if frozen_grads_finite else np.nan
    grads = flax.traverse_util.unflatten_dict(
        {name: np.full_like(x, bad if is_frozen[name] else 0.5) for name, x in before.items()}, sep="/")
    after = flat(phases.apply_updates("D", grads, state.d_opt, state.d_params, phases.hyper(0))[0])
    assert any(np.abs(before[name]).max() > 0.05 for name in before if is_frozen[name])
    lr = cfg.D_lr * cfg.D_reg_interval / (cfg.D_reg_interval + 1)  # NVIDIA's lazy regularisation's ratio
    for name in before:
        if is_frozen[name]:
            np.testing.assert_array_equal(after[name], before[name], err_msg=name)
        else:  # Adam's first step moves each weight by lr against the gradient's sign, then the clip
            np.testing.assert_allclose(after[name], np.clip(before[name] - lr, -0.05, 0.05), rtol=1e-5,
                                       atol=1e-7, err_msg=name)


@pytest.mark.slow
def test_a_run_from_an_nvidia_pickle_starts_at_step_0_with_its_weights(data_dir, tmp_path, monkeypatch, capsys):
    """``train()`` with ``resume_from`` an NVIDIA pickle (stylegan2-ada-pytorch's ``ada_skip16``: 16x16 RGB,
    unconditional) into a conditional grayscale run of the same widths: iteration 0 starts from every tensor
    whose name and shape match (G, G_ema, D), the rest (labels' embedding, RGB <-> gray layers, D's projection)
    listed in the one printed and logged line."""
    cfg = tiny_config(data_dir, resume_from=str(NVIDIA_PICKLE), kimg=0.008, pl_weight=0.0)
    cfg.G.update(z_dim=10, w_dim=12, mapping_layers=2, channel_max=8)
    cfg.D.update(channel_max=8)
    started = []
    original = Trainer.run_iteration

    def first_iteration(self, state, batch, step, *args):
        if not started:
            started.append((step, jax.device_get(state)))
        return original(self, state, batch, step, *args)

    monkeypatch.setattr(Trainer, "run_iteration", first_iteration)
    train(cfg, tmp_path)
    step, state = started[0]
    assert step == 0 and int(state.step) == 0 and int(jax.tree_util.tree_leaves(state.g_opt)[0]) == 0
    network = load_network(str(NVIDIA_PICKLE))
    copied, missed, unused = 0, [], []
    for field, source, what in (("g_params", network.G, "G/params"), ("g_buffers", network.G, "G/buffers"),
                                ("g_ema_params", network.G_ema, "G_ema/params"),
                                ("g_ema_buffers", network.G_ema, "G_ema/buffers"), ("d_params", network.D, "D/params")):
        want = {k: np.asarray(v) for k, v in flax.traverse_util.flatten_dict(source[what.split("/")[1]],
                                                                             sep="/").items()}
        for name, got in flat(getattr(state, field)).items():
            if name in want and want[name].shape == got.shape:
                np.testing.assert_array_equal(got, want[name], err_msg=f"{field}/{name}")
                copied += 1
            else:
                missed.append(f"{what}/{name}")
        got = flat(getattr(state, field))
        unused += [f"{what}/{name}" for name in want if name not in got or got[name].shape != want[name].shape]
    assert (copied, len(missed), len(unused)) == (97, 39, 17)
    assert {"G/params/mapping/embed/weight", "G/params/synthesis/b16/torgb/weight", "D/params/b16/fromrgb/weight",
            "D/params/b4/out/weight"} <= set(missed)
    line = (f"resume_from {NVIDIA_PICKLE}: copied {copied} of {copied + len(missed)} tensors; not matched "
            f"({len(missed)}): " + ", ".join(missed[:8]) + f" ...; unused of the source's ({len(unused)}): "
            + ", ".join(unused[:8]) + " ...")
    assert line in capsys.readouterr().out.splitlines()
    log = (tmp_path / "log.txt").read_text().splitlines()
    assert line in log and any(x.startswith("Starting digits in ") and " at 0 kimg;" in x for x in log)
    recorded = json.loads((tmp_path / "config.json").read_text())
    assert (recorded["ada_kimg"], recorded["ema_rampup"]) == (100.0, None)  # NVIDIA's resume settings


def test_nvidias_transfer_source_names_stand_for_their_files_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="resume_from=ffhq1024: NVIDIA's transfer source ffhq-res1024-mirror-"
                       "stylegan2-noaug.pkl is not in .*fetch https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/"
                       "pretrained/transfer-learning-source-nets/ffhq-res1024-mirror-stylegan2-noaug.pkl"):
        source_path("ffhq1024")
    (tmp_path / "ffhq-res1024-mirror-stylegan2-noaug.pkl").write_bytes(b"")
    assert source_path("ffhq1024") == "ffhq-res1024-mirror-stylegan2-noaug.pkl"
    (tmp_path / "ffhq1024").mkdir()  # a folder of that name (a dataset's, say) is not the network ...
    assert source_path("ffhq1024") == "ffhq-res1024-mirror-stylegan2-noaug.pkl"
    (tmp_path / "ffhq1024" / "network.json").write_text("{}")  # ... a snapshot directory of that name is
    assert source_path("ffhq1024") == "ffhq1024" and source_path("my.pkl") == "my.pkl"


def adam_of(opt_state) -> optax.ScaleByAdamState:
    (adam,) = [x for x in jax.tree_util.tree_leaves(opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
               if isinstance(x, optax.ScaleByAdamState)]
    return adam


def test_an_r3gan_snapshot_continues_its_training_as_r3gans_resume(tmp_path):
    """R3GAN's --resume continues the pickle's cur_nimg (its schedules) with its Adam states; a run whose
    networks differ from the snapshot's is a new run, as NVIDIA's --resume."""
    for i in range(8):
        save(tmp_path / "images" / f"{i}.png", random_pixels(i, (16, 16, 3)))
    convert_images(tmp_path / "images", tmp_path / "data" / "rgb16", progress=False)
    network = load_network(R3GAN_PICKLE)
    cfg = load_experiment("r3gan_ffhq64")
    cfg.update(dataset="rgb16", data_dir=str(tmp_path / "data"), resolution=16, batch_size=8, batch_gpu=2, grid=2,
               resume_from=str(R3GAN_PICKLE), metrics=())
    for net, kwargs in ((cfg.G, network.G_kwargs), (cfg.D, network.D_kwargs)):
        net.update({key: value for key, value in kwargs.items() if key in net})
    lines = []
    trainer = Trainer(cfg, tmp_path / "run")
    state, resumed = trainer.restore_or_init(resume=True, warn=lines.append)
    assert not resumed and (trainer.start_nimg, trainer.start_tick_nimg) == (1234, 1234)
    assert lines[0].endswith("continuing its training at 1.234 kimg with its Adam states (R3GAN's resume)")
    raw = read_network_pickle(R3GAN_PICKLE, torch_r3gan.PICKLE_GLOBALS)
    for name, opt in (("G", state.g_opt), ("D", state.d_opt)):
        adam, torch_state = adam_of(jax.device_get(opt)), raw[f"{name}_opt_state"]["state"]
        assert int(adam.count) == 1
        mu, nu = jax.tree_util.tree_leaves(adam.mu), jax.tree_util.tree_leaves(adam.nu)
        for m, v in zip(mu, nu, strict=True):  # each leaf's two moments from one parameter's entry
            np.testing.assert_array_equal(v, np.square(m))
        # every parameter's moment in one leaf, in our layout (sorted values: the same under transposes)
        assert sorted(np.sort(m, axis=None).tobytes() for m in mu) == sorted(
            np.sort(np.asarray(e["exp_avg"], np.float32), axis=None).tobytes() for e in torch_state.values())
    # each torch parameter's moment where that parameter is in our layout: torch's optimiser state is indexed by
    # the order of .parameters() (each module's own, then its children's, depth first); every parameter's
    # values are distinct here, so its values find its place (sorted: the same under transposes)
    def torch_parameters(module) -> list:
        own = [p for p in module.state["_parameters"].values() if p is not None]
        return own + [p for m in module.state["_modules"].values() if m is not None for p in torch_parameters(m)]

    for name, params, opt in (("G", state.g_params, state.g_opt), ("D", state.d_params, state.d_opt)):
        ours = flax.traverse_util.flatten_dict(jax.device_get(params), sep="/")
        moments = flax.traverse_util.flatten_dict(adam_of(jax.device_get(opt)).mu, sep="/")
        torch_params = torch_parameters(raw[name])
        assert len(torch_params) == len(ours) == len(raw[f"{name}_opt_state"]["state"])
        values = lambda x: np.sort(np.asarray(x, np.float32), axis=None)  # noqa: E731
        for i, tensor in enumerate(torch_params):
            (where,) = [k for k, v in ours.items() if np.array_equal(values(v), values(tensor))]
            np.testing.assert_array_equal(values(moments[where]), values(
                raw[f"{name}_opt_state"]["state"][i]["exp_avg"]), err_msg=f"{name} {where}")

    # A snapshot lacking one of the run's tensors (fine-tuning other networks): a new run from what matches
    d_params = flax.traverse_util.flatten_dict(network.D["params"], sep="/")
    d_params.pop(sorted(d_params)[0])
    partial = dataclasses.replace(network, D={"params": flax.traverse_util.unflatten_dict(d_params, sep="/")})
    lines = []
    state, nimg = initialise_from(trainer.initial_state(), partial, "partial.pkl", 16, lines.append)
    assert nimg == 0 and "not matched (1)" in lines[0] and "continuing" not in lines[0]
    assert int(adam_of(jax.device_get(state.g_opt)).count) == 0
