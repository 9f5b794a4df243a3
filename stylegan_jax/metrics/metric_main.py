"""The metrics by NVIDIA's names and definitions (stylegan2-ada-pytorch ``metrics/metric_main.py``), plus
PGGAN's SWD; `calc_metric` runs one and returns NVIDIA's result dict, `append_result` logs it.

| name | what |
|---|---|
| fid50k_full | FID, 50k generated vs all reals (no x-flips) |
| kid50k_full | KID, 50k generated vs up to 1M reals, 100 subsets of 1000 |
| pr50k3_full | precision/recall, VGG16 features, k=3, 50k generated vs up to 200k reals |
| ppl2_wend | PPL in W at path endpoints, epsilon 1e-4, full image (no crop), 50k samples |
| is50k | Inception score, 50k generated, 10 splits |
| swd | SWD (x1e3) over the Laplacian pyramid, min(16384, dataset) images of each kind; no weights needed |
| eqt50k_int, eqt50k_frac, eqr50k | StyleGAN3 equivariance PSNRs (dB): integer, fractional translation; rotation |
| fid50k, kid50k, pr50k3 | legacy: 50k reals (x-flips when ``mirror``) |
| ppl_zfull, ppl_wfull, ppl_zend, ppl_wend | legacy PPL on the centre crop, in Z or W, full paths or endpoints |
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax import image_size
from stylegan_jax.atomic import atomic_write
from stylegan_jax.data import read_dataset_info, resolve_dataset
from stylegan_jax.durations import format_time
from stylegan_jax.metrics import detectors, distances, inception, swd, torchscript, vgg16
from stylegan_jax.metrics.detectors import Detector, DetectorError, load_inception, load_vgg16
from stylegan_jax.metrics.equivariance import compute_equivariance
from stylegan_jax.metrics.features import (
    MetricOptions,
    compiled,
    dataset_feature_stats,
    dataset_labels,
    dataset_size,
    generator_feature_stats,
    run_batches,
    source_digest,
    to_rgb,
)
from stylegan_jax.models import Family, get_family
from stylegan_jax.models.stylegan2 import Generator
from stylegan_jax.ops.area_resize import area_resize


class MetricError(ValueError):
    """An unknown metric name or unusable inputs; one line for the user."""


@functools.cache
def _detector_fn(module: nn.Module, method: str) -> Callable:
    """The feature function of a detector module's ``method`` (one object per pair: its compilations are kept)."""

    def fn(params, images, indices):
        return module.apply({"params": params}, to_rgb(images), method=method)

    return fn


def _real_and_fake(opts: MetricOptions, det: Detector, method: str, max_real: int | None, num_gen: int,
                   mirror: bool, **stats_kwargs) -> tuple[distances.FeatureStats, distances.FeatureStats]:
    fn = _detector_fn(det.module, method)
    # the networks (VGG16 uses inception's ops) and the reading of NVIDIA's files into them
    key = dict(digest=det.digest, code=source_digest(inception, vgg16, detectors, torchscript), method=method)
    real = dataset_feature_stats(opts, fn, det.params, det.name, key, max_items=max_real, mirror=mirror, **stats_kwargs)
    fake = generator_feature_stats(opts, fn, det.params, num_items=num_gen, **stats_kwargs)
    return real, fake


def compute_fid(opts: MetricOptions, max_real: int | None, num_gen: int, mirror: bool = False) -> float:
    """FID between Inception pool3 statistics of generated images and reals."""
    real, fake = _real_and_fake(opts, load_inception(opts.detector_dir), "features", max_real, num_gen, mirror,
                                capture_mean_cov=True)
    return distances.frechet_distance(*fake.get_mean_cov(), *real.get_mean_cov())


def compute_kid(opts: MetricOptions, max_real: int | None, num_gen: int, num_subsets: int, max_subset_size: int,
                mirror: bool = False) -> float:
    """KID between Inception pool3 features of generated images and reals."""
    real, fake = _real_and_fake(opts, load_inception(opts.detector_dir), "features", max_real, num_gen, mirror,
                                capture_all=True)
    return distances.kernel_distance(real.get_all(), fake.get_all(), num_subsets, max_subset_size, opts.seed)


