"""Orbax checkpoints of a run: the whole TrainState, the data iterator's position and metadata.

Orbax writes each step into a temporary directory and renames it when complete, so a half-written step
(a crash or a kill during the save) is never seen as a checkpoint. A complete step that cannot be read back
(a truncated or deleted file) is skipped with a warning naming it, and the newest readable one is used; a
run directory whose checkpoints are all unreadable is an error, never a silent fresh start.

With several processes, a step that one of them cannot read is skipped by all (they agree on each step).

The metadata records the image count, the tick count, the config and the training set's path and image count
(a dataset holding another number of images is refused). A checkpoint continues only the run
it belongs to: every config value that shapes the parameters or the trajectory must match (`RESUMABLE`
lists the ones that may change on resume), otherwise one error names the values.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from orbax.checkpoint._src.metadata import array_metadata_store
from orbax.checkpoint.checkpoint_managers import preservation_policy

from stylegan_jax.errors import first_line
from stylegan_jax.training.state import to_host

#: Config values a resumed run may change: its length, its reporting, where the data lives, and how the
#: host runs (the conv gradient rule, the matmul precision and the CPU fusion change rounding, not the algorithm).
RESUMABLE = ("kimg", "tick", "tick_by_resolution", "snap", "image_snap", "keep", "keep_every", "metrics", "grid",
             "grid_noise", "tick_zero", "snap_tick_one", "workers", "data_dir", "conv_grad", "allow_tf32",
             "cpu_fusion", "compile_cache")


def _tf_lineage(saved: dict) -> bool:
    """Whether a checkpoint's config is a TF lineage's run (TensorFlow's Adam)."""
    return saved.get("adam_epsilon_hat", False)


#: Config keys added after checkpoints were first written, with the value that does what a run did before
#: them, or a function of the checkpoint's config giving it: a checkpoint whose config lacks one continues a
#: run that has that value. ``real_labels_for_d_fakes`` and ``skip_nonfinite_updates`` came with the TF lineages'
#: label and optimiser rules: their runs are those with TensorFlow's Adam, and continue under their experiments'
#: presets.
LATER_KEYS = {"subset": 0, "grad_nan_to_num": True, "ema_before_g_step": False, "adam_epsilon_hat": False,
              "minibatch_repeats": 1, "real_labels_for_d_fakes": _tf_lineage, "skip_nonfinite_updates": _tf_lineage}

#: JSON files every complete step holds (Orbax's step metadata, the state's tree metadata, ours); a step
#: where one of them is missing or not JSON has damaged files and is not used, even where Orbax would restore
#: it with a logged error.
REQUIRED_FILES = ("_CHECKPOINT_METADATA", "state/_METADATA", "meta/metadata")
#: What a dataset records of its conversion (`stylegan_jax.data.read_dataset_info`) that a resumed run's is
#: compared with beside the image count (a difference is a warning: `restore`): the images' source (a folder,
#: archive or built-in) and dataset_tool's ``--transform``. Not ``dataset_id``: a built-in dataset made again,
#: or a folder converted again, is the same.
CONVERSION_KEYS = ("source", "transform")

#: The suffix an unreadable step's directory is renamed with (Orbax ignores it).
UNREADABLE = ".unreadable"


class CheckpointError(ValueError):
    """A checkpoint that cannot continue this run; the message is one line for the user."""


class _Manager(ocp.CheckpointManager):
    """Orbax's manager without its own asks of JAX's preemption sync point: it asks with the checkpoint's step,
    JAX counts asks from 0 at every start, and the loop asks with its own count (`PreemptionSync`); the
    loop's saves are forced, so nothing else depends on the answer."""

    def reached_preemption(self, step: int) -> bool:
        return False


class PreemptionSync:
    """JAX's preemption sync point of a multi-process run, asked once per iteration with this process's count of
    asks (1, 2, ...; every process asks as often). JAX counts from 0 at every start and sets the sync point
    one past the largest count when a notice arrives, so asking with a resumed run's step would never meet
    one set before the first ask (a SIGTERM during a resumed run's start-up would be lost). Always False for
    one process (its signals are its own: the loop's handler)."""

    def __init__(self):
        self.asks = 0

    def reached(self) -> bool:
        if jax.process_count() == 1:
            return False
        self.asks += 1
        try:
            return multihost_utils.reached_preemption_sync_point(self.asks)
        except RuntimeError:  # the preemption service is off (jax_enable_preemption_service)
            return False


#: The smallest part of a replicated array that Orbax's replica-parallel save has each device send: a smaller
#: array is sent whole by one device. Orbax slices every replicated array across the devices that hold it,
#: one device-side slice per device and array, which for a state of small arrays costs more than the copies
#: (docs/performance.md, "Checkpoint saves").
MIN_REPLICA_SLICE_BYTES = 1 << 20


def save_small_arrays_from_one_device() -> None:
    """Orbax's handler of jax.Arrays as its default (the same array metadata store) but with replica-parallel
    saving only for slices of at least `MIN_REPLICA_SLICE_BYTES` (Orbax's registry is per process). Orbax's
    warning that a handler replaces its default is kept off stderr (a refused run prints one line)."""
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        ocp.type_handlers.register_type_handler(jax.Array, ocp.type_handlers.ArrayHandler(
            min_slice_bytes_for_replica_parallel=MIN_REPLICA_SLICE_BYTES,
            array_metadata_store=array_metadata_store.Store()),  # what Orbax registers; its module is not exported
            override=True)
    finally:
        absl_logger.setLevel(level)


def make_manager(directory: Path, cfg: ml_collections.ConfigDict) -> ocp.CheckpointManager:
    """Keep the last ``cfg.keep`` checkpoints, plus, with ``cfg.keep_every`` N, the first checkpoint and then
    each one at least N steps after the last one so kept (snapshot points need not fall on multiples of N:
    at 1 + multiples of their interval after NVIDIA's tick 0, for one, so an exact multiple of N would miss them).
    Small arrays are saved from one device (`save_small_arrays_from_one_device`)."""
    save_small_arrays_from_one_device()
    policies = [preservation_policy.LatestN(n=cfg.keep)]
    if cfg.keep_every:
        policies.append(preservation_policy.EveryNSteps(interval_steps=cfg.keep_every, exact_interval=False))
    options = ocp.CheckpointManagerOptions(
        preservation_policy=preservation_policy.AnyPreservationPolicy(policies), enable_async_checkpointing=False,
        create=True, cleanup_tmp_directories=True,  # saves a kill or a full disk cut off (before the next save)
    )
    return _Manager(directory.absolute(), options=options)


def _plain(cfg: ml_collections.ConfigDict) -> dict[str, Any]:
    """The config as JSON values (tuples as lists), as the metadata stores it."""
    return json.loads(json.dumps(cfg.to_dict(), default=list))


def save(manager: ocp.CheckpointManager, state, iterator, cfg: ml_collections.ConfigDict, dataset: dict, nimg: int,
         tick: int, tick_start_nimg: int | None = None, snapshot: bool = False) -> None:
    """Save (collective: every process calls it) and wait until it is on disk. ``iterator`` must stand at
    the batch the next iteration trains on; ``nimg`` and ``tick`` are the images done and the number of the
    tick in progress (``tick0`` in the metadata: numbered as since NVIDIA's tick 0 was introduced);
    ``tick_start_nimg`` where the tick in progress began (default ``nimg``: a tick ends here); ``snapshot``:
    this checkpoint's images are a snapshot point (the network snapshot, grid and metrics follow the save,
    and a resumed run makes what a kill left unmade); ``dataset``: the training set's
    `stylegan_jax.data.read_dataset_info`, of which the ``path``, the ``num_images`` and the conversion's
    `CONVERSION_KEYS` are recorded, which a resumed run's is compared with (`restore`)."""
    meta = {"kimg": nimg / 1000, "nimg": nimg, "tick": tick, "config": _plain(cfg), "tick0": True,
            "dataset": {"path": str(dataset["path"]), "num_images": int(dataset["num_images"]),
                        **{k: dataset[k] for k in CONVERSION_KEYS if k in dataset}},
            "tick_start_nimg": nimg if tick_start_nimg is None else tick_start_nimg, "snapshot": snapshot}
    manager.save(int(to_host(state.step)), args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(iterator),
        meta=ocp.args.JsonSave(meta),
    ), force=True)
    manager.wait_until_finished()


