"""Feature extraction for the metrics: real images from a dataset and generated images from G, run through a
feature function under one ``jax.jit`` per shape, in global batches sharded over every device (a ``data``
mesh axis; parameters replicated), with a progress bar and, for long runs, an estimate of the time.

A feature function is ``fn(params, images, indices) -> features``: uint8 images [B, H, W, C] and their
global item indices [B] (int32) to an array [B, D]; its compilations are kept under the function object, so
build each feature function once (as `stylegan_jax.metrics.metric_main` does).

Generated images are NVIDIA's: ``G(z, c)`` with random noise, z ~ N(0, I) and c the label of a random
dataset image, converted to uint8 with `to_uint8`. Image i draws its z and label from
``np.random.default_rng([seed, i])``, so they do not depend on the batch size or the device count (the
noise is drawn per batch). Dataset statistics are cached per dataset, detector file, the source of the code
that computes them and options as .npz files written atomically. With several processes, each one reads the
whole dataset and builds the global batches from it (simple and exact, at the cost of decoding every image
on every host); only process 0 writes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import os
import sys
import time
import zipfile
import zlib
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from stylegan_jax.data import LabelTable, make_iterator, read_dataset_info, read_labels
from stylegan_jax.images import to_uint8
from stylegan_jax.metrics.distances import FeatureStats
from stylegan_jax.models.stylegan2 import Generator
from stylegan_jax.sampling import pad_rows

DEFAULT_CACHE_DIR = "~/.cache/stylegan_jax/gan-metrics"
#: Runs of at least this many images print an estimate of their duration before the bulk of the work.
ESTIMATE_FROM = 10_000

FeatureFn = Callable[[Any, jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass
class MetricOptions:
    """What every metric needs: the generator (module and variables), the real data and run options."""

    G: Generator
    G_vars: dict
    dataset: str | os.PathLike
    mirror: bool = False
    detector_dir: str | None = None
    seed: int = 0
    batch_size: int = 64
    progress: bool = True
    cache_dir: str | None = None
    input_transform: Any = None  # the family's (models.registry.Family.input_transform): the equivariance metrics
    #: the reals are a random ``subset`` of the dataset's images (training's --subset; None or 0: all of them),
    #: chosen by ``subset_seed`` (data.subset_indices)
    subset: int | None = None
    subset_seed: int = 0

    def __post_init__(self) -> None:
        if self.subset is not None and self.subset < 0:
            raise ValueError(f"subset: expected a count of images, or None or 0 for all of them; got {self.subset}")
        self.subset = self.subset or None  # training's config says all with 0, data.subset_indices with None

    @property
    def global_batch(self) -> int:
        """batch_size rounded up to a multiple of the device count."""
        n = jax.device_count()
        return -(-self.batch_size // n) * n


def data_mesh() -> Mesh:
    """A one-axis ('data') mesh over every device of every process."""
    return Mesh(np.array(jax.devices()), ("data",))


def to_rgb(images: jax.Array) -> jax.Array:
    """[..., 1] grayscale repeated to three channels (as NVIDIA feeds its detectors); RGB unchanged."""
    return jnp.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def _global(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A host array known to every process -> a global jax.Array with ``sharding``."""
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def _host(x: Any) -> Any:
    """Device outputs -> NumPy on every process."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(x, tiled=True)
    return jax.tree.map(np.asarray, x)


_COMPILED: dict[Hashable, Callable] = {}


def compiled(key: Hashable, step: Callable) -> Callable:
    """``jax.jit(step)``, memoised under ``key`` (which must name everything ``step`` closes over), so a metric
    evaluated again (every few ticks in training, or KID after FID) reuses its compilations."""
    if key not in _COMPILED:
        _COMPILED[key] = jax.jit(step)
    return _COMPILED[key]


def run_batches(fn: Callable, params: Any, batches: Iterator[tuple[np.ndarray, ...]], total: int, batch: int,
                desc: str, progress: bool) -> Iterator[Any]:
    """Runs the jitted ``fn(params, *inputs)`` on each batch of host inputs (leading dim <= ``batch``, padded
    to it, or to ``total`` rounded up to the device count if fewer, sharded over the devices) and yields the
    host outputs cut to the real rows. Shows a progress bar over ``total`` items and, when total >=
    ESTIMATE_FROM, prints the estimated duration after the first timed batch."""
    batch = min(batch, -(-total // jax.device_count()) * jax.device_count())  # no padding past the items
    mesh = data_mesh()
    sharded, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    params = jax.device_put(params, replicated)
    show = progress and jax.process_index() == 0
    done, t_start = 0, None
    with tqdm(total=total, desc=desc, unit="img", disable=not show, file=sys.stderr, leave=False) as bar:
        for inputs in batches:
            n = len(inputs[0])
            out = _host(fn(params, *(_global(pad_rows(x, batch), sharded) for x in inputs)))
            yield jax.tree.map(lambda a, n=n: a[:n], out)
            done += n
            bar.update(n)
            if t_start is None:  # the first batch includes compilation: time from the second on
                t_start, t_done = time.perf_counter(), done
            elif done - t_done == batch and total >= ESTIMATE_FROM and show:
                rate = batch / (time.perf_counter() - t_start)
                bar.write(f"{desc}: about {(total - done) / rate / 60:.1f} min for {total} images "
                          f"({rate:.1f} img/s on {jax.device_count()} device(s))")


def dataset_batches(opts: MetricOptions, batch: int, mirror: bool, max_items: int) -> Iterator[tuple]:
    """(uint8 images [b, H, W, C], global indices [b]) of the first ``max_items`` items of the dataset (or its
    subset) in stored order (with ``mirror``: all originals, then all mirrored copies, as NVIDIA's xflip
    dataset)."""
    it = make_iterator(opts.dataset, batch_size=batch, shuffle=False, xflip=mirror, num_epochs=1,
                       drop_remainder=False, max_size=opts.subset, random_seed=opts.subset_seed)
    start = 0
    for b in it:
        images = np.asarray(to_uint8(b["image"]))[: max_items - start]
        yield images, np.arange(start, start + len(images), dtype=np.int32)
        start += len(images)
        if start >= max_items:
            return


def dataset_size(opts: MetricOptions, mirror: bool) -> int:
    """Number of items NVIDIA's dataset would have (its subset's, doubled with x-flips)."""
    num = read_dataset_info(opts.dataset)["num_images"]
    return min(num, opts.subset or num) * (2 if mirror else 1)


def dataset_labels(opts: MetricOptions) -> LabelTable:
    """Every dataset (or subset) item's label (``labels[i]``: [c_dim] float32, one-hot for classes; of width 0
    when unlabelled or when G is unconditional: then no record is read, as NVIDIA's)."""
    if not opts.G.c_dim or not read_dataset_info(opts.dataset)["c_dim"]:
        return LabelTable.unlabelled(dataset_size(opts, mirror=False))
    return read_labels(opts.dataset, max_size=opts.subset, random_seed=opts.subset_seed)