def compute_pr(opts: MetricOptions, max_real: int | None, num_gen: int, nhood_size: int, mirror: bool = False
               ) -> tuple[float, float]:
    """Precision and recall of VGG16 fc2 features."""
    real, fake = _real_and_fake(opts, load_vgg16(opts.detector_dir), "features", max_real, num_gen, mirror,
                                capture_all=True)
    return distances.precision_recall(real.get_all(), fake.get_all(), nhood_size)


def compute_is(opts: MetricOptions, num_gen: int, num_splits: int) -> tuple[float, float]:
    """Inception score from the bias-free 1008-way softmax of generated images."""
    det = load_inception(opts.detector_dir)
    probs = generator_feature_stats(opts, _detector_fn(det.module, "probabilities"), det.params, num_items=num_gen,
                                    capture_all=True)
    return distances.inception_score(probs.get_all(), num_splits)


def slerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
    """Spherical interpolation of unit-normalised rows a, b [N, D] at t [N, 1], as NVIDIA's PPL."""
    a = a / jnp.linalg.norm(a, axis=-1, keepdims=True)
    b = b / jnp.linalg.norm(b, axis=-1, keepdims=True)
    d = (a * b).sum(-1, keepdims=True)
    p = t * jnp.arccos(d)
    c = b - d * a
    c = c / jnp.linalg.norm(c, axis=-1, keepdims=True)
    d = a * jnp.cos(p) + c * jnp.sin(p)
    return d / jnp.linalg.norm(d, axis=-1, keepdims=True)


#: NVIDIA's PPL batch (``batch_size=2`` in its metric_main): the paths that share one draw of the noise buffers.
PPL_BATCH = 2


