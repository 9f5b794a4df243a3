"""Two processes on 127.0.0.1 (two CPU devices each, gloo collectives) train together and save everything a
single process saves: the checkpoint and the network snapshot that ``generate --network`` reads."""

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import PIL.Image
import pytest

from stylegan_jax import generate
from stylegan_jax.network_snapshot import load_network
from stylegan_jax.training.loop import Trainer
from stylegan_jax.training.state import init_state, to_host
from tests.training.conftest import tiny_config
from tests.training.test_preemption import cli_overrides


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_a_step_and_write_a_network_snapshot(data_dir, tmp_path, capsys):
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
    assert log.count("tick 1") == 1 and log.count("4 device(s)") == 1  # process 0 alone writes the log
    assert sorted(p.name for p in (tmp_path / "run").glob("*.png")) == ["fakes000000.png", "reals.png"]
    assert (tmp_path / "run" / "checkpoints" / "2").is_dir()

    # The network snapshot both processes wrote: complete, nothing temporary left beside it, ...
    run = tmp_path / "run"
    snapshot = run / "network-snapshot-000000"
    assert sorted(p.name for p in run.iterdir() if "network-snapshot" in p.name) == [snapshot.name]
    network = load_network(snapshot)
    assert network.metadata["kimg"] == 0.016 and network.G is not None and network.D is not None

    # ... its networks are those of the final checkpoint (step 2) ...
    trainer = Trainer(cfg, run)
    try:
        abstract = jax.eval_shape(lambda: init_state(trainer.cfg, trainer.G, trainer.D, trainer.g_tx, trainer.d_tx))
        abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=trainer.replicated),
                                abstract)
        assert trainer.manager.latest_step() == 2
        state = trainer.manager.restore(2, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))["state"]
    finally:
        trainer.manager.close()
    for snapshotted, checkpointed in ((network.G_ema, {"params": state.g_ema_params, "buffers": state.g_ema_buffers}),
                                      (network.G, {"params": state.g_params, "buffers": state.g_buffers}),
                                      (network.D["params"], state.d_params)):
        checkpointed = to_host(checkpointed)
        assert jax.tree.structure(snapshotted) == jax.tree.structure(checkpointed)
        for a, b in zip(jax.tree.leaves(snapshotted), jax.tree.leaves(checkpointed), strict=True):
            np.testing.assert_array_equal(a, b)

    # ... and generate renders from it.
    out = tmp_path / "images"
    assert generate.main(["--network", str(snapshot), "--seeds", "0-1", "--class", "3", "--outdir", str(out)]) == 0, \
        capsys.readouterr().err
    for seed in (0, 1):
        image = PIL.Image.open(out / f"seed{seed:04d}.png")
        assert image.size == (16, 16) and image.mode == "L"
