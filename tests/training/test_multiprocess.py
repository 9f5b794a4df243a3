"""Two processes on 127.0.0.1 (two CPU devices each, gloo collectives) train together and save everything a
single process saves: the checkpoint and the network snapshot that ``generate --network`` reads; stopped by
SIGTERM, they save at one iteration and resume exactly."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile

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


def train_two_processes(cfg, run, args: list[str], sigterm_at: int | None = None,
                        moment: str = "sigterm") -> list[tuple[int, str]]:
    """``train`` of ``cfg`` into ``run`` as two processes of two CPU devices each: [(exit status, output)] per
    process (through files, so that no pipe fills), each output ending with the process's compilation-cache
    hits and misses (`tests.training.count_compiles`). ``sigterm_at``: process 1 instead sends itself SIGTERM
    at that iteration, or at the ``moment`` of `tests.training.kill_at` it names."""
    port = free_port()
    flags = os.environ["XLA_FLAGS"].replace("--xla_force_host_platform_device_count=4",
                                            "--xla_force_host_platform_device_count=2")
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    outputs = [tempfile.TemporaryFile("w+") for _ in range(2)]
    processes = []
    try:
        for i, out in enumerate(outputs):
            tool = (["tests.training.count_compiles"] if i == 0 or sigterm_at is None else
                    ["tests.training.kill_at", moment, str(sigterm_at)])
            processes.append(subprocess.Popen(
                [sys.executable, "-m", *tool, "--experiment", "digits", "--outdir", str(run), *args,
                 "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i),
                 *cli_overrides(cfg)],
                env=dict(env, XLA_FLAGS=flags), stdout=out, stderr=subprocess.STDOUT))
        codes = [p.wait(timeout=600) for p in processes]
        texts = []
        for out in outputs:
            out.seek(0)
            texts.append(out.read())
        return list(zip(codes, texts, strict=True))
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
        for out in outputs:
            out.close()


def saved_states(cfg, run) -> dict:
    """step -> the state of each checkpoint the two processes saved, restored on this process's devices."""
    trainer = Trainer(cfg, run)
    try:
        abstract = jax.eval_shape(lambda: init_state(trainer.cfg, trainer.G, trainer.D, trainer.g_tx, trainer.d_tx))
        abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=trainer.replicated),
                                abstract)
        return {step: trainer.manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract)))["state"] for step in trainer.manager.all_steps()}
    finally:
        trainer.manager.close()


def assert_snapshot_is_the_checkpoint(run, snapshot, state, capsys):
    """The network snapshot ``snapshot`` both processes wrote is complete and holds the networks of ``state``
    (the checkpoint at its iteration), and ``generate`` renders from it."""
    network = load_network(run / snapshot)
    assert network.G is not None and network.D is not None
    for snapshotted, checkpointed in ((network.G_ema, {"params": state.g_ema_params, "buffers": state.g_ema_buffers}),
                                      (network.G, {"params": state.g_params, "buffers": state.g_buffers}),
                                      (network.D["params"], state.d_params)):
        checkpointed = to_host(checkpointed)
        assert jax.tree.structure(snapshotted) == jax.tree.structure(checkpointed)
        for a, b in zip(jax.tree.leaves(snapshotted), jax.tree.leaves(checkpointed), strict=True):
            np.testing.assert_array_equal(a, b)
    out = run.parent / "images"
    assert generate.main(["--network", str(run / snapshot), "--seeds", "0-1", "--class", "3",
                          "--outdir", str(out)]) == 0, capsys.readouterr().err
    for seed in (0, 1):
        image = PIL.Image.open(out / f"seed{seed:04d}.png")
        assert image.size == (16, 16) and image.mode == "L"


