"""Sampling a generator: seed lists, latents and labels, mapping to ws, batched synthesis to uint8 images, and
interpolation paths (between seeds, and gen_video's looping ones). Shared by the generate, gen_video and
style_mixing tools and the class-accuracy evaluation.

Seeds follow NVIDIA's generate.py: seed ``s`` draws ``z = np.random.RandomState(s).randn(1, z_dim)``, and
images convert as NVIDIA converts them (``x * 127.5 + 128``, clamped to [0, 255], truncated to uint8), so a
seed gives the same image in both codebases (noise_mode ``const``/``none``; ``random`` noise comes from JAX's
generator here). ``G`` is a generator with ``map`` and ``synthesize`` methods (the StyleGAN families).

`seed_images` and `interpolation_images` stream: they hold one batch of latents, ws and images at a time
(every batch of one shape, the last padded, so one compilation serves all), whatever the number of seeds.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from stylegan_jax.cli import UsageError, read_npz
from stylegan_jax.cli import parse_seeds as parse_seeds  # re-exported: the seed lists' parser lives in cli
from stylegan_jax.images import image_grid, to_uint8

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` consecutive items (the last one shorter), taken lazily from ``items``."""
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def started(items: Iterator[T]) -> Iterator[T]:
    """``items`` with its first item made now: a tool takes its first batch of images before it writes
    anything, so that a refusal of them (`NON_FINITE_IMAGES`) leaves nothing behind."""
    return itertools.chain([next(items)], items)


def seed_latents(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """z [len(seeds), z_dim] float32, row i = ``np.random.RandomState(seeds[i]).randn(z_dim)`` as NVIDIA."""
    return np.concatenate([np.random.RandomState(s).randn(1, z_dim) for s in seeds]).astype(np.float32)


def one_hot(classes: np.ndarray | Sequence[int], c_dim: int) -> np.ndarray:
    """Class indices [N] -> one-hot labels [N, c_dim] float32."""
    return np.eye(c_dim, dtype=np.float32)[np.asarray(classes, int)]


def class_labels(c_dim: int, class_idx: int | None, n: int) -> np.ndarray:
    """``n`` one-hot labels [n, c_dim] of class ``class_idx``. A conditional network (c_dim > 0) needs a class
    in [0, c_dim), an unconditional one (labels [n, 0]) none; anything else is a `UsageError`."""
    if c_dim == 0:
        if class_idx is not None:
            raise UsageError(f"--class {class_idx}: the network is unconditional (it takes no class); omit --class")
        return np.zeros((n, 0), np.float32)
    if class_idx is None or not 0 <= class_idx < c_dim:
        got = "no --class" if class_idx is None else f"--class {class_idx}"
        raise UsageError(f"the network is conditional with {c_dim} classes: pass --class 0..{c_dim - 1} ({got})")
    return one_hot(np.full(n, class_idx), c_dim)


def _mapper(G, truncation_psi: float, truncation_cutoff: int | None):
    """jitted (variables, z [N, z_dim], c [N, c_dim]) -> ws [N, num_ws, w_dim]; build it once per run and call
    it per batch (a new one compiles again). ``truncation_psi`` is a constant of the program, so psi 1 maps
    without the truncation's arithmetic, as NVIDIA's mapping skips it (`nn.mapping.ws_from_w`)."""
    psi = float(truncation_psi)
    return jax.jit(lambda v, z, c: G.apply(v, z, c, psi, truncation_cutoff, method="map"))


def map_latents(G, variables, z, c, truncation_psi: float, truncation_cutoff: int | None = None):
    """z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim] (truncated towards w_avg unless psi is 1), jitted."""
    return _mapper(G, truncation_psi, truncation_cutoff)(variables, z, c)


#: What a tool says when the generator's images are not finite (NVIDIA's tools write them as black images).
NON_FINITE_IMAGES = ("the network's images hold NaN or inf (a diverged network, a --trunc far from 1, or projected "
                     "ws far from the network's own)")


def _batch_synthesizer(G, noise_mode: str):
    """(variables, ws [B, num_ws, w_dim], keys [B]) -> uint8 [B, H, W, C] on the host, jitted; each image has
    its own noise key, so an image does not depend on the batch it is in. A non-finite image (which the
    conversion to uint8 would make black) is a `UsageError` (`NON_FINITE_IMAGES`)."""

    def one(variables, w, key):
        img = G.apply(variables, w[None], noise_mode, True, rngs={"noise": key}, method="synthesize")
        return to_uint8(img[0]), jnp.isfinite(img).all()

    batch = jax.jit(jax.vmap(one, in_axes=(None, 0, 0)))

    def synthesize(variables, ws, keys) -> np.ndarray:
        images, finite = batch(variables, ws, keys)
        if not np.all(finite):
            raise UsageError(NON_FINITE_IMAGES)
        return np.asarray(images)

    return synthesize


def _noise_keys(seeds: np.ndarray | Sequence[int]) -> jax.Array:
    """One JAX key per image from its (noise) seed."""
    return jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))


