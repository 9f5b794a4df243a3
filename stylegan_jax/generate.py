"""Generate images (or an interpolation video) from a network pickle or snapshot.

    python -m stylegan_jax.generate --network ffhq.pkl --seeds 0-3,7 --trunc 0.7 --outdir out

Flags follow NVIDIA's generate.py: seed ``s`` draws ``z = np.random.RandomState(s).randn(1, z_dim)`` and the
image is converted as NVIDIA converts it (``x * 127.5 + 128``, clamped to [0, 255], truncated to uint8), so
a seed gives the same PNG in both codebases (noise_mode ``const``/``none``; ``random`` noise comes from
JAX's generator here). Layers NVIDIA runs in float16 run in float32 here. ``--interpolate N`` writes N
frames per pair of consecutive seeds (linear in W, or ``--slerp`` in Z) and an MP4 when the optional
``video`` extra (imageio with its ffmpeg plugin) is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from stylegan_jax.images import image_grid, save_png, to_uint8
from stylegan_jax.network_snapshot import Network, NetworkLoadError, load_network

NOISE_MODES = ("const", "random", "none")


class UsageError(ValueError):
    """A flag does not fit the network (missing class, bad seed list...); one line for the user."""


def parse_seeds(text: str) -> list[int]:
    """``"0-3,7"`` -> [0, 1, 2, 3, 7] (comma-separated seeds or inclusive ranges)."""
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


def class_labels(c_dim: int, class_idx: int | None, n: int) -> np.ndarray:
    """One-hot labels [n, c_dim]; a conditional network needs a class in [0, c_dim)."""
    if c_dim == 0:
        if class_idx is not None:
            print("warning: --class ignored: the network is unconditional", file=sys.stderr)
        return np.zeros((n, 0), np.float32)
    if class_idx is None or not 0 <= class_idx < c_dim:
        got = "no --class" if class_idx is None else f"--class {class_idx}"
        raise UsageError(f"the network is conditional with {c_dim} classes: pass --class 0..{c_dim - 1} ({got})")
    return np.tile(np.eye(c_dim, dtype=np.float32)[class_idx], (n, 1))


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


def write_video(frames: np.ndarray, path: str, fps: int) -> bool:
    """An MP4 of uint8 frames [T, H, W, C] if imageio's ffmpeg plugin is installed; False otherwise."""
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        return False
    import imageio.v2 as imageio

    imageio.mimwrite(path, list(frames[..., 0] if frames.shape[-1] == 1 else frames), fps=fps, macro_block_size=1)
    return True


def generate(network: Network, seeds: Sequence[int], outdir: str, truncation_psi: float = 1.0,
             truncation_cutoff: int | None = None, class_idx: int | None = None, noise_mode: str = "const",
             batch_size: int = 16, grid: bool = False) -> list[str]:
    """Writes ``seed%04d.png`` per seed (and ``grid.png``); returns the paths."""
    G = network.generator
    z = seed_latents(seeds, G.z_dim)
    c = class_labels(G.c_dim, class_idx, len(seeds))
    ws = map_latents(G, network.G_ema, z, c, truncation_psi, truncation_cutoff)
    images = synthesize_images(G, network.G_ema, ws, noise_mode, seeds, batch_size)
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for seed, image in zip(seeds, images, strict=True):
        paths.append(os.path.join(outdir, f"seed{seed:04d}.png"))
        save_png(image, paths[-1])
    if grid:
        paths.append(os.path.join(outdir, "grid.png"))
        save_png(image_grid(images, int(np.ceil(np.sqrt(len(images))))), paths[-1])
    return paths


