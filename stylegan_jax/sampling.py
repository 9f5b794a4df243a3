"""Sampling a generator: seed lists, latents and labels, mapping to ws, batched synthesis to uint8 images, and
interpolation paths. Shared by the generate and style_mixing tools and the class-accuracy evaluation.

Seeds follow NVIDIA's generate.py: seed ``s`` draws ``z = np.random.RandomState(s).randn(1, z_dim)``, and
images convert as NVIDIA converts them (``x * 127.5 + 128``, clamped to [0, 255], truncated to uint8), so a
seed gives the same image in both codebases (noise_mode ``const``/``none``; ``random`` noise comes from JAX's
generator here). ``G`` is a generator with ``map`` and ``synthesize`` methods (the StyleGAN families).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from stylegan_jax.cli import UsageError
from stylegan_jax.images import to_uint8


def parse_seeds(text: str) -> list[int]:
    """``"0-3,7"`` -> [0, 1, 2, 3, 7] (comma-separated seeds or inclusive ranges); anything else is an
    `argparse.ArgumentTypeError` (this is an argparse ``type``)."""
    seeds = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise argparse.ArgumentTypeError(f"not a seed list: {text!r} (use e.g. 0-3,7)")
        seeds += range(int(m[1]), int(m[2] or m[1]) + 1)
    return seeds


def seed_latents(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """z [len(seeds), z_dim] float32, row i = ``np.random.RandomState(seeds[i]).randn(z_dim)`` as NVIDIA."""
    return np.concatenate([np.random.RandomState(s).randn(1, z_dim) for s in seeds]).astype(np.float32)


def one_hot(classes: np.ndarray | Sequence[int], c_dim: int) -> np.ndarray:
    """Class indices [N] -> one-hot labels [N, c_dim] float32."""
    return np.eye(c_dim, dtype=np.float32)[np.asarray(classes, int)]


def class_labels(c_dim: int, class_idx: int | None, n: int) -> np.ndarray:
    """``n`` one-hot labels [n, c_dim] of class ``class_idx``. A conditional network (c_dim > 0) needs a class
    in [0, c_dim), else `UsageError`; an unconditional one gets [n, 0] (and a warning when a class was given)."""
    if c_dim == 0:
        if class_idx is not None:
            print("warning: --class ignored: the network is unconditional", file=sys.stderr)
        return np.zeros((n, 0), np.float32)
    if class_idx is None or not 0 <= class_idx < c_dim:
        got = "no --class" if class_idx is None else f"--class {class_idx}"
        raise UsageError(f"the network is conditional with {c_dim} classes: pass --class 0..{c_dim - 1} ({got})")
    return one_hot(np.full(n, class_idx), c_dim)


def map_latents(G, variables, z, c, truncation_psi: float, truncation_cutoff: int | None = None):
    """z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim] (truncated towards w_avg), jitted."""
    fn = jax.jit(lambda v, z, c, psi: G.apply(v, z, c, psi, truncation_cutoff, method="map"))
    return fn(variables, z, c, jnp.float32(truncation_psi))


def _batch_synthesizer(G, noise_mode: str):
    """jitted (variables, ws [B, num_ws, w_dim], keys [B]) -> uint8 [B, H, W, C]; each image has its own noise
    key, so an image does not depend on the batch it is in."""

    def one(variables, w, key):
        img = G.apply(variables, w[None], noise_mode, True, rngs={"noise": key}, method="synthesize")
        return to_uint8(img[0])

    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0)))


def synthesize_images(G, variables, ws: np.ndarray, noise_mode: str = "const",
                      noise_seeds: Sequence[int] | None = None, batch_size: int = 16,
                      progress: bool = True) -> np.ndarray:
    """ws [N, num_ws, w_dim] -> uint8 images [N, H, W, C], in jitted batches of ``batch_size`` (the last one
    padded, so one compilation serves all); ``noise_seeds`` key the random noise per image (default 0..N-1)."""
    ws = np.asarray(ws, np.float32)
    n = len(ws)
    seeds = np.arange(n) if noise_seeds is None else np.asarray(noise_seeds)
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
    size = min(batch_size, n)
    synthesize = _batch_synthesizer(G, noise_mode)
    out = []
    with tqdm(total=n, unit="img", disable=not progress or n <= size, file=sys.stderr) as bar:
        for start in range(0, n, size):
            idx = np.minimum(np.arange(start, start + size), n - 1)
            out.append(np.asarray(synthesize(variables, ws[idx], keys[idx]))[: n - start])
            bar.update(len(out[-1]))
    return np.concatenate(out)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between rows a and b [D] at fractions t [T] -> [T, D] (norms interpolated)."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    omega = np.arccos(np.clip(np.dot(a / na, b / nb), -1, 1))
    t = t[:, None]
    if omega < 1e-6:
        return (1 - t) * a + t * b
    direction = (np.sin((1 - t) * omega) * a / na + np.sin(t * omega) * b / nb) / np.sin(omega)
    return direction * ((1 - t) * na + t * nb)


def interpolation_ws(G, variables, z: np.ndarray, c: np.ndarray, frames: int, psi: float,
                     cutoff: int | None, space: str = "w") -> np.ndarray:
    """ws [(K-1)*frames + 1, num_ws, w_dim] moving through K keyframe latents: linear in W, or slerp in Z."""
    t = np.arange(frames) / frames
    if space == "w":
        ws = np.asarray(map_latents(G, variables, z, c, psi, cutoff))
        path = [(1 - t)[:, None, None] * a + t[:, None, None] * b for a, b in zip(ws[:-1], ws[1:], strict=True)]
        return np.concatenate(path + [ws[-1:]])
    zs = np.concatenate([slerp(a, b, t) for a, b in zip(z[:-1], z[1:], strict=True)] + [z[-1:]])
    labels = np.repeat(c[:1], len(zs), axis=0)
    return np.asarray(map_latents(G, variables, zs.astype(np.float32), labels, psi, cutoff))