#: How TensorStore (Orbax's array writer) reports the file system's refusal inside its ``ValueError``.
_OS_ERROR_CODE = re.compile(r"\[os_error_code='?(\d+)'?\]")


def refused_write(error: BaseException) -> OSError | None:
    """The file system's refusal behind a failed Orbax write (a full disk, a file size limit, a read-only
    disk): the ``OSError`` itself, or the one TensorStore reports as a ``ValueError`` ("... Failed to write ...
    [os_error_code=28]"); None for any other error (a bug, to be raised as it is)."""
    if isinstance(error, OSError):
        return error
    found = _OS_ERROR_CODE.search(str(error)) if isinstance(error, ValueError) else None
    return OSError(int(found[1]), os.strerror(int(found[1]))) if found else None


def _differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(saved) | set(current)):
        if not prefix and key in RESUMABLE:
            continue
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: checkpoint {a!r}, config {b!r}")
    return out


def restore(manager: ocp.CheckpointManager, abstract_state, iterator, cfg: ml_collections.ConfigDict,
            dataset: dict, warn: Callable[[str], None]) -> tuple[Any, dict]:
    """The newest readable checkpoint: ``(state, meta)``, the iterator set to its position. Unreadable
    steps are reported through ``warn`` and skipped; a checkpoint of another run raises `CheckpointError`,
    as does a directory with no readable step, and one whose training set held another number of images than
    ``dataset`` (its ``path`` and ``num_images``: the data position would index other images; checkpoints
    saved before 2026-12-07 do not record it); one of as many images converted from another source or with
    another ``--transform`` (`CONVERSION_KEYS`, recorded since 2026-12-08) is a warning through ``warn``.
    Collective: the processes agree on every step (a step one of them cannot read, its own data position for
    one, is skipped by all), so all continue from the same one."""
    steps, unreadable, reasons = sorted(manager.all_steps(), reverse=True), [], []

    def readable_everywhere(step: int, error: Exception | None) -> bool:
        failed = _failed_processes(error is not None)
        if not failed:
            return True
        reasons.append(_reason(error) if error is not None else
                       f"process(es) {', '.join(map(str, failed))} cannot read their part")
        warn(f"warning: skipping the unreadable checkpoint {manager.directory}/{step} ({reasons[-1]}); it is "
             f"moved to {_aside(Path(manager.directory), step).name}")
        unreadable.append(step)
        return False

    for step in steps:
        where = f"{manager.directory}/{step}"
        meta, error = None, None
        try:
            meta = _read_meta(manager, step)
        except Exception as e:  # noqa: BLE001 - any failure to read a step means: fall back to an older one
            error = e
        if not readable_everywhere(step, error):
            continue
        later = {k: v(meta["config"]) if callable(v) else v for k, v in LATER_KEYS.items()}
        diffs = _differences({**later, **meta["config"]}, _plain(cfg))
        if diffs:
            raise CheckpointError(f"{where} belongs to another run (" + "; ".join(diffs[:4]) +
                                  "); resume with the run's own settings or choose another --outdir")
        trained_on = meta.get("dataset", dataset)
        if trained_on["num_images"] != dataset["num_images"]:
            raise CheckpointError(f"{where} was trained on the {trained_on['num_images']} images of "
                                  f"{trained_on['path']}; the dataset at {dataset['path']} holds "
                                  f"{dataset['num_images']}: resume with the run's own dataset (--data, "
                                  "--config.data_dir)")
        saved_by = _process_count(Path(manager.directory) / str(step))
        if saved_by not in (None, jax.process_count()):
            raise CheckpointError(f"{where} was saved by {saved_by} process(es) (the data position is per process); "
                                  f"resume with {saved_by}, this run has {jax.process_count()}")
        error = None
        try:
            _restore_position(Path(manager.directory) / str(step), iterator)
        except Exception as e:  # noqa: BLE001 - as above
            error = e
        if not readable_everywhere(step, error):
            continue
        restored, error = None, None
        try:
            restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
        except Exception as e:  # noqa: BLE001 - as above
            error = e
        if not readable_everywhere(step, error):
            continue
        _set_aside(manager, unreadable)
        _warn_of_another_conversion(where, trained_on, dataset, warn)
        return restored["state"], meta
    raise CheckpointError(f"{manager.directory}: none of the checkpoints {steps} can be read (the newest, "
                          f"{steps[0]}: {reasons[0]}); start afresh with another --outdir")