def interpolate(network: Network, seeds: Sequence[int], outdir: str, frames: int, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, class_idx: int | None = None, noise_mode: str = "const",
                space: str = "w", fps: int = 30, batch_size: int = 16) -> list[str]:
    """Writes ``frame%05d.png`` along the seeds' latents (and ``interpolation.mp4`` when possible)."""
    if len(seeds) < 2 or frames < 1:
        raise UsageError("--interpolate needs at least two seeds and a positive frame count")
    G = network.generator
    z = seed_latents(seeds, G.z_dim)
    c = class_labels(G.c_dim, class_idx, len(seeds))
    ws = interpolation_ws(G, network.G_ema, z, c, frames, truncation_psi, truncation_cutoff, space)
    images = synthesize_images(G, network.G_ema, ws, noise_mode, np.zeros(len(ws), int), batch_size)
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        paths.append(os.path.join(outdir, f"frame{i:05d}.png"))
        save_png(image, paths[-1])
    video = os.path.join(outdir, "interpolation.mp4")
    if write_video(images, video, fps):
        paths.append(video)
    else:
        print("MP4 not written: no video encoder installed (pip install 'stylegan_jax[video]' adds imageio's "
              f"ffmpeg plugin); the {len(images)} frames are PNGs in {outdir}", file=sys.stderr)
    return paths


def add_network_flags(p: argparse.ArgumentParser) -> None:
    """The flags generate and style_mixing share (NVIDIA's names)."""
    p.add_argument("--network", required=True, help="NVIDIA network pickle (.pkl) or stylegan_jax snapshot dir")
    p.add_argument("--trunc", dest="truncation_psi", type=float, help="truncation psi (default 1; StyleGAN1 "
                   "networks: 0.7 on the first 8 ws, as NVIDIA's)")
    p.add_argument("--trunc-cutoff", dest="truncation_cutoff", type=int, help="truncate only the first N ws")
    p.add_argument("--class", dest="class_idx", type=int, help="class label (conditional networks)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="noise inputs (default const)")
    p.add_argument("--outdir", required=True, help="where to write the images")
    p.add_argument("--batch-size", type=int, default=16, help="images per jitted batch")


def resolve_truncation(args: argparse.Namespace, network: Network) -> None:
    """Fill in ``--trunc``/``--trunc-cutoff`` left unset with the family's generation default
    (``GENERATION_TRUNCATION`` of its model module: StyleGAN1's (0.7, 8); none for the others)."""
    psi, cutoff = getattr(sys.modules[type(network.generator).__module__], "GENERATION_TRUNCATION", (1.0, None))
    if args.truncation_psi is None:
        args.truncation_psi = psi
        if args.truncation_cutoff is None:
            args.truncation_cutoff = cutoff


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m stylegan_jax.generate", description=__doc__.split("\n")[0])
    add_network_flags(p)
    p.add_argument("--seeds", type=parse_seeds, required=True, help="seeds, e.g. 0-3,7")
    p.add_argument("--grid", action="store_true", help="also write grid.png with all images")
    p.add_argument("--interpolate", type=int, metavar="FRAMES", help="write FRAMES frames between consecutive "
                   "seeds instead of one image per seed")
    p.add_argument("--slerp", action="store_true", help="interpolate spherically in Z (default: linearly in W)")
    p.add_argument("--fps", type=int, default=30, help="frame rate of the interpolation video")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 done, 1 user error)."""
    args = parse_args(argv)
    try:
        network = load_network(args.network)
        resolve_truncation(args, network)
        common = dict(truncation_psi=args.truncation_psi, truncation_cutoff=args.truncation_cutoff,
                      class_idx=args.class_idx, noise_mode=args.noise_mode, batch_size=args.batch_size)
        if args.interpolate is not None:
            paths = interpolate(network, args.seeds, args.outdir, args.interpolate,
                                space="z" if args.slerp else "w", fps=args.fps, **common)
        else:
            paths = generate(network, args.seeds, args.outdir, grid=args.grid, **common)
    except (NetworkLoadError, UsageError) as e:
        print(f"generate: error: {e}", file=sys.stderr)
        return 1
    with open(os.path.join(args.outdir, "generate.json"), "w") as f:
        json.dump({**vars(args), "G_kwargs": network.G_kwargs}, f, indent=2)
    print(f"wrote {len(paths)} files to {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
