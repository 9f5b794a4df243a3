"""A tiny conditional StyleGAN2 on the built-in 16x16 digits, shared by the training tests."""

import os

import jax
import numpy as np
import pytest

from stylegan_jax.data import resolve_dataset
from stylegan_jax.training.config import load_experiment


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
    """Runs in one session compile the same phases: let the later ones hit XLA's persistent cache, one
    directory for all xdist workers (each worker's temporary root lies in the session's), so that a program
    one worker compiled is not compiled again by the other. Two workers writing one entry at once leave a
    torn file at worst, which JAX reads as a miss (a warning) and compiles again."""
    root = tmp_path_factory.getbasetemp()
    path = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "xla_cache"
    path.mkdir(exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    yield


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("datasets")
    resolve_dataset("digits-16", data_dir=path)
    return path


def tiny_config(data_dir, **overrides):
    c = load_experiment("digits")
    c.dataset, c.data_dir, c.resolution = "digits-16", str(data_dir), 16
    c.batch_size, c.batch_gpu = 8, 2
    c.G.update(z_dim=16, w_dim=16, mapping_layers=1, channel_base=128, channel_max=16)
    c.D.update(channel_base=128, channel_max=16, mbstd_group_size=2)
    c.tick, c.snap, c.grid = 0.016, 1, 2
    for key, value in overrides.items():
        c[key] = value
    return c


def leaves(state) -> list[np.ndarray]:
    """Every leaf of a (device) state, as NumPy arrays on the host."""
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(state))]


def two_iterations(cfg, devices, workdir) -> list[np.ndarray]:
    """Every leaf (NumPy) of the state after iteration 0 (every phase it runs) and iteration 1, both on the
    data's first batch, training ``cfg`` on ``devices`` in ``workdir``."""
    from stylegan_jax.training.loop import Trainer

    trainer = Trainer(cfg, workdir, devices=devices)
    state = trainer.initial_state()
    batch = trainer.device_batch(next(trainer.iterator))
    for step in range(2):
        state, _ = trainer.run_iteration(state, batch, step)
    trainer.manager.close()
    return leaves(state)