def _warn_of_another_conversion(where: str, trained_on: dict, dataset: dict, warn: Callable[[str], None]) -> None:
    """A warning through ``warn`` where the run's dataset, of as many images, was converted from another source
    or with another ``--transform`` than the one the checkpoint ``where`` trained on (`CONVERSION_KEYS`): other
    images under the same name, or the same images converted again from a moved folder, which only the user
    can tell apart; the run continues."""
    shown = {"source": "source", "transform": "--transform"}
    differ = [f"{shown[k]} {trained_on[k] or 'none'!r}, now {dataset.get(k) or 'none'!r}" for k in CONVERSION_KEYS
              if k in trained_on and trained_on[k] != dataset.get(k)]
    if differ:
        warn(f"warning: {where} was trained on a dataset of as many images converted otherwise ({'; '.join(differ)}"
             f"); continuing on the dataset at {dataset['path']}: if these are other images, stop and resume with "
             "the run's own dataset (--data, --config.data_dir)")


def _read_meta(manager: ocp.CheckpointManager, step: int) -> dict:
    """A step's metadata, with the keys later versions added filled in as the run that wrote it had them;
    raises where its `REQUIRED_FILES` are damaged or its metadata lacks the image count or the config."""
    damaged = _damaged_files(Path(manager.directory) / str(step))
    if damaged:
        raise CheckpointError("; ".join(damaged))
    meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    if not isinstance(meta, dict) or not {"kimg", "config"} <= set(meta):
        raise CheckpointError(f"its metadata has no kimg and config: {str(meta)[:80]}")
    meta.setdefault("nimg", round(meta["kimg"] * 1000))  # checkpoints written before nimg and tick
    meta.setdefault("tick", 0)
    meta.setdefault("tick_start_nimg", meta["nimg"])  # written before ticks could span a resume
    meta.setdefault("snapshot", False)
    if not meta.get("tick0"):  # ticks counted before tick 0 existed: as if it had been, same cadence
        meta["tick"] += 1
    return meta


