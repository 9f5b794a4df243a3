"""A run stopped in a subprocess running the CLI continues exactly as one that never stopped: after SIGTERM
(it saves and exits with 143) and after SIGKILL at named moments (`tests.training.kill_at`: no handler runs;
the newest complete checkpoint is the one to resume from)."""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from stylegan_jax.training.loop import Trainer, train
from tests.training.conftest import tiny_config


def cli_overrides(cfg):
    flat = {"dataset": cfg.dataset, "data_dir": cfg.data_dir, "resolution": cfg.resolution,
            "batch_size": cfg.batch_size, "batch_gpu": cfg.batch_gpu, "grid": cfg.grid}
    for net in ("G", "D"):
        for key in ("channel_base", "channel_max") + (("z_dim", "w_dim", "mapping_layers") if net == "G" else
                                                      ("mbstd_group_size",)):
            flat[f"{net}.{key}"] = cfg[net][key]
    return [f"--config.{k}={v}" for k, v in flat.items()]


def wait_for(path, text, process, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_sigterm_saves_and_the_run_resumes_exactly(data_dir, tmp_path):
    cfg = tiny_config(data_dir, kimg=10.0)
    run = tmp_path / "run"
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir or "")
    process = subprocess.Popen(
        [sys.executable, "-m", "stylegan_jax.train", "--experiment", "digits", "--outdir", str(run),
         "--kimg", "10", "--tick", "0.016", "--snap", "1000", *cli_overrides(cfg)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert wait_for(run / "log.txt", "tick 2", process), "the run did not reach its second tick"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, output
    assert "SIGTERM received: saving and stopping" in output
    log = (run / "log.txt").read_text()
    assert "Stopped by SIGTERM" in log
    saved_step = int(log.split("checkpoint saved at iteration ")[1].split()[0])
    assert saved_step >= 4

    reference = train(cfg, tmp_path / "reference", stop_at_step=saved_step)
    trainer = Trainer(cfg, run)
    resumed, was_resumed = trainer.restore_or_init(resume=True)
    trainer.manager.close()
    assert was_resumed and int(resumed.step) == saved_step
    for a, b in zip(jax.tree_util.tree_leaves(jax.device_get(reference)),
                    jax.tree_util.tree_leaves(jax.device_get(resumed)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def checkpoint_states(run) -> dict[int, list[np.ndarray]]:
    """step -> the saved state's leaves, for every complete checkpoint of a run directory."""
    with ocp.CheckpointManager((run / "checkpoints").absolute()) as manager:
        return {step: [np.asarray(x) for x in jax.tree_util.tree_leaves(
                    manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"])]
                for step in manager.all_steps()}


def killable_config(data_dir):
    """8 iterations of 8 images, a tick every iteration, a checkpoint every 2: steps 2, 4, 6 and 8."""
    return tiny_config(data_dir, kimg=0.064, tick=0.008, snap=2, keep=100)


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    """The checkpoints of `killable_config`'s run that nobody stopped."""
    run = tmp_path_factory.mktemp("uninterrupted")
    train(killable_config(data_dir), run)
    return checkpoint_states(run)


@pytest.mark.slow
@pytest.mark.parametrize("moment, step, newest", [("mid-step", 5, 4), ("mid-save", 6, 4), ("before-commit", 6, 4)])
def test_a_run_killed_at_a_named_moment_resumes_exactly(data_dir, tmp_path, uninterrupted, moment, step, newest):
    cfg = killable_config(data_dir)
    run = tmp_path / "run"
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir or "")
    killed = subprocess.run(
        [sys.executable, "-m", "tests.training.kill_at", moment, str(step), "--experiment", "digits", "--outdir",
         str(run), "--kimg", "0.064", "--tick", "0.008", "--snap", "2", "--config.keep=100", *cli_overrides(cfg)],
        env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert sorted(checkpoint_states(run)) == list(range(2, newest + 1, 2))
    leftovers = list((run / "checkpoints").glob("*.orbax-checkpoint-tmp*"))
    assert len(leftovers) == (moment != "mid-step"), leftovers  # the save the kill interrupted

    train(cfg, run)
    resumed = checkpoint_states(run)
    assert sorted(resumed) == sorted(uninterrupted) == [2, 4, 6, 8]
    for a, b in zip(uninterrupted[8], resumed[8], strict=True):
        np.testing.assert_array_equal(a, b)
