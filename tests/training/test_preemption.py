"""A SIGTERM in the middle of a run (a subprocess running the CLI) saves a checkpoint from which the run
continues exactly as one that never stopped."""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
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
    assert process.returncode == 0, output
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
