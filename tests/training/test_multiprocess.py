"""Two processes on 127.0.0.1 (two CPU devices each, gloo collectives) train together and save."""

import os
import socket
import subprocess
import sys

import pytest

from tests.training.conftest import tiny_config
from tests.training.test_preemption import cli_overrides


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_a_step(data_dir, tmp_path):
    cfg = tiny_config(data_dir)
    port = free_port()
    flags = os.environ["XLA_FLAGS"].replace("--xla_force_host_platform_device_count=4",
                                            "--xla_force_host_platform_device_count=2")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "stylegan_jax.train", "--experiment", "digits", "--outdir", str(tmp_path / "run"),
             "--kimg", "0.016", "--tick", "0.016", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
             "--process-id", str(i), *cli_overrides(cfg)],
            env=dict(os.environ, XLA_FLAGS=flags), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    for p, out in zip(processes, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "4 device(s), batch 8 (4 x 2)" in log and "tick 1" in log
    assert (tmp_path / "run" / "checkpoints" / "2").is_dir()
