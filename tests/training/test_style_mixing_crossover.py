"""Style mixing in the training step (``Phases.run_G``) against NVIDIA's StyleGAN2Loss.run_G: with probability
``style_mixing_prob`` per minibatch a cutoff drawn uniformly from [1, num_ws) (``random_(1, num_ws)``), else
num_ws; ``ws[:, cutoff:]`` from the mapping of a second z (the same labels), which does not update ``w_avg``
(``skip_w_avg_update=True``). While growing, StyleGAN1's ``G_style`` draws the crossover among the layers in use
(``cur_layers = num_layers - 2 * lod``).

The reference maps both z through the model's own ``map`` outside the step, the second z drawn from the
minibatch key as ``run_G`` documents (the third of the key split in four: cutoff, probability, z, noise), and
reads each minibatch's crossover off the ws the step returned."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.training.config import load_experiment, shrink_to_tiny
from stylegan_jax.training.loop import Trainer
from stylegan_jax.training.steps import Phases
from tests.training.conftest import tiny_config
from tests.training.step_inputs import noise_key
from tests.training.test_non_square import wide_data  # noqa: F401 - the fixture

KEYS = 200  # minibatches per draw: 40 per cutoff of the 16x16 StyleGAN2 (5 cutoffs)
BATCH = 2


def built(cfg, workdir):
    """(trainer, its initial state) on one device."""
    trainer = Trainer(cfg, workdir, devices=jax.devices()[:1])
    state = trainer.initial_state()
    trainer.manager.close()
    return trainer, state


@pytest.fixture(scope="module")
def stylegan2(data_dir, tmp_path_factory):
    """The tiny conditional StyleGAN2 (num_ws 6 at 16x16), not growing."""
    return built(tiny_config(data_dir), tmp_path_factory.mktemp("mixing"))


@pytest.fixture(scope="module")
def stylegan1(data_dir, tmp_path_factory):
    """StyleGAN1's rung F (style mixing 0.9, growing), tiny: 16x16, num_ws 6, growing from 4x4."""
    cfg = load_experiment("ablations/stylegan1_f")
    cfg.update(data_dir=str(data_dir), tiny=True)
    return built(cfg, tmp_path_factory.mktemp("mixing_growing"))


def run_g(trainer, state, prob: float, resolution: int | None = None, alpha: float = 1.0, seed: int = 0):
    """The step's run_G on KEYS minibatches of BATCH (``style_mixing_prob`` = ``prob``, training at
    ``resolution``) and the reference's inputs: {z, c, keys, img, ws, w (the w_avg statistic)} as NumPy."""
    cfg = trainer.cfg.copy_and_resolve_references()
    cfg.style_mixing_prob = prob
    phases = Phases(cfg, trainer.family, trainer.G, trainer.D, trainer.g_tx, trainer.d_tx, trainer.layout, resolution,
                    trainer.labels)
    k_z, k_c, k_run = jax.random.split(jax.random.PRNGKey(seed), 3)
    z = jax.random.normal(k_z, (KEYS, BATCH, trainer.G.z_dim))
    c = jax.nn.one_hot(jax.random.randint(k_c, (KEYS, BATCH), 0, max(trainer.c_dim, 1)), trainer.c_dim)
    keys = jax.random.split(k_run, KEYS)
    fn = jax.jit(jax.vmap(phases.run_G, (None, None, 0, 0, 0, None)))
    img, ws, stats = fn(state.g_params, state.g_buffers, z, c, keys, jnp.float32(alpha))
    return {"z": z, "c": c, "keys": keys, "img": np.asarray(img), "ws": np.asarray(ws), "w": np.asarray(stats["w"])}


def reference_mappings(trainer, state, run) -> tuple[np.ndarray, np.ndarray]:
    """(ws of each minibatch's z, ws of its second z) [KEYS, BATCH, num_ws, w_dim], by the model's ``map``."""
    G, variables = trainer.G, {"params": state.g_params, "buffers": state.g_buffers}
    second = jax.vmap(lambda key, z: jax.random.normal(jax.random.split(key, 4)[2], z.shape))(run["keys"], run["z"])
    mapping = jax.jit(jax.vmap(lambda z, c: G.apply(variables, z, c, method="map")))
    return np.asarray(mapping(run["z"], run["c"])), np.asarray(mapping(second, run["c"]))


def crossovers(ws, first, second) -> np.ndarray:
    """Each minibatch's cutoff [KEYS]: its layers < cutoff are ``first``'s and the rest ``second``'s (checked:
    one crossover, the values those mappings' to float rounding); num_ws when nothing was mixed."""
    apart = np.abs(first - second).max(axis=(1, 3))  # [KEYS, num_ws]
    assert apart.min() > 1e-2  # which mapping a layer came from is unambiguous
    from_first = np.abs(ws - first).max(axis=(1, 3)) < np.abs(ws - second).max(axis=(1, 3))
    cut = from_first.sum(axis=1)
    layers = np.arange(ws.shape[2])
    np.testing.assert_array_equal(from_first, layers[None] < cut[:, None])  # a prefix, then the rest
    expected = np.where((layers[None, :] < cut[:, None])[:, None, :, None], first, second)
    np.testing.assert_allclose(ws, expected, rtol=1e-5, atol=1e-6)
    return cut


