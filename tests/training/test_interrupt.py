"""Ctrl-C at any moment of ``train``'s start-up (imports, JAX's start, the dataset, the first compilation)
ends the run with one line and status 130: never a traceback, never a KeyboardInterrupt that JAX swallows
so that the run trains on to the end."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.training.conftest import tiny_config
from tests.training.test_preemption import cli_overrides


@pytest.mark.slow
@pytest.mark.parametrize("after_s", [0.4, 1.0, 2.0, 4.0, 8.0])
def test_ctrl_c_during_start_up_ends_with_one_line_and_status_130(data_dir, tmp_path, after_s):
    cfg = tiny_config(data_dir)
    command = [sys.executable, "-m", "stylegan_jax.train", "--experiment", "digits", "--outdir", str(tmp_path / "run"),
               "--kimg", "10", *cli_overrides(cfg)]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(after_s)
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last == "train: interrupted" or last.startswith("train: stopped by SIGINT"), stderr[-3000:]
