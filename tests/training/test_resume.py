"""A run resumed from any of its checkpoints (as after a kill: the newer ones never written) continues bit
for bit as the run that never stopped: same states at every later checkpoint, saved at the same steps."""

import ast
import json
import os
import shutil
import signal
import struct

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest
from tensorboardX.proto import event_pb2

from stylegan_jax.network_snapshot import load_network
from stylegan_jax.training.checkpoint import MIN_REPLICA_SLICE_BYTES, PreemptionSync, make_manager
from stylegan_jax.training.config import load_experiment, shrink_to_tiny
from stylegan_jax.training.loop import Trainer, TrainingInterruptedError, kimg_tag, train
from tests.training.conftest import tiny_config
from tests.training.test_growing import adam_count, tiny_pggan


def saved_states(run) -> dict[int, list[np.ndarray]]:
    """Every checkpoint of a run directory: step -> the state's leaves, as stored."""
    with ocp.CheckpointManager((run / "checkpoints").absolute()) as manager:
        return {step: [np.asarray(x) for x in jax.tree_util.tree_leaves(
                    manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"])]
                for step in manager.all_steps()}


def grids(run) -> set[str]:
    """The fakes grids named by kimg a run wrote (``fakes<kimg_tag>.png``)."""
    return {p.name for p in run.glob("fakes0*.png")}


def tensorboard_events(path) -> list[event_pb2.Event]:
    """The events of a TensorBoard events file (TFRecord: length, its CRC, the event, its CRC)."""
    data, events, i = path.read_bytes(), [], 0
    while i < len(data):
        (length,) = struct.unpack("<Q", data[i : i + 8])
        events.append(event_pb2.Event.FromString(data[i + 12 : i + 12 + length]))
        i += 12 + length + 4
    return events


def purge_steps(run) -> list[int]:
    """The steps from which each events file of a run hides the earlier files' events (TensorBoard's purge:
    a session START after its file version)."""
    return [e.step for path in sorted(run.glob("events.out.tfevents.*")) for e in tensorboard_events(path)
            if e.HasField("session_log") and e.session_log.status == event_pb2.SessionLog.START]


def assert_resumes_from_every_checkpoint(cfg, tmp_path, steps: list[int]):
    """``steps``: the run's checkpoints. Each resumed run starts without the grids and writes those from its
    checkpoint on (the batch is constant in these runs: step ``s`` ends at ``s * batch`` images). Returns the
    uninterrupted run's final state."""
    final = train(cfg, tmp_path / "full")
    batch = (shrink_to_tiny(cfg) if cfg.get("tiny") else cfg).batch_size  # what the run trained with
    full = saved_states(tmp_path / "full")
    assert sorted(full) == steps
    for start in sorted(full)[:-1]:
        run = tmp_path / f"from{start}"
        shutil.copytree(tmp_path / "full", run)
        for later in [s for s in full if s > start]:
            shutil.rmtree(run / "checkpoints" / str(later))
        for grid in grids(run):
            (run / grid).unlink()
        before = purge_steps(run)
        train(cfg, run)
        # TensorBoard hides what the killed run wrote after its checkpoint (the kimg steps past it)
        assert purge_steps(run) == [*before, start * batch // 1000 + 1], f"resumed from {start}"
        assert grids(run) == {name for name in grids(tmp_path / "full")
                              if round(float(name[5:-4]) * 1000) >= start * batch}, f"resumed from {start}"
        resumed = saved_states(run)
        assert sorted(resumed) == sorted(full), f"resumed from {start}"
        for step in [s for s in full if s > start]:
            for a, b in zip(full[step], resumed[step], strict=True):
                np.testing.assert_array_equal(a, b, err_msg=f"resumed from {start}, step {step}")
    return final


@pytest.mark.slow
def test_stylegan2_resumes_from_every_periodic_checkpoint(data_dir, tmp_path):
    # 7 iterations of 8 images, a tick every iteration (NVIDIA's tick 0 the first), a checkpoint every 3 ticks:
    # steps 1, 4 and 7; a fakes grid every 2 ticks besides (NVIDIA's image_snapshot_ticks).
    cfg = tiny_config(data_dir, kimg=0.056, tick=0.008, snap=3, image_snap=2, keep=100)
    final = assert_resumes_from_every_checkpoint(cfg, tmp_path, [1, 4, 7])
    full = tmp_path / "full"  # and what else the run wrote
    assert (full / "reals.png").exists() and (full / "fakes_init.png").exists()
    assert list(full.glob("events.out.tfevents*"))
    # every save is its own snapshot and grid, though all fall within the first kimg; ticks 2 and 4 a grid alone
    assert sorted(p.name for p in full.glob("network-snapshot-*")) == [
        "network-snapshot-000000.008", "network-snapshot-000000.032", "network-snapshot-000000.056"]
    assert sorted(p.name for p in full.glob("fakes0*.png")) == [
        "fakes000000.008.png", "fakes000000.024.png", "fakes000000.032.png", "fakes000000.040.png",
        "fakes000000.056.png"]
    snapshot = load_network(full / "network-snapshot-000000.056")
    for a, b in zip(jax.tree_util.tree_leaves(snapshot.G_ema["params"]),
                    jax.tree_util.tree_leaves(jax.device_get(final.g_ema_params)), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_pggan_resumes_from_every_periodic_checkpoint_across_the_fade_in(data_dir, tmp_path, monkeypatch):
    """PGGAN's TF loop runs groups of ``minibatch_repeats`` = 4 iterations at the schedule of the images seen when
    the group starts (8x8 at 0; 16x16 fading in, alpha 2/3, at 32; 16x16 at 64), resetting the optimisers
    between groups, and checks ticks (from tick 1: it has no tick 0) and the end after each group, so that a
    72-image run ends at 96; each group here is a tick and a checkpoint (steps 4, 8, 12: ticks 1, 2 and the end,
    tick 1 by StyleGAN1's ``snap_tick_one``, as PGGAN's tiny ``snap`` is 2). Resumed from each,
    the run follows the same groups to the same states; a SIGTERM in iteration 5, or a multi-process
    preemption's sync point there, saves after iteration 8, where the next group starts, the state of the run
    that never stopped."""
    cfg = tiny_pggan(data_dir)
    cfg.update(kimg=0.072, tick=0.008, snap=2, snap_tick_one=True, keep=100)
    assert cfg.image_snap == load_experiment("ablations/stylegan1_a").image_snap == 1  # the TF loops' grids
    seen, sigterm_at = [], [None]
    run_iteration = Trainer.run_iteration

    def recording(self, state, batch, step, nimg=None, sched=None):
        seen.append((step, nimg, sched.resolution, sched.alpha, batch[0].shape[-2]))
        out = run_iteration(self, state, batch, step, nimg, sched)
        if step == sigterm_at[0]:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(Trainer, "run_iteration", recording)
    final = assert_resumes_from_every_checkpoint(cfg, tmp_path, [4, 8, 12])
    starts = [0, 4, 8]  # the run, then resumed from 4 and 8
    assert [s[:2] for s in seen] == [(i, 8 * i) for start in starts for i in range(start, 12)]
    groups = [(8, 1.0, 8)] * 4 + [(16, pytest.approx(2 / 3), 16)] * 4 + [(16, 1.0, 16)] * 4
    assert [s[2:] for s in seen] == [group for start in starts for group in groups[start:]]
    assert adam_count(final.g_opt) == adam_count(final.d_opt) == 4  # reset after iterations 4 and 8
    lines = [json.loads(line) for line in (tmp_path / "full" / "stats.jsonl").read_text().splitlines()]
    assert [round(line["Progress/kimg"]["mean"] * 1000) for line in lines] == [32, 64, 96]
    assert [line["Progress/tick"]["mean"] for line in lines] == [1, 2, 3]
    assert [line["Progress/lod"]["mean"] for line in lines] == pytest.approx([1.0, 1 / 3, 0.0])  # the tick's
    # every tick's, after the initial G_ema's, which PGGAN's loop names after kimg 0 (no fakes_init.png)
    assert grids(tmp_path / "full") == {f"fakes000000.{n:03d}.png" for n in (0, 32, 64, 96)}
    assert not (tmp_path / "full" / "fakes_init.png").exists()

    for stop in ("sigterm", "preemption"):
        run = tmp_path / stop
        shutil.copytree(tmp_path / "full", run)
        for later in (8, 12):
            shutil.rmtree(run / "checkpoints" / str(later))
        with monkeypatch.context() as patch:
            if stop == "sigterm":
                sigterm_at[0] = 5
            else:  # a multi-process run's sync point: the second ask of the run resumed at 4, after iteration 5
                sigterm_at[0] = None

                def reached(sync):
                    sync.asks += 1
                    return sync.asks == 2

                patch.setattr(PreemptionSync, "reached", reached)
            with pytest.raises(TrainingInterruptedError) as stopped:
                train(cfg, run)
        assert stopped.value.saved_step == 8 and sorted(saved_states(run)) == [4, 8], stop
        for a, b in zip(saved_states(tmp_path / "full")[8], saved_states(run)[8], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=stop)


def test_saves_are_named_as_nvidia_names_them_where_its_flags_allow_the_run():
    cfg = ml_collections.ConfigDict({"tick": 4.0, "kimg": 25000.0})  # whole kimg per tick and in all
    assert [kimg_tag(cfg, n) for n in (0, 1008, 4032, 25_000_032)] == ["000000", "000001", "000004", "025000"]
    cfg.tick = 0.5  # two saves can fall within one kimg
    assert [kimg_tag(cfg, n) for n in (504, 1008, 1512)] == ["000000.504", "000001.008", "000001.512"]
    cfg.tick, cfg.kimg = 1.0, 10.5  # the last save can fall within a kimg of the one before
    assert [kimg_tag(cfg, n) for n in (10_000, 10_500)] == ["000010.000", "000010.500"]


def test_keep_every_keeps_a_checkpoint_at_least_every_n_steps_past_tick_0(tmp_path):
    """Snapshot points at 1 + multiples of their interval (NVIDIA's tick 0 at step 1): ``keep_every`` 4 keeps
    the first and each one 4 or more steps after the last kept, beside the newest ``keep``."""
    cfg = ml_collections.ConfigDict({"keep": 1, "keep_every": 4})
    with make_manager(tmp_path / "checkpoints", cfg) as manager:
        for step in (1, 3, 5, 7, 9, 11):
            manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave({"x": np.zeros(2)})), force=True)
            manager.wait_until_finished()
        assert manager.all_steps() == [1, 5, 9, 11]


def test_a_replicated_state_saves_small_arrays_from_one_device_and_restores_them(tmp_path):
    """On 4 devices: arrays whose slice per device would be under `MIN_REPLICA_SLICE_BYTES` are written whole
    (by one device), a larger one in Orbax's replica-parallel slices (one per device, write_shape a quarter
    of it), and both restore to the saved values."""
    mesh = jax.sharding.Mesh(jax.devices()[:4], ("data",))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    rows = 4 * MIN_REPLICA_SLICE_BYTES // (4 * 256)  # float32 [rows, 256]: 4 slices of the minimum each
    values = {"small": np.arange(16 * 16, dtype=np.float32).reshape(16, 16),
              "large": np.arange(rows * 256, dtype=np.float32).reshape(rows, 256)}
    state = jax.device_put(values, replicated)
    with make_manager(tmp_path / "checkpoints", ml_collections.ConfigDict({"keep": 1, "keep_every": 0})) as manager:
        manager.save(1, args=ocp.args.Composite(state=ocp.args.StandardSave(state)), force=True)
        manager.wait_until_finished()
        restored = manager.restore(1, args=ocp.args.Composite(state=ocp.args.StandardRestore(state)))["state"]
    tree = json.loads((tmp_path / "checkpoints" / "1" / "state" / "_METADATA").read_text())["tree_metadata"]
    write_shapes = {ast.literal_eval(key)[0]: value["value_metadata"]["write_shape"] for key, value in tree.items()}
    assert write_shapes == {"small": [16, 16], "large": [rows // 4, 256]}
    for name, value in values.items():
        np.testing.assert_array_equal(np.asarray(restored[name]), value)