@functools.cache
def source_digest(*modules: Any) -> str:
    """The MD5 of the source files of ``modules`` (modules, or classes or functions: the modules defining them)
    and of the code that makes the images the detectors see (this module, `stylegan_jax.images`' conversion to
    uint8, `stylegan_jax.data.pipeline`'s decoding, x-flips and subsets), for cache keys: dataset statistics
    computed by code that has changed since are not reused. Without sources (an installation of compiled files
    only), the package's version stands for them."""
    md5 = hashlib.md5()
    try:
        for module in (sys.modules[__name__], to_uint8, make_iterator, *modules):
            md5.update(inspect.getsource(inspect.getmodule(module)).encode())
    except (OSError, TypeError):
        from importlib.metadata import version

        return f"stylegan_jax-{version('stylegan_jax')}"
    return md5.hexdigest()


def _cache_file(opts: MetricOptions, name: str, key: dict) -> Path:
    """The file of the statistics keyed by ``key`` (the detector, the code, the options) and the dataset: its
    path, size and conversion (``dataset_id``: a dataset converted again in its place does not reuse them)."""
    info = read_dataset_info(opts.dataset)
    key = dict(key, dataset=info["path"], num_images=info["num_images"], resolution=info["resolution"],
               dataset_id=info.get("dataset_id"))
    if opts.subset is not None and opts.subset < info["num_images"]:
        key.update(subset=opts.subset, subset_seed=opts.subset_seed)
    md5 = hashlib.md5(repr(sorted(key.items())).encode()).hexdigest()
    root = Path(opts.cache_dir or DEFAULT_CACHE_DIR).expanduser()
    return root / f"{Path(info['path']).name}-{name}-{md5}.npz"