def pad_rows(rows: np.ndarray, size: int) -> np.ndarray:
    """``rows`` [n, ...] with its last row repeated up to ``size`` rows (``rows`` itself when n >= size): every
    batch a jitted function sees has one shape, so it compiles once."""
    if len(rows) >= size:
        return rows
    return np.concatenate([rows, np.repeat(rows[-1:], size - len(rows), axis=0)])


def synthesize_images(G, variables, ws: np.ndarray, noise_mode: str = "const",
                      noise_seeds: Sequence[int] | None = None, batch_size: int = 16,
                      progress: bool = True) -> np.ndarray:
    """ws [N, num_ws, w_dim] -> uint8 images [N, H, W, C], in jitted batches of ``batch_size`` (the last one
    padded, so one compilation serves all); ``noise_seeds`` key the random noise per image (default 0..N-1)."""
    ws = np.asarray(ws, np.float32)
    keys = _noise_keys(np.arange(len(ws)) if noise_seeds is None else np.asarray(noise_seeds))
    return _in_batches(_batch_synthesizer(G, noise_mode), variables, ws, keys, min(batch_size, len(ws)), progress)


def _in_batches(synthesize, variables, ws: np.ndarray, keys: jax.Array, size: int,
                progress: bool = False) -> np.ndarray:
    """``synthesize`` (`_batch_synthesizer`'s) of ws [N, num_ws, w_dim] with keys [N], ``size`` rows per call
    (the last call padded, so that one compilation serves all) -> uint8 [N, H, W, C]."""
    n = len(ws)
    out = []
    with tqdm(total=n, unit="img", disable=not progress or n <= size, file=sys.stderr) as bar:
        for start in range(0, n, size):
            idx = np.minimum(np.arange(start, start + size), n - 1)
            out.append(np.asarray(synthesize(variables, ws[idx], keys[idx]))[: n - start])
            bar.update(len(out[-1]))
    return np.concatenate(out)


def seed_images(G, variables, seeds: Sequence[int], c: np.ndarray, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const",
                batch_size: int = 16) -> Iterator[tuple[list[int], np.ndarray]]:
    """Streams ``(seed batch, uint8 images [len(batch), H, W, C])`` for ``seeds`` in order, ``batch_size``
    seeds at a time; ``c`` is the label row [1, c_dim] of every image, the seed also keys its random noise.
    Holds one batch at a time, so any number of seeds (a lazy `cli.Seeds`) works."""
    size = min(batch_size, len(seeds))
    mapper, synthesize = _mapper(G, truncation_psi, truncation_cutoff), _batch_synthesizer(G, noise_mode)
    labels = np.repeat(c, size, axis=0)
    for batch in batched(seeds, size):
        padded = batch + batch[-1:] * (size - len(batch))
        ws = mapper(variables, seed_latents(padded, G.z_dim), labels)
        yield batch, np.asarray(synthesize(variables, ws, _noise_keys(padded)))[: len(batch)]