def ppl_noise_buffers(buffers: dict, seed: jax.Array, idx: jax.Array) -> dict:
    """G's buffers for paths ``idx`` [P], each leaf [P, ...]: the constant noise maps (``noise_const``) drawn
    N(0, 1) anew for each of NVIDIA's batches of `PPL_BATCH` paths (paths 2j and 2j + 1 share theirs, from
    ``fold_in(key(seed), j)``, however the paths are batched here), the other buffers as they are."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(buffers)

    def one(i):
        keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), i // PPL_BATCH), len(leaves))
        return jax.tree_util.tree_unflatten(treedef, [
            jax.random.normal(k, leaf.shape) if "noise_const" in jax.tree_util.keystr(path) else leaf
            for k, (path, leaf) in zip(keys, leaves, strict=True)])

    return jax.vmap(one)(idx)


def _ppl_step(G: Generator, vgg: nn.Module, epsilon: float, space: str, crop: bool) -> Callable:
    """(params, z0, z1, c, t, indices) -> squared LPIPS distance / epsilon^2 per pair [P]."""

    def step(p, z0, z1, c, t, idx):
        G_vars = p["G"]
        if space == "w":
            w0, w1 = jnp.split(G.apply(G_vars, jnp.concatenate([z0, z1]), jnp.concatenate([c, c]), method="map"), 2)
            tt = t[:, :, None]
            wt0, wt1 = w0 + tt * (w1 - w0), w0 + (tt + epsilon) * (w1 - w0)
        else:
            zs = jnp.concatenate([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)])
            wt0, wt1 = jnp.split(G.apply(G_vars, zs, jnp.concatenate([c, c]), method="map"), 2)
        buffers = ppl_noise_buffers(G_vars["buffers"], p["seed"], idx)

        def synth(buf, ws):
            return G.apply({"params": G_vars["params"], "buffers": buf}, ws, "const", True, method="synthesize")

        img = jax.vmap(synth)(buffers, jnp.stack([wt0, wt1], axis=1))  # [P, 2, H, W, C]
        img = img.reshape(-1, *img.shape[2:])
        if crop:  # NVIDIA's face crop, in eighths of each side (of W and H apart for W x H images)
            c8y, c8x = img.shape[1] // 8, img.shape[2] // 8
            img = img[:, c8y * 3: c8y * 7, c8x * 2: c8x * 6]
        # NVIDIA pools by G's resolution over 256, after the crop too (a cropped 1024 image reaches LPIPS at
        # 128x128); W x H images by their short side, into torch's area bins where a side does not divide.
        factor = min(image_size.parse(G.img_resolution)) // 256
        if factor > 1:
            img = area_resize(img, round(img.shape[1] / factor), round(img.shape[2] / factor))
        img = to_rgb((img + 1) * (255 / 2))
        emb = vgg.apply({"params": p["vgg"]}, img, method="lpips_embedding").reshape(len(idx), 2, -1)
        return jnp.square(emb[:, 0] - emb[:, 1]).sum(-1) / epsilon**2

    return step


def compute_ppl(opts: MetricOptions, num_samples: int, epsilon: float, space: str, sampling: str, crop: bool
                ) -> float:
    """Perceptual path length: LPIPS between images at t and t + epsilon along random paths (t = 0 for
    'end' sampling, uniform for 'full'), scaled by 1 / epsilon^2, outer percentiles dropped."""
    det = load_vgg16(opts.detector_dir)
    G, labels = opts.G, dataset_labels(opts)
    pairs = max(opts.global_batch // 4, 1)
    pairs = -(-pairs // jax.device_count()) * jax.device_count()

    def batches():
        for start in range(0, num_samples, pairs):
            idx = np.arange(start, min(start + pairs, num_samples), dtype=np.int32)
            rngs = [np.random.default_rng([opts.seed, int(i)]) for i in idx]
            z = np.stack([r.standard_normal(2 * G.z_dim, np.float32) for r in rngs])
            c = np.stack([labels[r.integers(len(labels))] for r in rngs]).astype(np.float32)
            t = np.stack([r.random(1, np.float32) * (1 if sampling == "full" else 0) for r in rngs])
            yield z[:, : G.z_dim], z[:, G.z_dim:], c, t, idx

    params = {"G": opts.G_vars, "vgg": det.params, "seed": np.uint32(opts.seed)}
    step = compiled(("ppl", repr(G), det.module, epsilon, space, crop), _ppl_step(G, det.module, epsilon, space, crop))
    dist = np.concatenate(list(run_batches(step, params, batches(), num_samples, pairs, "ppl sampling",
                                           opts.progress)))
    return distances.trimmed_path_length(dist)


@functools.cache
def _swd_fn(seed: int) -> Callable:
    """The feature function of SWD: all pyramid levels' descriptors of an image, flattened and concatenated."""

    def fn(params, images, indices):
        levels = swd.swd_descriptors(images, indices, seed)
        return jnp.concatenate([d.reshape(len(images), -1) for d in levels], axis=1)

    return fn


def compute_swd(opts: MetricOptions, max_images: int) -> dict[str, float]:
    """SWD between min(max_images, dataset size) reals (x-flips when ``mirror``) and as many generated images."""
    num = min(max_images, dataset_size(opts, opts.mirror))
    resolutions = swd.swd_resolutions(opts.G.img_resolution)  # not empty: `check_metric`

    fn = _swd_fn(opts.seed)
    real = dataset_feature_stats(opts, fn, None, "swd", dict(seed=opts.seed, nhoods=swd.NHOODS_PER_IMAGE,
                                                                          code=source_digest(swd)),
                                 max_items=num, mirror=opts.mirror, capture_all=True)
    fake = generator_feature_stats(opts, fn, None, num_items=num, capture_all=True)
    channels = opts.G.img_channels
    split = [np.split(s.get_all().reshape(num, len(resolutions), -1), len(resolutions), axis=1)
             for s in (real, fake)]
    levels = [[d.reshape(-1, channels * swd.NHOOD_SIZE**2) for d in s] for s in split]
    return swd.swd_from_descriptors(levels[0], levels[1], resolutions, channels, opts.seed)