def check_synthesis(trainer, state, run, n: int = 4, **grow):
    """The images of the first ``n`` minibatches are the synthesis of the returned (mixed) ws with G's noise key."""
    variables = {"params": state.g_params, "buffers": state.g_buffers}
    img = jax.jit(jax.vmap(lambda ws, key: trainer.G.apply(variables, ws, "random", **grow,
                                                           rngs={"noise": noise_key(key)}, method="synthesize")))
    np.testing.assert_allclose(run["img"][:n], np.asarray(img(run["ws"][:n], run["keys"][:n])), rtol=1e-4, atol=1e-5)


def test_mixing_takes_the_second_mapping_from_a_uniform_cutoff_and_w_avg_from_the_first(stylegan2):
    trainer, state = stylegan2
    run = run_g(trainer, state, prob=1.0)
    first, second = reference_mappings(trainer, state, run)
    num_ws = run["ws"].shape[2]
    assert num_ws == trainer.G.num_ws == 6
    cut = crossovers(run["ws"], first, second)
    assert set(cut.tolist()) == set(range(1, num_ws))  # every crossover of [1, num_ws), none outside
    counts = np.bincount(cut, minlength=num_ws)[1:]
    expected = KEYS / (num_ws - 1)
    assert (counts > 0.5 * expected).all() and (counts < 1.5 * expected).all(), counts  # uniform
    # w_avg's statistic: the first mapping's mean w (NVIDIA skips the update on the second mapping).
    np.testing.assert_allclose(run["w"], first[:, :, 0].mean(axis=1), rtol=1e-5, atol=1e-6)
    assert np.abs(run["w"] - second[:, :, 0].mean(axis=1)).max() > 1e-2
    check_synthesis(trainer, state, run)  # G draws the mixed ws


@pytest.mark.parametrize("prob", [0.0, 0.25])
def test_mixing_happens_with_style_mixing_prob_per_minibatch(stylegan2, prob):
    trainer, state = stylegan2
    run = run_g(trainer, state, prob=prob, seed=1)
    first, second = reference_mappings(trainer, state, run)
    cut = crossovers(run["ws"], first, second)
    num_ws = run["ws"].shape[2]
    mixed = cut < num_ws
    assert set(cut[mixed].tolist()) <= set(range(1, num_ws))
    if prob == 0:
        assert not mixed.any()  # the plain mapping of z
    else:
        assert 0.5 * prob < mixed.mean() < 1.5 * prob, mixed.mean()  # NVIDIA: mixed when rand() < prob
    np.testing.assert_allclose(run["w"], first[:, :, 0].mean(axis=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("resolution, in_use", [(8, 4), (4, 2)])
def test_mixing_while_growing_crosses_over_among_the_layers_in_use(stylegan1, resolution, in_use):
    """StyleGAN1 at 16x16 has 6 ws, two per resolution from 4x4: training at 8x8 reads 4 of them, at 4x4 two;
    NVIDIA's crossover lies in [1, layers in use) and every layer from it on (unused ones too) is mixed."""
    trainer, state = stylegan1
    assert trainer.G.num_ws == 6 and in_use == 2 * int(np.log2(resolution)) - 2
    run = run_g(trainer, state, prob=1.0, resolution=resolution, alpha=0.5)
    first, second = reference_mappings(trainer, state, run)
    cut = crossovers(run["ws"], first, second)
    assert set(cut.tolist()) == set(range(1, in_use))
    np.testing.assert_allclose(run["w"], first[:, :, 0].mean(axis=1), rtol=1e-5, atol=1e-6)
    check_synthesis(trainer, state, run, resolution=resolution, alpha=jnp.float32(0.5))


@pytest.mark.parametrize("resolution, in_use", [(16, 6), (8, 4)])
def test_a_wide_run_crosses_over_among_the_layers_in_use_of_its_nominal_resolution(wide_data, tmp_path,  # noqa: F811
                                                                                    resolution, in_use):
    """A 64x32 StyleGAN1 run has 8 ws, two per stage from its 8x4 base, and the schedule counts it by its short
    side (nominal 32, growing from 4 = 8x4): training at nominal 16 (32x16, lod 1) reads 6 ws, at 8 (16x8,
    lod 2) 4, and the crossover lies in [1, layers in use), as NVIDIA's ``cur_layers = num_layers - 2 * lod``."""
    cfg = load_experiment("ablations/stylegan1_f")
    cfg.update(data_dir=str(wide_data), tiny=True)
    cfg = shrink_to_tiny(cfg)
    cfg.update(dataset="wide", resolution="64x32")
    trainer, state = built(cfg, tmp_path)
    assert trainer.G.num_ws == 8
    run = run_g(trainer, state, prob=1.0, resolution=resolution, alpha=0.5)
    first, second = reference_mappings(trainer, state, run)
    assert set(crossovers(run["ws"], first, second).tolist()) == set(range(1, in_use))
    assert run["img"].shape[2:4] == (resolution, 2 * resolution)  # drawn at the training resolution
