"""The training loop: ``train(cfg, workdir)`` runs or resumes a run in ``workdir``.

Progress is counted in images (kimg), in ticks of ``cfg.tick`` kimg (``cfg.tick_by_resolution``'s at its training
resolutions) after NVIDIA's tick 0 (a new run's first iteration, or group; ``cfg.tick_zero``); at tick 0, every
``cfg.snap`` ticks, at the end, and on SIGTERM (preemption; SIGINT too for one process) the whole state is
saved. NVIDIA's TensorFlow loops take ``cfg.minibatch_repeats`` iterations as their unit: the schedule is
evaluated, and ticks, the end and stops are checked, once per group of that many iterations (1: every
iteration, stylegan2-ada-pytorch's loop). Every process computes and takes part in saves; only process 0 writes logs and
images.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from stylegan_jax import image_size, losses
from stylegan_jax.atomic import atomic_write
from stylegan_jax.data import (
    check_dataset_info,
    is_dataset,
    make_dataset,
    make_iterator,
    read_dataset_info,
    read_labels,
    resolve_dataset,
)
from stylegan_jax.data.pipeline import to_float
from stylegan_jax.durations import format_time
from stylegan_jax.errors import ConfigError
from stylegan_jax.models import get_family
from stylegan_jax.network_snapshot import Network, save_network, snapshot_names
from stylegan_jax.nn.progressive import grown_at_lod
from stylegan_jax.nn.resolution import block_shape
from stylegan_jax.runtime import compilation_cache
from stylegan_jax.training import checkpoint, hyperparams
from stylegan_jax.training.config import resolve_auto, resolve_batch_derived, shrink_to_tiny, to_json
from stylegan_jax.training.labels import LabelDistribution
from stylegan_jax.training.reporting import Reporter, format_kimg, resident_memory_gb
from stylegan_jax.training.schedule import (
    Schedule,
    batch_of,
    batch_unit,
    downsample,
    full_resolution,
    lod_changed,
    resolutions,
    schedule,
)
from stylegan_jax.training.state import TrainState, init_state, make_optimizer, to_host, with_frozen
from stylegan_jax.training.stats import reported_means, tick_stats
from stylegan_jax.training.steps import (
    FINITE,
    PHASES,
    Layout,
    Phases,
    active_phases,
    check_config,
    checked_resolution,
    compile_phases,
    make_layout,
    resolve_conv_grad,
)
from stylegan_jax.training.transfer import initialise_from, load_source, transfer_settings


class TrainingDivergedError(RuntimeError):
    """A non-finite loss or parameter; the message names the step and the phase."""


class RunDirectoryError(OSError):
    """The run directory cannot be used (a file, not writable, full, or in use by another run); one line."""


@contextlib.contextmanager
def _refused_writes(what: str, then: str) -> Iterator[None]:
    """The file system's refusal of a write in the block (a full or read-only disk, a quota; TensorStore's
    included: `checkpoint.refused_write`) as one `RunDirectoryError`: ``cannot write <what> (<reason>); <then>``;
    any other error as it is."""
    try:
        yield
    except (OSError, ValueError) as e:
        if (refused := checkpoint.refused_write(e)) is None:
            raise
        raise RunDirectoryError(f"cannot write {what} ({refused.strerror or e}); {then}") from None


class TrainingInterruptedError(BaseException):
    """SIGTERM or SIGINT stopped the run; ``saved_step`` is the iteration its checkpoint was saved at (None
    when the signal came before any iteration ran, so that the newest checkpoint is still the run's).

    An interrupt, not an error (a `BaseException`, as ``KeyboardInterrupt``): a second signal raises it from
    wherever the run is, and no ``except Exception`` on the way may take it for that code's failure (the
    restore of a checkpoint would set the checkpoint aside as unreadable)."""

    def __init__(self, signal_name: str, saved_step: int | None):
        self.signal_name, self.saved_step = signal_name, saved_step
        self.exit_status = 128 + signal.Signals[signal_name].value  # the shells' convention: 130, 143
        saved = (f"checkpoint saved at iteration {saved_step}" if saved_step is not None
                 else "nothing new to save")
        super().__init__(f"stopped by {signal_name}; {saved}; run the same command to resume")


class _StopSignal:
    """Remembers SIGTERM / SIGINT so that the loop saves and stops at the end of the iteration (of its group of
    ``cfg.minibatch_repeats``); a second signal stops at once (the newest checkpoint stays the run's).

    Single-process runs only: the processes of a multi-process run must agree on the iteration they stop
    after, or the collective save hangs. There JAX's preemption service keeps its SIGTERM handler, and the
    loop stops at JAX's preemption sync point (`checkpoint.PreemptionSync`), the same step on every process.
    """

    def __init__(self, announce: bool):
        self.received, self.announce = None, announce
        signals = (signal.SIGTERM, signal.SIGINT) if jax.process_count() == 1 else ()
        self._old = {sig: signal.signal(sig, self._handle) for sig in signals}

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received is not None:
            raise TrainingInterruptedError(name, saved_step=None)
        self.received = name
        if self.announce:
            print(f"\n{name} received: saving and stopping after this iteration (group) (again: stop at once)",
                  file=sys.stderr, flush=True)

    def restore(self):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def _running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        pass
    return True


class RunDirectory:
    """The run directory, created if needed and locked for the duration of a ``with`` block (process 0
    holds an advisory lock on ``<dir>/.lock``; the OS drops it if the process dies), so that a second
    training process on the same directory is refused instead of writing the same checkpoints. Once locked,
    what a killed run's writes left in it is removed: `atomic_write`'s temporary files, `save_network`'s
    temporary and replaced snapshot directories (``.<name>.tmp-<pid>``, ``.<name>.old-<pid>``), of processes
    that no longer run (another tool may be writing beside the run's files).

    A block that raises before anything but the lock is written there (a config error found while the
    run is built) removes the directories it created, so that a refused run leaves nothing behind. A dataset
    directory, or a directory inside one, is refused before anything is written."""

    def __init__(self, path: Path):
        self.path, self._lock, self._created = Path(path), None, None

    def __enter__(self) -> Path:
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"--outdir {self.path} is a file, not a directory")
        real = self.path.resolve()  # where the files go: '..' and links followed
        dataset = next((p for p in (real, *real.parents) if is_dataset(p)), None)
        if dataset is not None:  # a run's files beside a dataset's would be taken for part of it
            raise RunDirectoryError(f"--outdir {self.path} is {'' if dataset == real else 'inside '}the dataset "
                                    f"directory {dataset}; choose another --outdir")
        missing = [p for p in (self.path, *self.path.parents) if not p.exists()]
        self._created = missing[-1] if missing else None  # the outermost directory this block creates
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if jax.process_index() == 0:
                self._lock = open(self.path / ".lock", "a")  # noqa: SIM115 - held until __exit__; "a": no truncation
        except OSError as e:
            raise RunDirectoryError(f"--outdir {self.path}: cannot write there ({e.strerror or e})") from None
        if self._lock is not None:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._lock.close()
                raise RunDirectoryError(f"--outdir {self.path} is in use by another training process (it holds "
                                        f"{self.path / '.lock'}); wait for it to end or choose another --outdir"
                                        ) from None
            for leftover in [*self.path.glob(".*.tmp-*"), *self.path.glob(".network-snapshot-*.old-*")]:
                pid = leftover.name.rpartition("-")[2]
                if not pid.isdigit() or _running(int(pid)):
                    continue
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()
        return self.path

    def __exit__(self, exc_type, *exc) -> None:
        if self._lock is not None:
            self._lock.close()
            if exc_type is not None and self._created is not None and self._holds_only_the_lock():
                shutil.rmtree(self._created, ignore_errors=True)

    def _holds_only_the_lock(self) -> bool:
        return [p for p in self._created.rglob("*") if not p.is_dir()] == [self.path / ".lock"]


def check_parameter_shapes(g_params: Any, d_params: Any) -> None:
    """A config that gives a network an empty parameter (a zero width) is an error before the first step (and
    in a dry run): ``g_params`` and ``d_params`` are the networks' parameter trees (abstract shapes will do)."""
    for net, params in (("G", g_params), ("D", d_params)):
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
            if 0 in leaf.shape:
                raise ConfigError(f"{net}'s parameter {jax.tree_util.keystr(path)} has the empty shape {leaf.shape}: "
                                  f"check --config.{net} widths (channel_base, channel_max, ...)")


def run_config(cfg: ml_collections.ConfigDict, devices: list) -> ml_collections.ConfigDict:
    """The config a run on ``devices`` uses (what ``config.json`` records): a copy with ``tiny`` applied, auto's
    values filled in (`resolve_auto`), NVIDIA's settings for a run from a pretrained network
    (`transfer_settings`), the resolution checked and spelled as datasets record it (`checked_resolution`) and
    ``conv_grad`` resolved for the mesh (`resolve_conv_grad`)."""
    from_dataset = cfg.get("resolution") is None  # then the dataset's (`fill_from_dataset`)
    cfg = copy.deepcopy(transfer_settings(resolve_batch_derived(resolve_auto(shrink_to_tiny(cfg), len(devices)))))
    cfg.resolution = checked_resolution(cfg, from_dataset)
    cfg.conv_grad = resolve_conv_grad(cfg.conv_grad, len(devices), devices[0].platform)
    return cfg


def kimg_tag(cfg: ml_collections.ConfigDict, nimg: int) -> str:
    """The kimg in the names of the snapshot, the fakes grid and the metrics line saved at ``nimg`` images.

    NVIDIA's ``nimg // 1000`` in six digits (``000008``) where NVIDIA's flags allow the run (ticks of at least
    1 kimg at every resolution, a whole kimg), so that no two saves of a run share a name; with a tick under 1 kimg or a
    fractional kimg (our extension) two saves can fall within one kimg, and the images past it follow
    (``000000.064``), so that none overwrites another.
    """
    whole = f"{nimg // 1000:06d}"
    if min([cfg.tick, *dict(cfg.get("tick_by_resolution", ())).values()]) >= 1 and float(cfg.kimg).is_integer():
        return whole
    return f"{whole}.{nimg % 1000:03d}"


def first_fakes_name(cfg: ml_collections.ConfigDict, nimg: int) -> str:
    """The name of a new run's first fakes grid: ``fakes_init`` (stylegan2-ada-pytorch and StyleGAN2's TF loop),
    or, in the loops without a tick 0 (``cfg.tick_zero`` False: PGGAN's and StyleGAN1's), the kimg's as their
    snapshots' grids are named (``fakes000000``)."""
    return "fakes_init" if cfg.tick_zero else f"fakes{kimg_tag(cfg, nimg)}"


def snapshot_tick(cfg: ml_collections.ConfigDict, tick: int) -> bool:
    """Whether the end of tick ``tick`` is a snapshot point (so is the run's end): every ``cfg.snap`` ticks
    (tick 0 too, where the run has one), and tick 1 with ``cfg.snap_tick_one`` (StyleGAN1's TF loop)."""
    return tick % cfg.snap == 0 or (cfg.snap_tick_one and tick == 1)


def check_run(cfg: ml_collections.ConfigDict, num_devices: int) -> None:
    """What a run of ``cfg`` (resolved: `run_config`) on ``num_devices`` devices cannot use, as one clear error
    naming the keys, before anything is built: `check_config`, every training resolution's batch
    arithmetic (`make_layout`), and the metrics: one that cannot score this run is named now, not after the
    first tick. (Their detector files are this machine's, checked by the `Trainer`: a dry run describes a run
    meant for another machine.)"""
    family = get_family(cfg.model)
    check_config(cfg, family)
    for res in resolutions(cfg):
        make_layout(cfg, num_devices, *batch_of(cfg, res), resolution=res)
    if cfg.metrics:  # lazily imported: the metrics package is optional for training
        from stylegan_jax.metrics.metric_main import MetricError, check_metric

        for name in cfg.metrics:
            try:
                check_metric(name, family, image_size.network_resolution(cfg.resolution))
            except MetricError as e:
                raise ConfigError(f"--metrics {name}: {e} (or train without it: --metrics none)") from None


def label_count(cfg: ml_collections.ConfigDict, info: dict, path: Path) -> int:
    """The run's label dimension on the dataset at ``path`` (``info``: its `read_dataset_info`): 0 for an
    unconditional run, else the dataset's; a conditional run on a dataset without labels, or of another class
    count than a stated ``cfg.c_dim``, is a `ConfigError`."""
    if not cfg.conditional:
        return 0
    if not info["c_dim"]:
        raise ConfigError(f"--cond 1 / --config.conditional=True but the dataset at {path} has no labels")
    if cfg.c_dim and cfg.c_dim != info["c_dim"]:
        raise ConfigError(f"--config.c_dim={cfg.c_dim} but the dataset at {path} has {info['c_dim']} classes")
    return info["c_dim"]


class Trainer:
    """Networks, phases, data and checkpoints of one run (``self.cfg``: `run_config`)."""

    def __init__(self, cfg: ml_collections.ConfigDict, workdir: Path, devices: list | None = None):
        self.devices = jax.devices() if devices is None else devices
        cfg = run_config(cfg, self.devices)
        self.family = get_family(cfg.model)
        self.cfg, self.workdir = cfg, Path(workdir)
        self.dataset_path = path = resolve_dataset(cfg.dataset, data_dir=cfg.data_dir or None,
                                                   resolution=cfg.resolution)
        info = read_dataset_info(path)
        c_dim = label_count(cfg, info, path)
        check_dataset_info(info, resolution=cfg.resolution, channels=cfg.img_channels,
                           c_dim=c_dim if cfg.conditional else None)
        if cfg.subset > info["num_images"]:
            raise ConfigError(f"--subset {cfg.subset}: the dataset at {path} holds {info['num_images']} images")
        if 0 < cfg.subset < jax.process_count():
            raise ConfigError(f"--subset {cfg.subset}: each of the {jax.process_count()} processes reads its own share "
                              "of the images; give at least one per process")
        if info["num_images"] < jax.process_count():
            raise ConfigError(f"the dataset at {path} holds {info['num_images']} images, and each of the "
                              f"{jax.process_count()} processes reads its own share: give at least one per process")
        self.c_dim = c_dim
        self.dataset_info = info
        #: the training set as NVIDIA's Dataset arguments: all images, or --subset of them chosen by the seed
        self.subset = {"max_size": cfg.subset or None, "random_seed": cfg.seed}
        #: the training set's labels (None: unconditional): the grids' rows, and the distribution the generated
        #: images' labels are drawn from (``labels``; None too when the objective pairs each fake with a real)
        self.label_table = read_labels(path, **self.subset) if c_dim else None
        self.labels = LabelDistribution.of(self.label_table) if c_dim and not losses.objective(cfg).pairs else None
        self.mesh = Mesh(np.array(self.devices), ("data",))
        self.batch_sharding = NamedSharding(self.mesh, P("data"))
        self.replicated = NamedSharding(self.mesh, P())
        check_run(cfg, len(self.devices))
        if cfg.metrics:  # a missing detector file is named now, not after the first tick
            from stylegan_jax.metrics.metric_main import check_detectors

            check_detectors(cfg.metrics)
        self.G, self.D = self.family.build(cfg, c_dim)
        self.frozen_d = self.frozen_d_layers()
        self._phases: dict = {}  # training resolution -> (layout, optimisers, jitted phases), built when first met
        self.layout, (self.g_tx, self.d_tx), self.phases = self.phases_for(schedule(cfg, 0))
        unit = batch_unit(cfg)
        self.iterator = make_iterator(path, batch_size=unit // jax.process_count(), seed=cfg.seed, xflip=cfg.xflip,
                                      process_index=jax.process_index(), process_count=jax.process_count(),
                                      worker_count=cfg.workers, **self.subset)
        self.unit = unit
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero width: the check below names it
            self.abstract_state = jax.eval_shape(lambda: init_state(cfg, self.G, self.D, self.g_tx, self.d_tx))
        check_parameter_shapes(self.abstract_state.g_params, self.abstract_state.d_params)
        #: the network a new run starts from (``resume_from``), or None
        self.resume_source = self._load_resume_source()
        self.manager = checkpoint.make_manager(self.workdir / "checkpoints", cfg)
        #: where the run starts: images, the tick in progress and where it began, and whether the checkpoint
        #: it resumes from is a snapshot point (`restore_or_init`)
        self.start_nimg, self.start_tick_nimg, self.start_snapshot = 0, 0, False
        self.start_tick = 0 if cfg.tick_zero else 1
        self._generate: dict = {}

    def _load_resume_source(self) -> Network | None:
        """A new run's ``resume_from`` network (`transfer.load_source`), loaded before anything is written, so
        that a missing or bad file leaves nothing behind; None without one, and for a run with checkpoints
        (it continues from them and needs the file no more). A network of another model family than the run's
        is a `ConfigError`: only a few of its names could match (a mapping network), and the rest would start
        fresh beside them."""
        steps = self.workdir / "checkpoints"
        if not self.cfg.resume_from or (steps.is_dir() and any(p.name.isdigit() for p in steps.iterdir())):
            return None
        network = load_source(self.cfg.resume_from)
        if network.model != self.cfg.model:
            raise ConfigError(f"--config.resume_from={self.cfg.resume_from}: the network's model is "
                              f"{network.model!r}, this run's {self.cfg.model!r}; a transfer starts from a network "
                              "of the run's own model family")
        return network

    def frozen_d_layers(self) -> list[str]:
        """D's layers ``cfg.freeze_d`` freezes (the family's ``d_layers``, highest resolution first)."""
        n = self.cfg.freeze_d
        if not n:
            return []
        if self.family.d_layers is None:
            raise ConfigError(f"--config.freeze_d={n}: model {self.cfg.model!r} does not support freezing D's layers")
        c = self.cfg
        shapes = jax.eval_shape(lambda: self.D.init(jax.random.PRNGKey(0), jnp.zeros(
            (1, *image_size.parse(c.resolution), c.img_channels)), jnp.zeros((1, self.c_dim))))
        return self.family.d_layers(shapes["params"])[:n]

    def phases_for(self, sched: Schedule) -> tuple[Layout, tuple, dict]:
        """The layout, optimisers and jitted phases of one training resolution (one compilation each)."""
        if sched.resolution not in self._phases:
            cfg = self.cfg
            layout = make_layout(cfg, len(self.devices), sched.batch_size, sched.batch_gpu, sched.resolution)
            lazy = cfg.lazy_regularization  # NVIDIA scales lr and betas whenever lazy, even with a zero weight
            scheduled = hyperparams.schedules_adam(cfg)
            txs = (make_optimizer(sched.G_lr, cfg, cfg.G_reg_interval if lazy else None, scheduled),
                   with_frozen(make_optimizer(sched.D_lr, cfg, cfg.D_reg_interval if lazy else None, scheduled),
                               self.frozen_d))
            phases = Phases(cfg, self.family, self.G, self.D, *txs, layout, sched.resolution, self.labels,
                            self.frozen_d)
            self._phases[sched.resolution] = (layout, txs, compile_phases(phases, cfg.conv_grad, cfg.allow_tf32))
        return self._phases[sched.resolution]

    def initial_state(self) -> TrainState:
        init = jax.jit(lambda: init_state(self.cfg, self.G, self.D, self.g_tx, self.d_tx),
                       out_shardings=self.replicated)
        return init()

    def reset_optimizers(self, state: TrainState) -> TrainState:
        """Fresh optimiser states (NVIDIA's reset_opt_for_new_lod); Adam's and RMSProp's do not depend on lr."""
        if not hasattr(self, "_reset"):
            self._reset = jax.jit(lambda s: s.replace(g_opt=self.g_tx.init(s.g_params),
                                                      d_opt=self.d_tx.init(s.d_params)), out_shardings=self.replicated)
        return self._reset(state)

    def restore_or_init(self, resume: bool, warn=print) -> tuple[TrainState, bool]:
        """The newest readable checkpoint (the ``start_*`` attributes set from it; unreadable newer ones
        reported through ``warn``) or a fresh state, initialised from the ``resume_from`` network when the
        run has one (`transfer.initialise_from`, its report through ``warn``)."""
        if resume and self.manager.all_steps():
            abstract = jax.tree_util.tree_map(
                lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=self.replicated), self.abstract_state)
            state, meta = checkpoint.restore(self.manager, abstract, self.iterator, self.cfg, self.dataset_info,
                                             warn)
            self.start_nimg, self.start_tick = int(meta["nimg"]), int(meta["tick"])
            self.start_tick_nimg, self.start_snapshot = int(meta["tick_start_nimg"]), bool(meta["snapshot"])
            return state, True
        state, source = self.initial_state(), self.resume_source
        self.resume_source = None  # the network is not kept once its arrays are in the state
        if source is not None:
            state, nimg = initialise_from(state, source, self.cfg.resume_from,
                                          image_size.network_resolution(self.cfg.resolution), warn)
            self.start_nimg = self.start_tick_nimg = nimg  # an R3GAN snapshot's cur_nimg, else 0
        return state, False

    def save(self, state: TrainState, nimg: int, tick: int, tick_start_nimg: int | None = None,
             snapshot: bool = False) -> None:
        """The checkpoint of ``state`` after ``nimg`` images and ``tick`` ticks (`checkpoint.save`), the data
        iterator standing at the next iteration's batch; a write that fails (a full or read-only disk) leaves
        the newest complete checkpoint intact and ends the run with one line."""
        with _refused_writes(f"a checkpoint in {self.manager.directory}",
                             f"the newest complete one ({self.manager.latest_step()}) is intact"):
            checkpoint.save(self.manager, state, self.iterator, self.cfg, self.dataset_info, nimg, tick,
                            tick_start_nimg, snapshot)

    def next_batch(self, sched: Schedule | None = None) -> tuple[jax.Array, jax.Array]:
        """The next iteration's reals (iterator batches joined, images box-downsampled to the schedule's
        resolution) as device arrays: one global batch, or two under a pairing objective (D's, then G's:
        R3GAN draws one for each; `device_batch` interleaves them per minibatch)."""
        sched = sched or schedule(self.cfg, 0)
        halves = 2 if losses.objective(self.cfg).pairs else 1
        parts = [next(self.iterator) for _ in range(halves * sched.batch_size // self.unit)]
        batch = {k: np.concatenate([p[k] for p in parts]) for k in ("image", "label")}
        if sched.resolution is not None:
            batch["image"] = downsample(batch["image"], full_resolution(self.cfg) // sched.resolution)
        return self.device_batch(batch, sched, halves)

    def device_batch(self, batch: dict, sched: Schedule | None = None,
                     halves: int = 1) -> tuple[jax.Array, jax.Array]:
        """A process-local batch of ``halves`` batches in turn -> global arrays [K, halves * batch_gpu, ...]
        sharded over the devices: minibatch k holds the k-th minibatch of each batch side by side."""
        bg = self.phases_for(sched or schedule(self.cfg, 0))[0].batch_gpu
        k = batch["image"].shape[0] // (bg * halves)

        def minibatches(x):
            x = x.reshape(halves, k, bg, *x.shape[1:]).swapaxes(0, 1)
            return x.reshape(k, halves * bg, *x.shape[3:])

        image = minibatches(batch["image"])
        label = minibatches(batch["label"][:, : self.c_dim])
        return (jax.make_array_from_process_local_data(self.batch_sharding, image),
                jax.make_array_from_process_local_data(self.batch_sharding, label))

    def run_iteration(self, state: TrainState, batch, step: int, nimg: int | None = None,
                      sched: Schedule | None = None) -> tuple[TrainState, dict]:
        """Iteration ``step``'s phases after ``nimg`` images (NVIDIA's ``cur_nimg``; default ``step`` times the
        flat batch, the count of a run whose batch never changes), at the resolution and alpha of ``sched``
        (default ``schedule(cfg, nimg)``; the loop's is evaluated once per ``cfg.minibatch_repeats`` iterations):
        ``batch`` is `next_batch` of that schedule. The phases take the count as float32 (exact to 2^24 images,
        then to a relative 2^-24, enough for the schedules; a 10 Gimg run overflows int32)."""
        nimg = step * self.cfg.batch_size if nimg is None else nimg
        sched = schedule(self.cfg, nimg) if sched is None else sched
        phases = self.phases_for(sched)[2]
        alpha, count = np.float32(sched.alpha), np.float32(nimg)
        metrics = {}
        for name in active_phases(self.cfg, step):
            state, out = phases[name](state, *batch, alpha, count)
            metrics[name] = out
        return state, metrics

    def grid_images(self) -> np.ndarray:
        """A conditional run's grid as NVIDIA's (``setup_snapshot_image_grid``): [grid, grid] indices of the
        training set's (kept) images, row y holding images of the y-th distinct label (cycling) in NVIDIA's order
        (the labels sorted as reversed tuples: by class for classes), each label's images shuffled once by the
        seed and taken in turn."""
        table, n = self.label_table, self.cfg.grid
        by_label = np.argsort(table.image_rows, kind="stable")
        groups = dict(enumerate(np.split(by_label, np.cumsum(table.counts())[:-1])))
        order = np.lexsort(table.rows.T)  # the last column the primary key: the reversed tuples sorted
        rnd = np.random.RandomState(self.cfg.seed)
        for u in order:
            groups[u] = rnd.permutation(groups[u])
        rows = []
        for y in range(n):
            u = order[y % len(order)]
            rows.append(groups[u][np.arange(n) % len(groups[u])])
            groups[u] = np.roll(groups[u], -n)
        return np.stack(rows)

    def grid_reals(self) -> np.ndarray:
        """The reals grid [grid^2, H, W, C] in [-1, 1]: unconditional, the first batch of the seeded shuffle;
        conditional, the images of `grid_images`."""
        n = self.cfg.grid * self.cfg.grid
        if not self.c_dim:
            return next(make_iterator(self.dataset_path, batch_size=n, seed=self.cfg.seed, drop_remainder=False,
                                      **self.subset))["image"]
        stored = make_dataset(self.dataset_path, batch_size=1, shuffle=False, **self.subset).map(to_float)
        return np.concatenate([stored[int(i)]["image"] for i in self.grid_images().ravel()])

    def grid_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """Fixed z for the fakes grid (seeded by cfg.seed) and its labels: those of the reals grid's images
        (`grid_images`; NVIDIA's ``grid_c``)."""
        n = self.cfg.grid * self.cfg.grid
        z = np.random.RandomState(self.cfg.seed).randn(n, self.G.z_dim).astype(np.float32)
        if not self.c_dim:
            return z, np.zeros((n, 0), np.float32)
        return z, self.label_table.rows[self.label_table.image_rows[self.grid_images().ravel()]]

    def save_network(self, state: TrainState, nimg: int) -> None:
        """``network-snapshot-<kimg_tag>``: G, G_ema, D for ``generate --network``. Collective, as the
        checkpoints: every process calls it (`save_network` writes the arrays with all of them, the rest on
        process 0)."""
        G_kwargs, D_kwargs = self.family.network_kwargs(self.cfg, self.c_dim)
        G_kwargs = {**G_kwargs, **self.grown_kwargs(nimg)}
        directory = self.workdir / f"network-snapshot-{kimg_tag(self.cfg, nimg)}"
        with _refused_writes(f"the network snapshot {directory}",
                             "the checkpoint before it is complete: run the same command to write it"):
            save_network(directory, model=self.cfg.model, G_kwargs=G_kwargs, D_kwargs=D_kwargs,
                         G=to_host({"params": state.g_params, "buffers": state.g_buffers}),
                         G_ema=to_host({"params": state.g_ema_params, "buffers": state.g_ema_buffers}),
                         D=to_host({"params": state.d_params}),
                         metadata={"kimg": nimg / 1000, "config": self.cfg.name},
                         overwrite=True)

    def grown_kwargs(self, nimg: int) -> dict:
        """G's kwargs of a growing run's snapshot after ``nimg`` images: the schedule's resolution and fade-in
        (`stylegan_jax.nn.progressive.as_grown`: the tools and the metrics see the images trained so far, as
        NVIDIA's G with its lod); none once fully grown or without growing."""
        return grown_at_lod(schedule(self.cfg, nimg).lod, image_size.network_resolution(self.cfg.resolution))

    def fakes(self, state: TrainState, sched: Schedule | None = None, nimg: int = 0) -> np.ndarray:
        """G_ema's images of the fixed grid inputs at the schedule's resolution and alpha, repeated up to full
        resolution, [grid^2, H, W, C]; the noise inputs as ``cfg.grid_noise`` says, ``'random'`` drawn from the
        seed and ``nimg``, the images seen (the same grid again after a resume)."""
        sched = sched or schedule(self.cfg, 0)
        res = sched.resolution
        if res not in self._generate:
            grow = {} if res is None else {"resolution": res}
            self._generate[res] = jax.jit(lambda p, b, z, c, alpha, key: self.G.apply(
                {"params": p, "buffers": b}, z, c, noise_mode=self.cfg.grid_noise, rngs={"noise": key}, **grow,
                **({"alpha": alpha} if grow else {})))
        z, c = self.grid_inputs()
        chunk = max(self.layout.batch_gpu, 8)
        starts = range(0, len(z), chunk)
        keys = to_host(jax.random.split(jax.random.fold_in(jax.random.PRNGKey(self.cfg.seed), nimg % 2**32),
                                        len(starts)))  # host arrays, as z and c: one per chunk, the same everywhere
        out = [self._generate[res](state.g_ema_params, state.g_ema_buffers, z[i : i + chunk], c[i : i + chunk],
                                   np.float32(sched.alpha), key) for i, key in zip(starts, keys, strict=True)]
        images = np.concatenate(to_host(out))
        factor = image_size.parse(self.cfg.resolution)[0] // images.shape[1]
        return images.repeat(factor, axis=1).repeat(factor, axis=2)

    def snapshot(self, state: TrainState, nimg: int, sched: Schedule, reporter: Reporter,
                 missing_only: bool = False) -> None:
        """What a snapshot point writes after its checkpoint: the fakes grid, ``network-snapshot-<kimg_tag>``
        and the config's metrics. ``missing_only``: what is not there yet (a run resumed from a snapshot
        point whose process was killed or preempted before it wrote them all; the run directory is one
        that every process sees)."""
        tag = kimg_tag(self.cfg, nimg)
        if not (missing_only and (self.workdir / f"fakes{tag}.png").exists()):
            self.grid(state, nimg, sched, reporter)
        if not (missing_only and (self.workdir / f"network-snapshot-{tag}").exists()):
            self.save_network(state, nimg)
        self.metrics(state, nimg, reporter, missing_only)

    def grid(self, state: TrainState, nimg: int, sched: Schedule, reporter: Reporter) -> None:
        """The fakes grid ``fakes<kimg_tag>.png`` after ``nimg`` images (`fakes`: every process of a
        multi-process run calls this; process 0 writes it)."""
        reporter.grid(self.fakes(state, sched, nimg), self.cfg.grid, f"fakes{kimg_tag(self.cfg, nimg)}", nimg)

    def metrics(self, state: TrainState, nimg: int, reporter: Reporter, missing_only: bool = False) -> None:
        """The config's metrics of G_ema (``stylegan_jax.metrics``), appended to the run's results (replacing
        an earlier result for the same snapshot: one a fallback to an earlier checkpoint saved again) and
        logged as ``Metrics/<key>`` on process 0; ``missing_only``: those without a result for this snapshot
        yet."""
        if not self.cfg.metrics:
            return
        from stylegan_jax import metrics  # lazily: the metrics package is optional for training

        G_vars = {"params": state.g_ema_params, "buffers": state.g_ema_buffers}
        is_main = jax.process_index() == 0
        snapshot = f"network-snapshot-{kimg_tag(self.cfg, nimg)}"
        for name in self.cfg.metrics:
            if missing_only and metrics.has_result(self.workdir, name, str(self.workdir / snapshot)):
                continue
            result = metrics.calc_metric(name, G=self.G.clone(**self.grown_kwargs(nimg)), G_vars=G_vars,
                                         family=self.family,
                                         dataset=str(self.dataset_path), mirror=self.cfg.xflip, progress=is_main,
                                         subset=self.subset["max_size"], subset_seed=self.subset["random_seed"])
            if is_main:  # NVIDIA's report_metric: the line appended, printed and so in log.txt
                reporter.line(metrics.append_result(self.workdir, result, snapshot=str(self.workdir / snapshot),
                                                    replace=True))
            values = result["results"] if "results" in result else result
            reporter.scalars({f"Metrics/{k}": float(v) for k, v in values.items()}, nimg)


def _check_finite(history: list[tuple[int, dict]], checkpointed: bool) -> None:
    """Raise `TrainingDivergedError` at the first iteration and phase of ``history`` (host values of the
    phases' outputs) with a non-finite loss or non-finite updated parameters; ``checkpointed``: whether the
    run has a checkpoint (the message says it is kept, or that none was saved)."""
    kept = "the last good checkpoint is kept" if checkpointed else "no checkpoint was saved before it"
    for step, metrics in history:
        for phase in [p for p in PHASES if p in metrics]:
            for name, value in reported_means(metrics[phase]).items():
                if name != FINITE and not np.isfinite(value):
                    raise TrainingDivergedError(f"non-finite {name} ({value}) at iteration {step}, phase {phase}; "
                                                + kept)
            if not metrics[phase][FINITE]:
                raise TrainingDivergedError(f"non-finite parameters after iteration {step}, phase {phase}; " + kept)


def train(cfg: ml_collections.ConfigDict, workdir: str | Path, resume: bool = True,
          stop_at_step: int | None = None) -> TrainState:
    """Train (or resume) until ``cfg.kimg``; ``stop_at_step`` saves and returns after that iteration (after
    the group of ``cfg.minibatch_repeats`` iterations it ends in; NVIDIA's TF loops also end past ``cfg.kimg``).

    Raises `TrainingInterruptedError` after SIGTERM/SIGINT (having saved if an iteration ran since the start), and
    `RunDirectoryError`, `CheckpointError`, `ConfigError` or `TrainingDivergedError` with one line for the user.
    A finished run is not trained further (it returns the final state).
    """
    stop = _StopSignal(announce=jax.process_index() == 0)
    try:
        with RunDirectory(Path(workdir)) as workdir:
            return _train(cfg, workdir, resume, stop_at_step, stop)
    finally:
        stop.restore()


def _train(cfg: ml_collections.ConfigDict, workdir: Path, resume: bool, stop_at_step: int | None,
           stop: _StopSignal) -> TrainState:
    is_main, start_time = jax.process_index() == 0, time.time()  # NVIDIA's timers count the setup too
    with compile_cache(cfg.compile_cache, workdir):
        trainer = Trainer(cfg, workdir)
        try:
            return _loop(trainer, workdir, resume, stop_at_step, stop, is_main, start_time)
        finally:
            trainer.manager.close()


def compile_cache(choice: str, workdir: Path) -> contextlib.AbstractContextManager:
    """JAX's persistent compilation cache as ``cfg.compile_cache`` chooses, for the run: ``'auto'`` the cache
    the process has already (``JAX_COMPILATION_CACHE_DIR``) or else the run directory's ``compile-cache/``;
    ``'run'`` that one in any case; ``'off'`` none; else the directory it names. Every process of a
    multi-process run is given the one directory: JAX writes cache entries from process 0 only, so a directory
    per process stayed empty for the others (whose cache keys differ from process 0's on CPU, so that only
    process 0 finds its programs there: docs/performance.md)."""
    if not isinstance(choice, str) or not choice:
        raise ConfigError(f"--config.compile_cache: expected 'auto', 'run', 'off' or a directory, got {choice!r}")
    if choice == "auto" and jax.config.jax_compilation_cache_dir:
        return contextlib.nullcontext()
    if choice == "off":
        return compilation_cache(None)
    path = workdir / "compile-cache" if choice in ("auto", "run") else Path(choice).expanduser()
    if path.exists() and not (path.is_dir() and os.access(path, os.W_OK | os.X_OK)):
        raise ConfigError(f"the compilation cache {path} (--compile-cache {choice}) is not a directory this process "
                          "can write: remove it or give --compile-cache another directory (or 'off')")
    return compilation_cache(path)


def _loop(trainer: Trainer, workdir: Path, resume: bool, stop_at_step: int | None, stop: _StopSignal,
          is_main: bool, start_time: float) -> TrainState:
    cfg = trainer.cfg  # with --config.tiny applied and conv_grad resolved
    steps = trainer.manager.all_steps()
    if not resume and steps:
        raise RunDirectoryError(f"--no-resume: {workdir} already holds the checkpoints {steps} of a run; choose "
                                "another --outdir")
    snapshots = snapshot_names(workdir)
    if snapshots and not steps:  # a snapshot is written after its checkpoint is on disk
        raise RunDirectoryError(f"{workdir} holds a run's network snapshots ({snapshots[0]} ... {snapshots[-1]}) but "
                                "no checkpoint to continue it from; a new run there would overwrite them: choose "
                                "another --outdir")
    warnings: list[str] = []
    state, resumed = trainer.restore_or_init(resume, warn=warnings.append)  # before writing anything
    reporter = Reporter(workdir, is_main, start_nimg=trainer.start_nimg)
    try:
        for warning in warnings:
            reporter.line(warning)
        step, nimg, total = int(to_host(state.step)), trainer.start_nimg, int(cfg.kimg * 1000)
        if resumed and trainer.start_snapshot:  # the snapshot point it resumes from, if a kill left it unfinished
            trainer.snapshot(state, nimg, schedule(cfg, nimg), reporter, missing_only=True)
        if resumed and nimg >= total:
            reporter.line(f"{cfg.name} in {workdir} is finished ({format_kimg(nimg)} kimg of {format_kimg(total)}); "
                          "nothing to do (raise --kimg to train further)")
            return state
        if is_main:
            with atomic_write(workdir / "config.json", "w") as f:  # what calc_metrics reads of the run
                f.write(to_json(cfg))
        sched = schedule(cfg, nimg)
        layout = trainer.phases_for(sched)[0]
        growing_from = ""
        if sched.resolution:  # the canvas, W x H
            height, width = block_shape(image_size.network_resolution(cfg.resolution), sched.resolution)
            growing_from = f", growing from {width}x{height}"
        group = cfg.D.get("mbstd_group_size") if cfg.D.get("mbstd_num_channels", 1) else None  # 0: no layer
        clamped = (f"; D's minibatch-stddev groups of {layout.batch_gpu} (its mbstd_group_size {group} is more than "
                   "the per-device batch, which NVIDIA's layer takes then)" if group and group > layout.batch_gpu
                   else "")
        reporter.line(f"{'Resuming' if resumed else 'Starting'} {cfg.name} in {workdir} at {format_kimg(nimg)} kimg; "
                      f"{jax.device_count()} device(s), batch {layout.batch_size} ({layout.minibatches} x "
                      f"{layout.batch_gpu})" + growing_from + clamped)
        if is_main and not resumed:
            reporter.grid(trainer.grid_reals(), cfg.grid, "reals", None)
        if not resumed:  # the initial (or --resume-from) G_ema, from every process: `first_fakes_name`
            reporter.grid(trainer.fakes(state, sched, nimg), cfg.grid, first_fakes_name(cfg, nimg), None)
        return _iterate(trainer, state, step, nimg, total, sched, reporter, stop, stop_at_step, start_time)
    finally:
        reporter.close()


def _iterate(trainer: Trainer, state: TrainState, step: int, nimg: int, total: int, sched: Schedule,
             reporter: Reporter, stop: _StopSignal, stop_at_step: int | None, start_time: float) -> TrainState:
    """The iterations from ``step`` / ``nimg`` until done, stopped or preempted.

    The data iterator stands at the batch of the next iteration whenever a checkpoint is saved: the next
    batch is fetched while an iteration runs except when the iteration ends with a save, and then after it.
    Ticks end where a run that never stopped ends them: a preemption saves mid-tick without ending it (the
    checkpoint records where the tick began), and a run resumed from a snapshot point first makes what a kill
    left unmade there first (`_loop`). A tick between snapshots that ``cfg.image_snap`` asks a grid of writes
    it after the iteration (and after its save when preempted). ``start_time``: when the process began the run
    (NVIDIA's timers count the setup).
    """
    cfg, is_main = trainer.cfg, jax.process_index() == 0
    if stop.received:  # during start-up: nothing trained since the last checkpoint
        raise TrainingInterruptedError(stop.received, saved_step=None)
    bar = tqdm.tqdm(total=total, initial=nimg, unit="img", disable=not is_main, dynamic_ncols=True)
    tick, tick_start_nimg = trainer.start_tick, trainer.start_tick_nimg
    tick_start_time, timing_nimg = time.time(), nimg  # a tick resumed mid-way is timed from the resume
    maintenance_sec = tick_start_time - start_time  # before the first tick: the setup (NVIDIA's)
    history: list[tuple[int, dict]] = []
    checkpointed = bool(trainer.manager.all_steps())  # what a divergence's message says is kept
    tick_stats_before = reporter.last_stats  # NVIDIA's keep_previous: what a tick does not report, repeated
    batch = trainer.next_batch(sched)
    stopping = False  # a stop signal or the preemption sync point, acted on at the group's end
    preemption = checkpoint.PreemptionSync()
    try:
        while True:
            state, metrics = trainer.run_iteration(state, batch, step, nimg, sched)
            history.append((step, metrics))
            step, nimg = step + 1, nimg + sched.batch_size
            bar.update(sched.batch_size)
            # every process asks at every step until it is reached: the sync point can fall inside a group
            stopping = stopping or stop.received is not None or preemption.reached()
            last, group_end = sched, step % cfg.minibatch_repeats == 0  # checkpoints start groups
            if group_end:  # NVIDIA's TF loops: the schedule (and so the optimisers' reset) once per group
                sched = schedule(cfg, nimg)
                if sched.resolution and cfg.growing.reset_optimizer and lod_changed(last.lod, sched.lod):
                    state = trainer.reset_optimizers(state)  # before any save: a resumed run needs no reset
            done = group_end and (nimg >= total or (stop_at_step is not None and step >= stop_at_step))
            preempted = group_end and stopping
            # NVIDIA's tick 0 (if any) ends after a new run's first iteration (group); ticks k >= 1 take the tick
            # kimg of the iteration's schedule (NVIDIA's sched.tick_kimg)
            tick_end = group_end and (done or tick == 0 or nimg >= tick_start_nimg + last.tick * 1000)
            snapshot = tick_end and (done or snapshot_tick(cfg, tick))
            # a grid between snapshots (NVIDIA's image_snapshot_ticks), written after the save even when preempted
            # (one forward of G: the resumed run starts past this tick and would not write it)
            grid = tick_end and not snapshot and bool(cfg.image_snap) and tick % cfg.image_snap == 0
            save = snapshot or preempted
            if not save:
                batch = trainer.next_batch(sched)  # overlaps with the running iteration
            if len(history) > 1:  # the previous iteration, finished by now: no wait for the running one
                _check_finite(to_host(history[-2:-1]), checkpointed)
            if not (tick_end or preempted):
                continue
            fetched, history = to_host(history), []
            _check_finite(fetched, checkpointed)
            if tick_end:
                tick_end_time = time.time()
                aug_p = float(to_host(state.aug["p"])) if state.aug else None
                tick_stats_before = _report_tick(
                    reporter, bar, fetched, tick_stats_before, tick, nimg, last,  # NVIDIA's: the tick's lod
                    {"start": start_time, "tick_start": tick_start_time, "tick_end": tick_end_time,
                     "maintenance": maintenance_sec}, timing_nimg, aug_p,
                    hyperparams.progress(cfg, nimg - last.batch_size))  # R3GAN's: the last iteration's values
                tick += 1
            if save:
                trainer.save(state, nimg, tick, nimg if tick_end else tick_start_nimg, snapshot)
                checkpointed = True
                if snapshot and not preempted:  # a preempted run saves within seconds: the rest on resume
                    trainer.snapshot(state, nimg, sched, reporter)
                if not (done or preempted):
                    batch = trainer.next_batch(sched)
            if grid:
                trainer.grid(state, nimg, sched, reporter)
            if tick_end:
                tick_start_nimg, timing_nimg, tick_start_time = nimg, nimg, time.time()
                maintenance_sec = tick_start_time - tick_end_time
            if preempted:
                reason = stop.received or "SIGTERM"  # the preemption service's notice, multi-process
                reporter.line(f"Stopped by {reason} at {format_kimg(nimg)} kimg; checkpoint saved at iteration {step}")
                raise TrainingInterruptedError(reason, saved_step=step)
            if done:
                return state
    finally:
        bar.close()


def _report_tick(reporter: Reporter, bar: tqdm.tqdm, history: list[tuple[int, dict]], before: dict, tick: int,
                 nimg: int, sched: Schedule, times: dict[str, float], timing_nimg: int,
                 aug_p: float | None, scheduled: dict[str, float]) -> dict[str, dict]:
    """The status line of a tick (process 0's, printed and in log.txt) and its statistics (`Reporter.stats`:
    the losses, then NVIDIA's Progress, Timing and Resources values, each once); returns the losses'
    (`stats.tick_stats`: those of ``before``, the previous tick's, that this tick does not report are
    repeated). ``times``: ``start``, ``tick_start`` and ``tick_end`` (seconds since the epoch) and
    ``maintenance`` (seconds between the previous tick's end and this tick's start); ``aug_p``: the
    augmentation's p, if any; ``scheduled``: the scheduled hyper-parameters' ``Progress/`` values
    (`hyperparams.progress`). The status line is NVIDIA's,
    then G's and D's losses, the resolution and alpha while growing, and ``Loss/signs/real`` (the tick's mean of
    the signs of D's scores of the reals in D's steps) where D's steps count them."""
    stats = tick_stats([{k: v for k, v in out.items() if k != FINITE} for _, phases in history
                        for out in phases.values()], before)
    means = {name: value["mean"] for name, value in stats.items()}
    signs = means.get("Loss/signs/real")
    now, total_sec = times["tick_end"], times["tick_end"] - times["start"]
    sec_per_kimg = (now - times["tick_start"]) / max((nimg - timing_nimg) / 1000, 1e-8)
    mem = jax.local_devices()[0].memory_stats() or {}
    mem_gb = mem.get("peak_bytes_in_use", 0) / 2**30
    cpu_mem_gb = resident_memory_gb()
    if reporter.enabled:  # NVIDIA's status line (its fields, widths and order; 0 for what no device reports),
        # then ours; printed and written to log.txt, as NVIDIA's log.txt holds its output
        line = (f"tick {tick:<5d} kimg {nimg / 1000:<8.1f} time {format_time(total_sec):<12s} sec/tick "
                f"{now - times['tick_start']:<7.1f} sec/kimg {sec_per_kimg:<7.2f} maintenance "
                f"{times['maintenance']:<6.1f} cpumem {cpu_mem_gb:<6.2f} gpumem {mem_gb:<6.2f} reserved "
                f"{mem.get('peak_bytes_reserved', 0) / 2**30:<6.2f} augment {aug_p or 0.0:.3f}"
                f" G {means.get('Loss/G/loss', 0):.3f} D {means.get('Loss/D/loss', 0):.3f}"
                + (f" res {sched.resolution} alpha {sched.alpha:.3f}" if sched.resolution else "")
                + (f" signs/real {signs:.3f}" if signs is not None else ""))
        bar.write(line)  # above the progress bar (tqdm's write prints whatever the bar's ``disable``)
        reporter.line(line, echo=False)
    once = {"Progress/tick": tick, "Progress/kimg": nimg / 1000, "Progress/lod": sched.lod,
            "Progress/augment": aug_p or 0.0, **scheduled, "Timing/total_sec": total_sec,
            "Timing/sec_per_tick": now - times["tick_start"], "Timing/sec_per_kimg": sec_per_kimg,
            "Timing/maintenance_sec": times["maintenance"], "Timing/total_hours": total_sec / 3600,
            "Timing/total_days": total_sec / 86400, "Resources/cpu_mem_gb": cpu_mem_gb}
    if "peak_bytes_in_use" in mem:  # an accelerator's allocator (NVIDIA's names)
        once["Resources/peak_gpu_mem_gb"] = mem_gb
    if "peak_bytes_reserved" in mem:
        once["Resources/peak_gpu_mem_reserved_gb"] = mem["peak_bytes_reserved"] / 2**30
    reporter.stats({**stats, **{name: {"num": 1, "mean": float(v), "std": 0.0} for name, v in once.items()}}, nimg)
    return stats