def _restore_position(step_dir: Path, iterator) -> None:
    """Set ``iterator`` to the data position this process saved in a step (grain's ``CheckpointSave`` file,
    ``data/process_<i>-of-<n>.json``). Read here, not through Orbax: Orbax's restore ends at a barrier of all
    processes, which a process that cannot read its own position would fail to reach."""
    name = f"process_{jax.process_index()}-of-{jax.process_count()}.json"
    iterator.set_state(json.loads((step_dir / "data" / name).read_text()))


def _failed_processes(failed: bool) -> list[int]:
    """The indices of the processes that report a failure (collective in a multi-process run)."""
    if jax.process_count() == 1:
        return [0] if failed else []
    flags = multihost_utils.process_allgather(np.array(failed))
    return [int(i) for i in np.flatnonzero(flags)]


def _process_count(step_dir: Path) -> int | None:
    """How many processes saved a step, from its data positions' names (``process_<i>-of-<n>.json``), if any."""
    counts = {m[1] for f in (step_dir / "data").glob("process_*-of-*.json")
              if (m := re.fullmatch(r"process_\d+-of-(\d+)\.json", f.name))}
    return int(counts.pop()) if len(counts) == 1 else None


def _damaged_files(step_dir: Path) -> list[str]:
    """What is wrong with the step's `REQUIRED_FILES`, one phrase per damaged file (empty when all are sound)."""
    damaged = []
    for name in REQUIRED_FILES:
        try:
            json.loads((step_dir / name).read_bytes())
        except FileNotFoundError:
            damaged.append(f"{name} missing")
        except (OSError, ValueError) as e:  # a directory in its place, unreadable, not UTF-8 or not JSON
            damaged.append(f"{name} unreadable ({type(e).__name__})")
    return damaged


def _aside(directory: Path, step: int) -> Path:
    """Where an unreadable step is moved: ``<step>.unreadable``, or ``-2``, ``-3``... after it where a step of
    that number was set aside before (a resumed run saves the same steps again)."""
    path, n = directory / f"{step}{UNREADABLE}", 1
    while path.exists():
        n += 1
        path = directory / f"{step}{UNREADABLE}-{n}"
    return path


def _set_aside(manager: ocp.CheckpointManager, steps: list[int]) -> None:
    """Rename unreadable steps to ``<step>.unreadable`` (kept for a post-mortem, out of the way of the steps the
    resumed run saves again); process 0 renames, every process then sees the new listing."""
    if not steps:
        return
    if jax.process_index() == 0:
        for step in steps:
            path = Path(manager.directory) / str(step)
            path.rename(_aside(path.parent, step))
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("stylegan_jax: unreadable checkpoints set aside")
    manager.reload()


def _reason(error: Exception) -> str:
    """The first line of the error that caused ``error`` first (Orbax wraps TensorStore's reason, the file and
    byte range, in a message that names neither), shortened: the readers' messages can be pages long."""
    root, seen = error, {id(error)}
    while (cause := root.__cause__ or (None if root.__suppress_context__ else root.__context__)) is not None \
            and id(cause) not in seen:
        root = cause
        seen.add(id(root))
    return f"{type(root).__name__}: {first_line(root)[:400]}"