def whole_dataset(metric: Callable[[MetricOptions], dict]) -> Callable[[MetricOptions], dict]:
    """``metric`` against every image of the dataset, a run's ``--subset`` aside (NVIDIA's FID, KID, PR and IS
    set ``max_size=None``: a limited-data run is scored against the full dataset, its generated labels drawn
    from it too). PPL and EQ keep the subset for their labels, as NVIDIA's."""

    @functools.wraps(metric)
    def on_all_images(opts: MetricOptions) -> dict:
        return metric(dataclasses.replace(opts, subset=None))

    return on_all_images


@whole_dataset
def fid50k_full(opts: MetricOptions) -> dict:
    return dict(fid50k_full=compute_fid(opts, max_real=None, num_gen=50000))


@whole_dataset
def kid50k_full(opts: MetricOptions) -> dict:
    return dict(kid50k_full=compute_kid(opts, max_real=1000000, num_gen=50000, num_subsets=100,
                                        max_subset_size=1000))


@whole_dataset
def pr50k3_full(opts: MetricOptions) -> dict:
    precision, recall = compute_pr(opts, max_real=200000, num_gen=50000, nhood_size=3)
    return dict(pr50k3_full_precision=precision, pr50k3_full_recall=recall)


def ppl2_wend(opts: MetricOptions) -> dict:
    return dict(ppl2_wend=compute_ppl(opts, num_samples=50000, epsilon=1e-4, space="w", sampling="end",
                                      crop=False))


@whole_dataset
def is50k(opts: MetricOptions) -> dict:
    mean, std = compute_is(opts, num_gen=50000, num_splits=10)
    return dict(is50k_mean=mean, is50k_std=std)


@whole_dataset
def swd16k(opts: MetricOptions) -> dict:
    return compute_swd(opts, max_images=16384)


def _equivariance(name: str, kind: str) -> Callable[[MetricOptions], dict]:
    def metric(opts: MetricOptions) -> dict:
        return {name: compute_equivariance(opts, num_samples=50000, kind=kind, input_transform=opts.input_transform)}

    metric.__name__ = name
    return metric


@whole_dataset
def fid50k(opts: MetricOptions) -> dict:
    return dict(fid50k=compute_fid(opts, max_real=50000, num_gen=50000, mirror=opts.mirror))


@whole_dataset
def kid50k(opts: MetricOptions) -> dict:
    return dict(kid50k=compute_kid(opts, max_real=50000, num_gen=50000, num_subsets=100, max_subset_size=1000,
                                   mirror=opts.mirror))


@whole_dataset
def pr50k3(opts: MetricOptions) -> dict:
    precision, recall = compute_pr(opts, max_real=50000, num_gen=50000, nhood_size=3, mirror=opts.mirror)
    return dict(pr50k3_precision=precision, pr50k3_recall=recall)


def _legacy_ppl(space: str, sampling: str) -> Callable[[MetricOptions], dict]:
    name = f"ppl_{space}{sampling}"

    def metric(opts: MetricOptions) -> dict:
        return {name: compute_ppl(opts, num_samples=50000, epsilon=1e-4, space=space, sampling=sampling, crop=True)}

    metric.__name__ = name
    return metric


#: Metric name -> function(MetricOptions) -> {result name: value}.
METRICS: dict[str, Callable[[MetricOptions], dict]] = {
    "fid50k_full": fid50k_full, "kid50k_full": kid50k_full, "pr50k3_full": pr50k3_full, "ppl2_wend": ppl2_wend,
    "is50k": is50k, "swd": swd16k, "fid50k": fid50k, "kid50k": kid50k, "pr50k3": pr50k3,
    **{f"ppl_{s}{m}": _legacy_ppl(s, m) for s in ("z", "w") for m in ("full", "end")},
    "eqt50k_int": _equivariance("eqt50k_int", "eqt_int"), "eqt50k_frac": _equivariance("eqt50k_frac", "eqt_frac"),
    "eqr50k": _equivariance("eqr50k", "eqr"),
}


