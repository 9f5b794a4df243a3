"""A run stopped in a subprocess running the CLI continues exactly as one that never stopped, after SIGTERM (it
saves at the end of the iteration and exits with 143) and after SIGKILL at named moments (no handler runs; the
newest complete checkpoint is the one to resume from), when the user runs the same command again:
`tests.training.kill_at` drives the moments."""

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from stylegan_jax import train as train_cli
from stylegan_jax.training.loop import train
from tests.training.conftest import tiny_config


def cli_overrides(cfg):
    flat = {"dataset": cfg.dataset, "data_dir": cfg.data_dir, "resolution": cfg.resolution,
            "batch_size": cfg.batch_size, "batch_gpu": cfg.batch_gpu, "grid": cfg.grid}
    for net in ("G", "D"):
        for key in ("channel_base", "channel_max") + (("z_dim", "w_dim", "mapping_layers") if net == "G" else
                                                      ("mbstd_group_size",)):
            flat[f"{net}.{key}"] = cfg[net][key]
    return [f"--config.{k}={v}" for k, v in flat.items()]


def checkpoint_states(run) -> dict[int, list[np.ndarray]]:
    """step -> the saved state's leaves, for every complete checkpoint of a run directory."""
    with ocp.CheckpointManager((run / "checkpoints").absolute()) as manager:
        return {step: [np.asarray(x) for x in jax.tree_util.tree_leaves(
                    manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"])]
                for step in manager.all_steps()}


def killable_config(data_dir):
    """8 iterations of 8 images, NVIDIA's tick 0 after the first, then a tick every 2 iterations, and a
    checkpoint and snapshot at every tick: steps 1, 3, 5, 7 and 8 (the end); ADA's p updated after every
    iteration (so that a resumed run must continue p too)."""
    return tiny_config(data_dir, kimg=0.064, tick=0.016, snap=1, keep=100, aug="ada", ada_interval=1, ada_kimg=0.1)


#: `killable_config` on the command line, beside `cli_overrides`.
KILLABLE_FLAGS = ["--kimg", "0.064", "--tick", "0.016", "--snap", "1", "--config.keep=100", "--aug", "ada",
                  "--config.ada_interval=1", "--config.ada_kimg=0.1"]


def tick_stats(run) -> list[dict]:
    """The ticks of the run's stats.jsonl without the wall-clock values (timing, memory)."""
    lines = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k.startswith(("Loss/", "Progress/"))} for line in lines]


def snapshot_outputs(run) -> list[str]:
    """The names of the network snapshots and fakes grids a run wrote."""
    return sorted(p.name for p in run.iterdir() if p.name.startswith(("network-snapshot-", "fakes")))


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    """The checkpoints, the ticks of stats.jsonl and the snapshot outputs of `killable_config`'s run that
    nobody stopped."""
    run = tmp_path_factory.mktemp("uninterrupted")
    final = train(killable_config(data_dir), run)
    assert 0 < float(final.aug["p"]) < 1  # p moved: the resumed runs must continue it
    return checkpoint_states(run), tick_stats(run), snapshot_outputs(run)


#: The kills of `test_a_run_stopped_at_each_named_moment_resumes_exactly`, in order, each in the run the one
#: before it left: (moment, iteration, the complete checkpoints after it, the unfinished saves' temporary
#: directories then: Orbax names them by step, so a save of 5 again writes into the one a kill left).
KILLS = [("before-snapshot", 3, [1, 3], 0),  # checkpoint 3 saved, its snapshot not made
         ("mid-save", 5, [1, 3], 1),  # resumed at 3: the snapshot made, the save of 5 cut off mid-write
         ("before-commit", 5, [1, 3], 1),  # resumed at 3 again: 5 written but not renamed
         ("mid-step", 6, [1, 3, 5], 0),  # resumed at 3: 5 saved (into the temporary directory left), killed next
         ("sigterm", 5, [1, 3, 5, 6], 0)]  # resumed at 5: SIGTERM in its first iteration saves 6, mid-tick


@pytest.mark.slow
def test_a_run_stopped_at_each_named_moment_resumes_exactly(data_dir, tmp_path, uninterrupted):
    """One run killed at each moment in turn, each time the user's command run again (the kill in a
    subprocess of the CLI), then left to finish: it ends with the checkpoints, ticks, snapshots and grids of
    the run that never stopped. One run for all moments rather than one each: a resume that were not exact
    at any of them would change every checkpoint after it."""
    uninterrupted, uninterrupted_ticks, uninterrupted_outputs = uninterrupted
    cfg = killable_config(data_dir)
    run = tmp_path / "run"
    command = ["--experiment", "digits", "--outdir", str(run), *KILLABLE_FLAGS, *cli_overrides(cfg)]
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir or "")
    for moment, step, saved, unfinished in KILLS:
        stopped = subprocess.run([sys.executable, "-m", "tests.training.kill_at", moment, str(step), *command],
                                 env=env, capture_output=True, text=True, timeout=600)
        output = stopped.stdout + stopped.stderr
        if moment == "sigterm":
            assert stopped.returncode == 128 + signal.SIGTERM, output
            assert "SIGTERM received: saving and stopping" in output
            assert "Stopped by SIGTERM at 0.048 kimg; checkpoint saved at iteration 6" in (run / "log.txt").read_text()
        else:
            assert stopped.returncode == -signal.SIGKILL, (moment, output)
        assert sorted(checkpoint_states(run)) == saved, moment
        leftovers = list((run / "checkpoints").glob("*.orbax-checkpoint-tmp*"))
        assert len(leftovers) == unfinished, (moment, leftovers)

    assert train_cli.main(command) == 0  # the user's last resume: the same command again
    resumed = checkpoint_states(run)
    # The checkpoints of the run that never stopped, with the same states, and SIGTERM's extra one at 6 (mid-tick:
    # the resumed run ends that tick where the run that never stopped ends it, at 7).
    assert sorted(resumed) == sorted(set(uninterrupted) | {6})
    for step in uninterrupted:
        for a, b in zip(uninterrupted[step], resumed[step], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"checkpoint {step}")
    # NVIDIA's stats.jsonl: each tick once (those a kill cut off from their checkpoint written again), with the
    # progress and (but for the tick SIGTERM split, 3, which reports its resumed part) the losses of the run
    # that never stopped; the same snapshots and grids (those a kill came before made on resume).
    ticks = tick_stats(run)
    assert [t["Progress/tick"]["mean"] for t in ticks] == [0, 1, 2, 3, 4]
    progress = [{k: v for k, v in t.items() if k.startswith("Progress/")} for t in ticks]
    assert progress == [{k: v for k, v in t.items() if k.startswith("Progress/")} for t in uninterrupted_ticks]
    assert ticks[:3] + ticks[4:] == uninterrupted_ticks[:3] + uninterrupted_ticks[4:]
    assert snapshot_outputs(run) == uninterrupted_outputs
