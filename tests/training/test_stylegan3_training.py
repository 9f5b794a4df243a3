"""StyleGAN3 trains in the unchanged loop: tiny T and R (R with its blur of D's images) take the same step on 4
fake devices as on 1; G's averages move only in D_main and G_ema copies them; a run resumes bit for bit from
every checkpoint; the blur fades as NVIDIA's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.ops.gaussian_blur import gaussian_blur
from stylegan_jax.training.config import load_experiment, shrink_to_tiny
from stylegan_jax.training.loop import Trainer
from tests.training.conftest import leaves, two_iterations
from tests.training.test_resume import assert_resumes_from_every_checkpoint


def tiny_stylegan3(data_dir, experiment: str, **overrides):
    """The experiment's tiny form on digits-16 with a 3-layer synthesis (the last two critically sampled; the
    full schedule of 14 layers compiles for minutes on CPU), R's blur fading over the run's few images."""
    c = load_experiment(experiment)
    c.tiny = True
    c = shrink_to_tiny(c)
    c.data_dir = str(data_dir)
    c.G.num_layers = 3
    c.aug = "noaug"
    if c.blur_init_sigma:
        c.blur_init_sigma, c.blur_fade_kimg = 2.0, 0.032
    c.update(overrides)
    return c


@pytest.mark.parametrize("experiment", ["stylegan3_t", "stylegan3_r"])
def test_step_on_four_devices_equals_one_device(data_dir, tmp_path, experiment):
    cfg = tiny_stylegan3(data_dir, experiment)
    results = [two_iterations(cfg, devices, tmp_path / str(len(devices)))  # iteration 0: G_main, D_main, D_reg
               for devices in (jax.devices()[:1], jax.devices()[:4])]
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_averages_move_in_d_main_only_and_g_ema_copies_them(data_dir, tmp_path):
    cfg = tiny_stylegan3(data_dir, "stylegan3_t")
    trainer = Trainer(cfg, tmp_path, devices=jax.devices()[:1])
    state = trainer.initial_state()
    batch = (*trainer.device_batch(next(trainer.iterator)), np.float32(1), np.float32(0))
    before = jax.tree_util.tree_map(np.array, jax.device_get(state.g_buffers))
    state, _ = trainer.phases["G_main"](state, *batch)
    for a, b in zip(jax.tree_util.tree_leaves(before), leaves(state.g_buffers), strict=True):
        np.testing.assert_array_equal(a, b)  # G_main leaves them
    state, _ = trainer.phases["D_main"](state, *batch)
    after = jax.device_get(state.g_buffers)
    emas = [v for k, v in jax.tree_util.tree_flatten_with_path(after)[0] if k[-1].key == "magnitude_ema"]
    assert len(emas) == 4 and all(float(e) != 1.0 for e in emas)  # moved from their initial 1
    assert not np.array_equal(after["mapping"]["w_avg"], before["mapping"]["w_avg"])
    for a, b in zip(leaves(state.g_buffers), leaves(state.g_ema_buffers), strict=True):
        np.testing.assert_array_equal(a, b)  # copied, not averaged


def test_averages_move_once_per_phase_however_the_batch_is_split(data_dir, tmp_path):
    """One batch as one minibatch (NVIDIA's one GPU, one round) and as four (four GPUs, each updating its own
    copy): the magnitude EMAs and w_avg after D_main are the same, one update by the batch's mean (the
    magnitude beta 0.5 ** (batch / 20000) is per step of the whole batch), not four updates in turn."""
    moved = []
    for batch_gpu in (8, 2):
        cfg = tiny_stylegan3(data_dir, "stylegan3_t", batch_size=8, batch_gpu=batch_gpu)
        trainer = Trainer(cfg, tmp_path / str(batch_gpu), devices=jax.devices()[:1])
        state = trainer.initial_state()
        before = averages(state.g_buffers)
        batch = trainer.device_batch(next(trainer.iterator))
        state, _ = trainer.phases["D_main"](state, *batch, np.float32(1), np.float32(0))
        moved.append([a - b for a, b in zip(averages(state.g_buffers), before, strict=True)])
    assert len(moved[0]) == 5  # w_avg and the magnitude EMAs of the 4 synthesis layers (ToRGB included)
    for one, four in zip(*moved, strict=True):
        assert np.abs(one).max() > 0
        np.testing.assert_allclose(four, one, rtol=1e-4, atol=1e-7)


def averages(buffers) -> list[np.ndarray]:
    """G's running averages (``w_avg``, ``magnitude_ema``) among its buffers, on host."""
    return [np.array(v) for k, v in jax.tree_util.tree_flatten_with_path(jax.device_get(buffers))[0]
            if k[-1].key in ("w_avg", "magnitude_ema")]


def test_blur_is_nvidias_kernel_and_fades_without_recompiling():
    x = np.random.default_rng(0).standard_normal((1, 20, 20, 2)).astype(np.float32)
    for sigma in (0.2, 1.0, 2.5):
        size = int(np.floor(sigma * 3))
        taps = 2.0 ** -((np.arange(-size, size + 1) / sigma) ** 2) if size else np.ones(1)
        taps /= taps.sum()
        padded = np.pad(x.astype(np.float64), ((0, 0), (size, size), (size, size), (0, 0)))
        expected = sum(taps[i] * taps[j] * padded[:, i:i + 20, j:j + 20] for i in range(2 * size + 1)
                       for j in range(2 * size + 1))
        blur = jax.jit(lambda x, s: gaussian_blur(x, s, max_sigma=3.0))
        np.testing.assert_allclose(np.asarray(blur(x, jnp.float32(sigma))), expected, rtol=1e-5, atol=1e-6)
    assert blur._cache_size() == 1


@pytest.mark.slow
def test_stylegan3_r_resumes_from_every_periodic_checkpoint(data_dir, tmp_path):
    # 6 iterations of 8 images with the blur fading over 4: checkpoints at 1 (NVIDIA's tick 0, mid-fade), 4 and 6.
    cfg = tiny_stylegan3(data_dir, "stylegan3_r", kimg=0.048, tick=0.008, snap=3, keep=100)
    assert_resumes_from_every_checkpoint(cfg, tmp_path, [1, 4, 6])