#: The detector file each metric reads (SWD and the equivariance metrics read none).
DETECTOR_FILES = {
    **dict.fromkeys(("fid50k_full", "kid50k_full", "is50k", "fid50k", "kid50k"), detectors.INCEPTION_FILE),
    **dict.fromkeys(("pr50k3_full", "pr50k3", "ppl2_wend", *(n for n in METRICS if n.startswith("ppl_"))),
                    detectors.VGG16_FILE),
}


def check_detectors(names: Sequence[str], directory: str | os.PathLike | None = None) -> None:
    """Raises `DetectorError` (naming the file and where it was looked for) when a detector file that one of the
    metrics ``names`` reads is missing: checked before a run trains, not at its first snapshot."""
    for name in names:
        if name in DETECTOR_FILES:
            try:
                detectors.detector_file(DETECTOR_FILES[name], directory)
            except DetectorError as e:
                raise DetectorError(f"--metrics {name}: {e} (or train without it: --metrics none)") from None


def check_metric(name: str, family: Family, resolution: int | str | tuple[int, int]) -> None:
    """Raises `MetricError` where metric ``name`` cannot score a generator of model ``family`` making images of
    ``resolution`` (N, "WxH" or (H, W)): an unknown name, the path-length metrics without a mapping network,
    the equivariance metrics without an input transform or on W x H images, SWD under 16x16. Checked before a
    run trains and before calc_metrics computes any of its metrics."""
    if name not in METRICS:
        raise MetricError(f"unknown metric {name!r}; valid: {', '.join(METRICS)}")
    if name.startswith("ppl") and not family.has_mapping:
        raise MetricError(f"{name} interpolates in the mapping network's spaces; model {family.name!r} has none")
    if name.startswith("eq") and family.input_transform is None:
        raise MetricError(f"{name} transforms the generator's input; model {family.name!r} takes no input transform "
                          "(StyleGAN3 does)")
    h, w = image_size.parse(resolution)
    if name.startswith("eq") and h != w:  # NVIDIA's translations and crops are fractions of a square's side
        raise MetricError(f"{name} is defined for square images; the generator makes {w}x{h}")
    if name == "swd" and not swd.swd_resolutions((h, w)):
        raise MetricError(f"swd needs images whose short side is at least {swd.MIN_RESOLUTION}; the generator "
                          f"makes {w}x{h}")


def calc_metric(name: str, *, G: Generator, G_vars: dict, dataset: str | os.PathLike, mirror: bool = False,
                detector_dir: str | None = None, seed: int = 0, batch_size: int = 64, progress: bool = True,
                cache_dir: str | None = None, family: Family | None = None, subset: int | None = None,
                subset_seed: int = 0) -> dict:
    """Computes metric ``name`` of generator ``G`` (variables ``G_vars`` = {"params", "buffers"}) of model
    ``family`` (default StyleGAN2's; the path-length metrics need one with a mapping network) against
    ``dataset`` (a dataset directory or name). ``subset``, ``subset_seed``: a run's ``--subset``, which PPL and
    the EQ metrics draw their labels from; the others use every image (`whole_dataset`, as NVIDIA's). ``mirror``: the
    reals include x-flips (legacy metrics and swd; NVIDIA's ``_full`` metrics never flip). ``batch_size``:
    images per jitted batch over all devices.

    Returns NVIDIA's result dict: {"results": {name: value, ...}, "metric", "total_time" (s),
    "total_time_str", "num_gpus" (device count)}.

    Raises:
      MetricError: unknown name, a metric that cannot score this generator (`check_metric`), or images of
        another size than G's, or a conditional G and a dataset of other labels. DetectorError: a detector file is
        missing or wrong. DatasetError: no such dataset.
    """
    family = family or get_family("stylegan2")
    check_metric(name, family, G.img_resolution)
    gh, gw = image_size.parse(G.img_resolution)
    path = resolve_dataset(dataset)
    info = read_dataset_info(path)
    h, w = image_size.parse(info["resolution"])
    if (h, w, info["channels"]) != (gh, gw, G.img_channels):
        raise MetricError(f"dataset {path} holds {w}x{h}x{info['channels']} images but the generator makes"
                          f" {gw}x{gh}x{G.img_channels}")
    if G.c_dim and G.c_dim != info["c_dim"]:  # a conditional G draws the dataset's labels
        has = f"labels of c_dim {info['c_dim']}" if info["c_dim"] else "no labels"
        raise MetricError(f"the network is conditional (c_dim {G.c_dim}) but dataset {path} has {has}: score it "
                          "against the dataset it was trained on (--data)")
    opts = MetricOptions(G=G, G_vars=G_vars, dataset=path, mirror=mirror,
                         detector_dir=detector_dir, seed=seed, batch_size=batch_size, progress=progress,
                         cache_dir=cache_dir, input_transform=family.input_transform, subset=subset,
                         subset_seed=subset_seed)
    start = time.time()
    # NVIDIA's metrics run with TF32 off (calc_metrics.py; its training loop's default): every float32 product,
    # G's included, at full precision on every backend. PPL divides by epsilon^2, where TF32's rounding alone
    # makes the path lengths 12x longer (a random 64x64 G), and it would floor the EQ metrics' PSNR.
    with jax.default_matmul_precision("float32"):
        results = {k: float(v) for k, v in METRICS[name](opts).items()}
    total = time.time() - start
    return dict(results=results, metric=name, total_time=total, total_time_str=format_time(total),
                num_gpus=jax.device_count())