def _on_every_process(flag: bool) -> bool:
    """Whether ``flag`` holds on every process (a collective call on a multi-process run)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.all(multihost_utils.process_allgather(np.int32(flag))))


def _cached_everywhere(path: Path) -> FeatureStats | None:
    """The statistics cached at ``path`` when every process can read them there: all processes load the cache,
    or all compute the features together (their batches are collective), so that per-host caches (a TPU VM's
    home directory) missing or damaged on one host cannot leave it waiting for the others. A file that is not
    readable as statistics is computed again and replaced, with a warning (`FeatureStats.save` writes
    atomically, so only damage from outside does this)."""
    if not _on_every_process(path.is_file()):
        return None
    try:
        cached = FeatureStats.load(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        print(f"warning: {path}: unreadable cached statistics ({type(e).__name__}: {e}); computing them again",
              file=sys.stderr)
        cached = None
    return cached if _on_every_process(cached is not None) else None


def dataset_feature_stats(opts: MetricOptions, fn: FeatureFn, params: Any, name: str, key: dict, *,
                          max_items: int | None, mirror: bool = False, capture_all: bool = False,
                          capture_mean_cov: bool = False) -> FeatureStats:
    """Features of the first ``max_items`` (None: all) dataset items, cached in ``<dataset>-<name>-<md5>.npz``
    where the MD5 covers the dataset, ``key`` (what ``fn`` computes: detector digest, `source_digest` of the
    code, mode, seed...) and the options."""
    cache = _cache_file(opts, name, dict(key, mirror=mirror, max_items=max_items, capture_all=capture_all,
                                         capture_mean_cov=capture_mean_cov))
    if (cached := _cached_everywhere(cache)) is not None:
        return cached
    num = dataset_size(opts, mirror)
    num = num if max_items is None else min(num, max_items)
    stats = FeatureStats(capture_all=capture_all, capture_mean_cov=capture_mean_cov, max_items=num)
    batch = opts.global_batch
    for out in run_batches(compiled(fn, fn), params, dataset_batches(opts, batch, mirror, num), num, batch,
                           "dataset features", opts.progress):
        stats.append(out)
    if jax.process_index() == 0:
        cache.parent.mkdir(parents=True, exist_ok=True)
        stats.save(cache)
    return stats


def latents_and_labels(seed: int, indices: np.ndarray, z_dim: int, labels: LabelTable) -> tuple[np.ndarray, ...]:
    """z [b, z_dim] float32 and c [b, c_dim] for items ``indices``: item i draws from default_rng([seed, i])
    its z and the label of a uniformly chosen dataset item."""
    z, c = [], []
    for i in indices:
        rng = np.random.default_rng([seed, int(i)])
        z.append(rng.standard_normal(z_dim, np.float32))
        c.append(labels[rng.integers(len(labels))])
    return np.stack(z), np.stack(c).astype(np.float32)


def generator_batches(opts: MetricOptions, num: int) -> Iterator[tuple]:
    """(z [b, z_dim], c [b, c_dim], global indices [b]) per global batch of ``num`` generated items."""
    labels = dataset_labels(opts)
    for start in range(0, num, opts.global_batch):
        idx = np.arange(start, min(start + opts.global_batch, num), dtype=np.int32)
        yield (*latents_and_labels(opts.seed, idx, opts.G.z_dim, labels), idx)


def generate_uint8(G: Generator, G_vars: dict, z: jax.Array, c: jax.Array, noise_key: jax.Array) -> jax.Array:
    """G(z, c) with random noise -> uint8 [B, H, W, C], as NVIDIA's metrics generate."""
    return to_uint8(G.apply(G_vars, z, c, noise_mode="random", rngs={"noise": noise_key}))


def generator_feature_stats(opts: MetricOptions, fn: FeatureFn, params: Any, *, num_items: int,
                            capture_all: bool = False, capture_mean_cov: bool = False) -> FeatureStats:
    """Features of ``num_items`` generated images."""
    G = opts.G

    def step(p, z, c, idx):
        noise_key = jax.random.fold_in(jax.random.key(opts.seed), idx[0])  # one per batch
        return fn(p["detector"], generate_uint8(G, p["G"], z, c, noise_key), idx)

    stats = FeatureStats(capture_all=capture_all, capture_mean_cov=capture_mean_cov, max_items=num_items)
    batches = generator_batches(opts, num_items)
    step = compiled(("generator", fn, repr(G), opts.seed), step)
    for out in run_batches(step, {"G": opts.G_vars, "detector": params}, batches, num_items, opts.global_batch,
                           "generator features", opts.progress):
        stats.append(out)
    return stats
