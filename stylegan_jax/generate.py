"""Generate images (or an interpolation video) from a network pickle or snapshot.

    python -m stylegan_jax.generate --network ffhq.pkl --seeds 0-3,7 --trunc 0.7 --outdir out

Flags follow NVIDIA's generate.py, and a seed gives the same PNG in both codebases (noise_mode
``const``/``none``; see `stylegan_jax.sampling`). Layers NVIDIA runs in float16 run in float32 here.
``--interpolate N`` writes N frames per pair of consecutive seeds (linear in W, or ``--slerp`` in Z) and an
MP4 when the optional ``video`` extra (imageio with its ffmpeg plugin) is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Sequence

import numpy as np

from stylegan_jax.cli import UsageError, add_network_flags, load_sampled_network, run
from stylegan_jax.images import image_grid, save_png
from stylegan_jax.network_snapshot import Network, NetworkLoadError
from stylegan_jax.runtime import configure_runtime
from stylegan_jax.sampling import (
    class_labels,
    interpolation_ws,
    map_latents,
    parse_seeds,
    seed_latents,
    synthesize_images,
)


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
    configure_runtime()

    def body() -> None:
        network = load_sampled_network(args)
        common = dict(truncation_psi=args.truncation_psi, truncation_cutoff=args.truncation_cutoff,
                      class_idx=args.class_idx, noise_mode=args.noise_mode, batch_size=args.batch_size)
        if args.interpolate is not None:
            paths = interpolate(network, args.seeds, args.outdir, args.interpolate,
                                space="z" if args.slerp else "w", fps=args.fps, **common)
        else:
            paths = generate(network, args.seeds, args.outdir, grid=args.grid, **common)
        with open(os.path.join(args.outdir, "generate.json"), "w") as f:
            json.dump({**vars(args), "G_kwargs": network.G_kwargs}, f, indent=2)
        print(f"wrote {len(paths)} files to {args.outdir}")

    return run("generate", body, NetworkLoadError, UsageError)


if __name__ == "__main__":
    sys.exit(main())