def result_line(result: dict, run_dir: str | os.PathLike | None = None, snapshot: str | None = None,
                data: str | None = None) -> str:
    """NVIDIA's ``report_metric`` line: ``result`` plus ``snapshot_pkl`` (relative to ``run_dir`` when there is
    one) and ``timestamp``, as JSON; plus ``data``, the dataset's path, when the metric was taken against
    another dataset than the run's (calc_metrics' ``--data``; NVIDIA's line does not say)."""
    if snapshot is not None and run_dir is not None:
        snapshot = os.path.relpath(snapshot, run_dir)
    extra = {} if data is None else {"data": data}
    return json.dumps(dict(result, snapshot_pkl=snapshot, **extra, timestamp=time.time()))


def _fields(line: str) -> dict:
    """The fields of a `result_line`; {} for a line that is not a JSON object."""
    try:
        fields = json.loads(line)
    except ValueError:
        return {}
    return fields if isinstance(fields, dict) else {}


def has_result(run_dir: str | os.PathLike, metric: str, snapshot: str) -> bool:
    """Whether ``run_dir/metric-<metric>.jsonl`` holds a line (`result_line`) for the network ``snapshot``
    (its path) against the run's own dataset; lines against another one (calc_metrics' ``--data``) and lines
    that are not JSON objects are passed over."""
    path = Path(run_dir) / f"metric-{metric}.jsonl"
    wanted = os.path.relpath(snapshot, run_dir)
    return path.exists() and any(fields.get("snapshot_pkl") == wanted and "data" not in fields
                                 for fields in map(_fields, path.read_text().splitlines()))


def append_result(run_dir: str | os.PathLike, result: dict, snapshot: str | None = None,
                  replace: bool = False, data: str | None = None) -> str:
    """Appends ``result`` as its `result_line` to ``run_dir/metric-<name>.jsonl``, as NVIDIA's
    ``report_metric``; returns the line. ``replace``: the file's earlier lines for the same ``snapshot`` are
    dropped (a training run that saved the snapshot again after falling back to an earlier checkpoint; the
    file is rewritten whole or not at all; lines against other datasets too, which described the network that
    the snapshot no longer holds). ``data``: see `result_line`; `has_result` passes over such lines."""
    line = result_line(result, run_dir, snapshot, data)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    path = Path(run_dir) / f"metric-{result['metric']}.jsonl"
    if replace and snapshot is not None and path.exists():
        kept = [old for old in path.read_text().splitlines()
                if _fields(old).get("snapshot_pkl", old) != _fields(line)["snapshot_pkl"]]
        with atomic_write(path, "w") as f:
            f.writelines(f"{text}\n" for text in [*kept, line])
        return line
    with open(path, "a") as f:
        f.write(line + "\n")
    return line
