"""Progressive growing's schedule (NVIDIA's ``TrainingSchedule`` in progressive_growing_of_gans, stylegan and
stylegan2) and the real images it asks for (NVIDIA's ``process_reals``).

The level of detail ``lod`` falls from log2(final / initial resolution) to 0: each resolution is first
trained (``training_kimg``: stable) and then the next one faded in (``transition_kimg``), so resolution r
starts with a fade-in (alpha rising from 0 to 1) and then stabilises at alpha 1. The training resolution is
``final / 2^floor(lod)`` and the fade-in alpha ``1 - (lod - floor(lod))``. Without growing (initial
resolution 0) the schedule is constant: full resolution, alpha 1, the flat batch and learning rates, and the
ticks of ``cfg.tick_by_resolution`` at the full resolution if it has them (NVIDIA's TF loops), else ``cfg.tick``.

The training loop evaluates it once per ``cfg.minibatch_repeats`` iterations (NVIDIA's TF loops: 4), at
the images seen when the group starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from stylegan_jax import image_size
from stylegan_jax.nn.resolution import nominal_resolution


@dataclass(frozen=True)
class Schedule:
    """What one iteration trains: ``resolution`` None means the networks' full resolution, not growing;
    ``tick`` the kimg per tick of a tick this iteration ends."""

    resolution: int | None
    lod: float
    alpha: float
    batch_size: int
    batch_gpu: int
    G_lr: float
    D_lr: float
    tick: float


def full_resolution(cfg: ml_collections.ConfigDict) -> int:
    """The networks' full resolution as the growing schedule counts it: ``cfg.resolution``, or for W x H
    images the nominal square resolution (`stylegan_jax.nn.resolution.nominal_resolution`)."""
    return nominal_resolution(image_size.network_resolution(cfg.resolution))


def growing(cfg: ml_collections.ConfigDict) -> bool:
    """Whether the config grows progressively."""
    return bool(cfg.growing.initial_resolution) and cfg.growing.initial_resolution < full_resolution(cfg)


def schedule(cfg: ml_collections.ConfigDict, nimg: int) -> Schedule:
    """The schedule after ``nimg`` real images."""
    g = cfg.growing
    ticks = dict(cfg.tick_by_resolution)  # at the training resolution, also when not growing (NVIDIA's TF loops)
    if not growing(cfg):
        return Schedule(None, 0.0, 1.0, cfg.batch_size, cfg.batch_gpu, cfg.G_lr, cfg.D_lr,
                        ticks.get(full_resolution(cfg), cfg.tick))
    kimg = nimg / 1000.0
    phase_dur = g.training_kimg + g.transition_kimg
    phase_idx = int(np.floor(kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur
    lod = math.log2(full_resolution(cfg)) - np.floor(np.log2(g.initial_resolution)) - phase_idx
    if g.transition_kimg > 0:
        lod -= max(phase_kimg - g.training_kimg, 0.0) / g.transition_kimg
    lod = max(float(lod), 0.0)
    res = full_resolution(cfg) // 2 ** int(np.floor(lod))
    return Schedule(res, lod, 1.0 - (lod - np.floor(lod)), *batch_of(cfg, res), dict(g.G_lr).get(res, cfg.G_lr),
                    dict(g.D_lr).get(res, cfg.D_lr), ticks.get(res, cfg.tick))


def batch_of(cfg: ml_collections.ConfigDict, resolution: int | None) -> tuple[int, int]:
    """(global batch, per-device minibatch batch_gpu; 0 = batch / devices) at a training resolution."""
    g = cfg.growing
    return dict(g.batch_size).get(resolution, cfg.batch_size), dict(g.batch_gpu).get(resolution, cfg.batch_gpu)


def resolutions(cfg: ml_collections.ConfigDict) -> list[int | None]:
    """Every training resolution of a run, in order ([None] without growing)."""
    if not growing(cfg):
        return [None]
    r = int(cfg.growing.initial_resolution)
    return [r * 2**i for i in range(int(math.log2(full_resolution(cfg) // r)) + 1)]


def batch_unit(cfg: ml_collections.ConfigDict) -> int:
    """The data iterator's global batch: the gcd of every resolution's batch, so each is a whole number of
    iterator batches (the flat batch_size without growing)."""
    sizes = [cfg.batch_size] + [b for _, b in cfg.growing.batch_size] if growing(cfg) else [cfg.batch_size]
    return math.gcd(*sizes)


def lod_changed(before: float, after: float) -> bool:
    """NVIDIA's test for resetting the optimisers: a fade-in starts or ends (floor or ceil of lod moves)."""
    return math.floor(before) != math.floor(after) or math.ceil(before) != math.ceil(after)


def downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """[N, H, W, C] -> [N, H / factor, W / factor, C] by averaging factor x factor blocks (NVIDIA's dataset
    lods are 2x2 box averages of the level above, here without their rounding to uint8)."""
    n, h, w, c = images.shape
    if factor == 1:
        return images
    return images.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4), dtype=np.float32)


def fade_reals(x: jax.Array, alpha: jax.Array) -> jax.Array:
    """NVIDIA's FadeLOD: lerp(x, y, 1 - alpha) with y = x box-downsampled 2x and repeated back up.
    x [..., H, W, C] at the training resolution; alpha a scalar in [0, 1]."""
    *lead, h, w, c = x.shape
    blocks = x.reshape(*lead, h // 2, 2, w // 2, 2, c)
    y = jnp.broadcast_to(blocks.mean(axis=(-4, -2), keepdims=True), blocks.shape).reshape(x.shape)
    return x + (y - x) * (1 - alpha)