def load_projected_ws(path: str, num_ws: int, w_dim: int) -> np.ndarray:
    """A projector's ``projected_w.npz`` (NVIDIA's format: key ``w`` [N, num_ws, w_dim]) -> float32 ws; a file
    that is not one, or whose ws do not fit the network, is a `UsageError` naming it."""
    arrays = read_npz(path, "a projector's projected_w.npz")
    if "w" not in arrays:
        raise UsageError(f"{path}: no array 'w' (it holds {list(arrays)}); expected a projector's projected_w.npz")
    ws = np.asarray(arrays["w"], np.float32)
    if ws.ndim != 3 or ws.shape[1:] != (num_ws, w_dim) or not len(ws):
        raise UsageError(f"{path}: w has shape {list(ws.shape)}; this network takes [N, {num_ws}, {w_dim}]")
    if not np.isfinite(ws).all():
        raise UsageError(f"{path}: w holds non-finite values")
    return ws


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation from rows ``a`` to rows ``b`` ([D] or [T, D]) at fractions ``t`` [T] -> [T, D],
    in float64: the direction along the great circle, the norm interpolated linearly; a straight line where
    the two directions are within 1e-6 radians."""
    a, b, t = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(t, np.float64)[:, None]
    na, nb = np.linalg.norm(a, axis=-1, keepdims=True), np.linalg.norm(b, axis=-1, keepdims=True)
    omega = np.arccos(np.clip(np.sum(a / na * (b / nb), axis=-1, keepdims=True), -1, 1))
    straight = omega < 1e-6
    sin_omega = np.where(straight, 1.0, np.sin(omega))
    direction = (np.sin((1 - t) * omega) * a / na + np.sin(t * omega) * b / nb) / sin_omega
    return np.where(straight, (1 - t) * a + t * b, direction * ((1 - t) * na + t * nb))


def interpolation_length(num_keyframes: int, frames: int) -> int:
    """Frames of a path through ``num_keyframes`` latents with ``frames`` per consecutive pair: (K-1)*frames+1."""
    return (num_keyframes - 1) * frames + 1


def interpolation_images(G, variables, seeds: Sequence[int], c: np.ndarray, frames: int,
                         truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                         noise_mode: str = "const", space: str = "w", batch_size: int = 16) -> Iterator[np.ndarray]:
    """Streams the uint8 frames [<= batch_size, H, W, C] of a path through the seeds' latents (at least two),
    ``frames`` per consecutive pair plus the last keyframe (`interpolation_length` in all): linear in W
    (``space="w"``) or slerp in Z (``"z"``); ``c`` is the label row [1, c_dim]; every frame has the noise of
    seed 0. Holds one batch at a time: only the keyframes a batch touches are drawn and mapped."""
    k_last = len(seeds) - 1
    total = interpolation_length(len(seeds), frames)
    size = min(batch_size, total)
    mapper, synthesize = _mapper(G, truncation_psi, truncation_cutoff), _batch_synthesizer(G, noise_mode)
    keys = _noise_keys(np.zeros(size, int))

    def ws_of(z: np.ndarray, rows: int) -> np.ndarray:
        ws = np.asarray(mapper(variables, pad_rows(z, rows), np.repeat(c, rows, axis=0)))[: len(z)]
        if not np.isfinite(ws).all():  # before NumPy's blend of them warns
            raise UsageError(NON_FINITE_IMAGES)
        return ws

    for start in range(0, total, size):
        f = np.arange(start, min(start + size, total))
        k = np.minimum(f // frames, k_last - 1)  # the pair (k, k + 1) of each frame; the last frame ends pair K-2
        t = (f - k * frames) / frames
        used = np.unique(np.concatenate([k, k + 1]))
        z = seed_latents([seeds[i] for i in used], G.z_dim)
        a, b = np.searchsorted(used, k), np.searchsorted(used, k + 1)
        if space == "w":
            w = ws_of(z, size + 1)
            ws = (1 - t)[:, None, None] * w[a] + t[:, None, None] * w[b]
        else:
            zs = np.where((t == 1)[:, None], z[b], slerp(z[a], z[b], t))  # the keyframes exactly
            ws = ws_of(zs.astype(np.float32), size)
        images = synthesize(variables, pad_rows(ws.astype(np.float32), size), keys)
        yield np.asarray(images)[: len(f)]


def keyframe_seeds(seeds: Sequence[int], cells: int, num_keyframes: int | None = None,
                   shuffle_seed: int | None = None) -> np.ndarray:
    """NVIDIA's gen_video.py: the seeds of the keyframes of ``cells`` looping paths, int64 [cells * K], path
    i's keyframes at [i * K, (i + 1) * K): ``seeds`` repeated in order to fill them, then shuffled by
    ``np.random.RandomState(shuffle_seed)`` when given. ``num_keyframes`` K defaults to len(seeds) / cells,
    which must then be whole (a `UsageError` otherwise)."""
    if num_keyframes is None:
        if len(seeds) % cells:
            raise UsageError(f"{len(seeds)} seeds for a grid of {cells} videos: give a multiple of {cells} seeds or "
                             "--num-keyframes")
        num_keyframes = len(seeds) // cells
    out = np.array([seeds[i % len(seeds)] for i in range(num_keyframes * cells)], np.int64)
    if shuffle_seed is not None:
        np.random.RandomState(shuffle_seed).shuffle(out)
    return out


def looping_path(keyframes: np.ndarray, kind: str = "cubic", wraps: int = 2):
    """NVIDIA's gen_video.py interpolation: ``t`` (floats, in keyframes) -> points [len(t), ...] on a path
    through keyframes [K, ...] at t = 0 .. K-1 that returns to the first at t = K; SciPy's ``interp1d`` of
    ``kind`` over the keyframes repeated ``2 * wraps + 1`` times (t from -wraps K to (wraps + 1) K - 1), so the
    path closes smoothly."""
    import scipy.interpolate

    k = len(keyframes)
    t = np.arange(-k * wraps, k * (wraps + 1))
    return scipy.interpolate.interp1d(t, np.tile(keyframes, [wraps * 2 + 1] + [1] * (keyframes.ndim - 1)),
                                      kind=kind, axis=0)


def looping_video_frames(G, variables, ws: np.ndarray, columns: int, w_frames: int,
                         batch_size: int = 16) -> Iterator[np.ndarray]:
    """Streams the frames of NVIDIA's gen_video.py, uint8 [rows * H, columns * W, C] each, ``K * w_frames`` in
    all: a grid of looping paths (`looping_path`) through the keyframe ws [cells, K, num_ws, w_dim] (cell i at
    row i // columns, column i % columns), frame f showing each path at t = f / w_frames, synthesised with
    constant noise ``batch_size`` images per jitted call."""
    cells, num_keyframes = ws.shape[:2]
    paths = [looping_path(np.asarray(ws[i], np.float64)) for i in range(cells)]
    total = num_keyframes * w_frames
    per_chunk = min(max(1, batch_size // cells), total)  # frames per chunk: one call, or one frame over several
    batch_size = min(batch_size, per_chunk * cells)  # no rows past a chunk's images
    synthesize, keys = _batch_synthesizer(G, "const"), _noise_keys(np.zeros(per_chunk * cells, int))
    for start in range(0, total, per_chunk):
        t = np.arange(start, min(start + per_chunk, total)) / w_frames
        chunk = np.stack([path(t) for path in paths], axis=1).astype(np.float32)  # [frames, cells, num_ws, w_dim]
        images = _in_batches(synthesize, variables, chunk.reshape(-1, *chunk.shape[2:]), keys, batch_size)
        for frame in images.reshape(len(t), cells, *images.shape[1:]):
            yield image_grid(frame, columns)