@pytest.mark.slow
def test_sigterm_to_one_of_two_processes_saves_both_at_one_iteration_and_resumes_exactly(data_dir, tmp_path,
                                                                                         capsys):
    """Two processes train together and write what one process writes (process 0 alone the log and the grids,
    both the checkpoints and the network snapshots that ``generate --network`` reads). A scheduler's SIGTERM to
    one of them: JAX's preemption service has both save the same iteration and exit with status 143, also when
    it comes as a resumed run starts; the same command resumes them, and every later checkpoint
    equals that of the run nobody stopped (16 iterations, a tick each, a checkpoint and a snapshot every 2 from
    NVIDIA's tick 0 and at the end; one compilation cache for all runs)."""
    cfg = tiny_config(data_dir)
    args = ["--kimg", "0.128", "--tick", "0.008", "--snap", "2", "--config.keep=100",
            f"--config.compile_cache={tmp_path / 'xla_cache'}"]
    uninterrupted = tmp_path / "uninterrupted"
    outputs = train_two_processes(cfg, uninterrupted, args)
    for code, out in outputs:
        assert code == 0, out[-3000:]
    assert "tick 15 " in outputs[0][1] and "tick " not in outputs[1][1]  # process 0 alone prints the status
    expected = saved_states(cfg, uninterrupted)
    assert sorted(expected) == [*range(1, 16, 2), 16]
    log = (uninterrupted / "log.txt").read_text()
    assert "4 device(s), batch 8 (4 x 2)" in log
    assert log.count("tick 15 ") == 1 and log.count("4 device(s)") == 1  # process 0 alone writes the log
    kimgs = [f"{0.008 * step:010.3f}" for step in expected]  # NVIDIA's tick 0 after the first iteration
    assert sorted(p.name for p in uninterrupted.glob("*.png")) == [
        *(f"fakes{kimg}.png" for kimg in kimgs), "fakes_init.png", "reals.png"]
    assert sorted(p.name for p in uninterrupted.iterdir() if "network-snapshot" in p.name) == [
        f"network-snapshot-{kimg}" for kimg in kimgs]  # complete, nothing temporary left beside them
    assert_snapshot_is_the_checkpoint(uninterrupted, f"network-snapshot-{kimgs[-1]}", expected[16], capsys)

    run = tmp_path / "run"
    stopped = train_two_processes(cfg, run, args, sigterm_at=2)
    for code, out in stopped:
        assert code == 128 + signal.SIGTERM, out[-3000:]
    saved = re.findall(r"Stopped by SIGTERM at [0-9.]+ kimg; checkpoint saved at iteration (\d+)",
                       (run / "log.txt").read_text())
    assert len(saved) == 1 and 2 < int(saved[0]) < 16, saved
    stop = int(saved[0])
    assert max(saved_states(cfg, run)) == stop

    # SIGTERM again as the resumed run starts, before either process asked for the sync point (JAX counts the
    # asks from 0 at every start): both save after the first iteration and exit with 143 again.
    for code, out in train_two_processes(cfg, run, args, sigterm_at=0, moment="sigterm-at-start"):
        assert code == 128 + signal.SIGTERM, out[-3000:]
    saved = re.findall(r"Stopped by SIGTERM at [0-9.]+ kimg; checkpoint saved at iteration (\d+)",
                       (run / "log.txt").read_text())
    assert len(saved) == 2 and int(saved[1]) == stop + 1, saved
    again = int(saved[1])
    assert max(saved_states(cfg, run)) == again

    # Process 1's data position of that checkpoint damaged: both processes skip it (process 1 alone cannot
    # read it) and continue from the one before, the SIGTERM's first save.
    checkpoints = run / "checkpoints"
    (checkpoints / str(again) / "data" / "process_1-of-2.json").write_text("{not json")
    resumed_processes = train_two_processes(cfg, run, args)
    for code, out in resumed_processes:
        assert code == 0, out[-3000:]
    assert (f"skipping the unreadable checkpoint {checkpoints}/{again} (process(es) 1 cannot read their part)"
            in (run / "log.txt").read_text())
    assert (checkpoints / f"{again}.unreadable").is_dir()
    # Process 0 takes every program from the cache it wrote in the first run (JAX 0.10 on CPU lets the other
    # processes neither read nor write the cache: this may change with JAX).
    caches = [re.search(r"compilation cache: (\d+) hits, (\d+) misses", out).groups() for _, out in resumed_processes]
    assert int(caches[0][0]) > 0 and int(caches[0][1]) == 0, caches
    resumed = saved_states(cfg, run)
    assert sorted(resumed) == sorted(set(expected) | {stop})
    for step in [s for s in expected if s >= stop]:
        for a, b in zip(jax.tree.leaves(expected[step]), jax.tree.leaves(resumed[step]), strict=True):
            np.testing.assert_array_equal(a, b)
