"""Generate images (or an interpolation video) from a network pickle or snapshot.

    python -m stylegan_jax.generate --network ffhq.pkl --seeds 0-3,7 --trunc 0.7 --outdir out

Flags follow NVIDIA's generate.py, and a seed gives the same PNG in both codebases (noise_mode
``const``/``none``; see `stylegan_jax.sampling`). Layers NVIDIA runs in float16 run in float32 here.
``--interpolate N`` writes N frames per pair of consecutive seeds (linear in W, or ``--slerp`` in Z) and an
MP4 when the optional ``video`` extra (imageio with its ffmpeg plugin) is installed.

Images are generated and written ``--batch-size`` at a time, so memory does not grow with the number of seeds
(``--seeds 0-99999999`` runs until stopped). ``--grid`` keeps one grid image in memory and is refused when it
would exceed `stylegan_jax.cli.MAX_GRID_BYTES`. Bad flags and files are one line on stderr and exit status 1,
before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from stylegan_jax import image_size
from stylegan_jax.atomic import atomic_write
from stylegan_jax.cli import (
    ArgumentParser,
    Seeds,
    UsageError,
    add_network_flags,
    add_runtime_flags,
    check_grid,
    check_output_files,
    finite_float,
    load_sampled_network,
    numbered_file,
    parse_seeds,
    parse_vec2,
    path_arg,
    positive_int,
    run,
)
from stylegan_jax.images import (
    has_video_encoder,
    remove_frames_from,
    report_frames_without_video,
    save_png,
    video_writer,
)
from stylegan_jax.network_snapshot import Network, NetworkLoadError
from stylegan_jax.runtime import configure_runtime
from stylegan_jax.sampling import (
    class_labels,
    interpolation_images,
    interpolation_length,
    load_projected_ws,
    seed_images,
    started,
    synthesize_images,
)


def _progress(total: int) -> tqdm:
    return tqdm(total=total, unit="img", file=sys.stderr, disable=total <= 1)


def generate(network: Network, seeds: Sequence[int], outdir: str, truncation_psi: float = 1.0,
             truncation_cutoff: int | None = None, class_idx: int | None = None, noise_mode: str = "const",
             batch_size: int = 16, grid: bool = False) -> int:
    """Writes ``seed%04d.png`` per seed (and ``grid.png``), ``batch_size`` images at a time; returns the number
    of files written (a seed given twice writes one file twice). Flags that do not fit the network (class, grid
    size), and a first batch of images that are not finite (`sampling.NON_FINITE_IMAGES`), are a `UsageError`
    raised before ``outdir`` is created."""
    G = network.sampler(class_idx)
    c = class_labels(G.c_dim, class_idx, 1)
    shape = (*image_size.parse(G.img_resolution), G.img_channels)
    columns = math.ceil(math.sqrt(len(seeds)))
    rows = -(-len(seeds) // columns)
    if grid:  # laid out as `stylegan_jax.images.image_grid`, filled as the batches come
        check_grid(rows * columns, math.prod(shape), "--grid with --seeds")
        canvas = np.zeros((rows * shape[0], columns * shape[1], shape[2]), np.uint8)
    batches = started(seed_images(G, network.G_ema, seeds, c, truncation_psi, truncation_cutoff, noise_mode,
                                  batch_size))
    os.makedirs(outdir, exist_ok=True)
    written = 0
    with _progress(len(seeds)) as bar:
        for batch, images in batches:
            for seed, image in zip(batch, images, strict=True):
                save_png(image, os.path.join(outdir, f"seed{seed:04d}.png"))
                if grid:
                    row, col = divmod(written, columns)
                    canvas[row * shape[0]:(row + 1) * shape[0], col * shape[1]:(col + 1) * shape[1]] = image
                written += 1
            bar.update(len(batch))
    if grid:
        save_png(canvas, os.path.join(outdir, "grid.png"))
    files = seeds.distinct() if isinstance(seeds, Seeds) else len(set(seeds))
    return files + 1 if grid else files


def render_projected(network: Network, ws: np.ndarray, outdir: str, noise_mode: str = "const",
                     batch_size: int = 16, class_idx: int | None = None) -> int:
    """Writes ``proj%02d.png`` for each row of ws [N, num_ws, w_dim] (NVIDIA's ``--projected-w``), converted
    as every image of this tool (``x * 127.5 + 128``); returns the number of files written. ``class_idx``: the
    label of a network without a mapping network (whose W, z, holds none)."""
    images = synthesize_images(network.sampler(class_idx), network.G_ema, ws, noise_mode, batch_size=batch_size)
    os.makedirs(outdir, exist_ok=True)
    for idx, image in enumerate(images):
        save_png(image, os.path.join(outdir, f"proj{idx:02d}.png"))
    return len(images)


def interpolate(network: Network, seeds: Sequence[int], outdir: str, frames: int, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, class_idx: int | None = None, noise_mode: str = "const",
                space: str = "w", fps: int = 30, batch_size: int = 16) -> int:
    """Writes ``frame%05d.png`` along the seeds' latents (and ``interpolation.mp4`` when possible), a batch at a
    time; returns the number of files written."""
    if len(seeds) < 2 or frames < 1:
        raise UsageError("--interpolate needs at least two seeds and a positive frame count")
    G = network.sampler(class_idx)
    c = class_labels(G.c_dim, class_idx, 1)
    total = interpolation_length(len(seeds), frames)
    batches = started(interpolation_images(G, network.G_ema, seeds, c, frames, truncation_psi, truncation_cutoff,
                                           noise_mode, space, batch_size))
    os.makedirs(outdir, exist_ok=True)
    video = os.path.join(outdir, "interpolation.mp4")
    written = 0
    with video_writer(video, fps) as writer, _progress(total) as bar:
        for images in batches:
            for image in images:
                save_png(image, os.path.join(outdir, f"frame{written:05d}.png"))
                if writer is not None:
                    writer.append_data(image)
                written += 1
            bar.update(len(images))
    remove_frames_from(outdir, written, 5)
    if writer is None:
        report_frames_without_video(written, outdir)
    return written if writer is None else written + 1


def make_transform(translate: tuple[float, float], angle: float) -> np.ndarray:
    """NVIDIA's gen_images.py ``make_transform``: the 3x3 transform that rotates the image by ``angle``
    degrees and translates it by ``translate`` (x, y) image widths (lengths of a W x H image's shorter side, the
    unit of its input's coordinates); a StyleGAN3 input takes its inverse."""
    s, c = np.sin(np.radians(angle)), np.cos(np.radians(angle))
    return np.array([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see ``--help``. Flag values and combinations are checked here (one error line,
    status 1); what depends on the network is checked after loading it."""
    p = ArgumentParser(prog="python -m stylegan_jax.generate", description=__doc__.split("\n")[0])
    add_network_flags(p)
    add_runtime_flags(p)
    p.add_argument("--seeds", type=parse_seeds, help="seeds, e.g. 0-3,7 (each 0..2**32-1)")
    p.add_argument("--projected-w", type=path_arg, metavar="FILE", help="render the ws of a projector's "
                   "projected_w.npz (as proj00.png, ...) instead of seeds")
    p.add_argument("--grid", action="store_true", help="also write grid.png with all images")
    p.add_argument("--interpolate", type=positive_int, metavar="FRAMES", help="write FRAMES frames between "
                   "consecutive seeds instead of one image per seed")
    p.add_argument("--translate", type=parse_vec2, metavar="X,Y", help="StyleGAN3: translate the image by X,Y "
                   "image widths (NVIDIA's gen_images.py; a W x H image's shorter side; default 0,0)")
    p.add_argument("--rotate", type=finite_float, metavar="DEG", help="StyleGAN3: rotate the image by DEG degrees "
                   "(default 0)")
    p.add_argument("--slerp", action="store_true", help="interpolate spherically in Z (default: linearly in W)")
    p.add_argument("--fps", type=positive_int, help="frame rate of the interpolation video (default 30)")
    args = p.parse_args(argv)
    if (args.seeds is None) == (args.projected_w is None):
        p.error("give either --seeds or --projected-w" + (" (not both)" if args.seeds is not None else ""))
    if args.projected_w is not None:
        given = [flag for flag, value in (("--grid", args.grid or None), ("--interpolate", args.interpolate),
                                          ("--trunc", args.truncation_psi), ("--trunc-cutoff", args.truncation_cutoff))
                 if value is not None]
        if given:
            p.error(f"{given[0]} does not apply with --projected-w (the ws are rendered as they are)")
    if args.interpolate is None:
        given = [flag for flag, value in (("--slerp", args.slerp), ("--fps", args.fps)) if value]
        if given:
            p.error(f"{given[0]} applies only with --interpolate")
    elif len(args.seeds) < 2:
        p.error(f"--interpolate needs at least two --seeds (got one: {args.seeds})")
    elif args.grid:
        p.error("--grid does not apply with --interpolate (the frames are the output)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 done, 1 user error, 130 interrupted)."""
    args = parse_args(argv)
    configure_runtime(cpu_fusion=args.cpu_fusion)

    def body() -> int | None:
        network = load_sampled_network(args)
        set_transform = network.family.input_transform
        if set_transform is not None:  # always set, as gen_images.py: the identity unless --translate/--rotate
            matrix = np.linalg.inv(make_transform(args.translate or (0.0, 0.0), args.rotate or 0.0))
            network = dataclasses.replace(network, G_ema=set_transform(network.G_ema, matrix))
        elif args.translate is not None or args.rotate is not None:
            raise UsageError(f"--{'translate' if args.translate is not None else 'rotate'} applies to StyleGAN3 "
                             f"networks (this one is {network.model})")
        fixed = {"generate.json", *(["grid.png"] if args.grid else [])}
        common = dict(truncation_psi=args.truncation_psi, truncation_cutoff=args.truncation_cutoff,
                      class_idx=args.class_idx, noise_mode=args.noise_mode, batch_size=args.batch_size)
        try:
            if args.projected_w is not None:
                if network.family.has_mapping and args.class_idx is not None:
                    raise UsageError("--class does not apply with --projected-w (the ws are rendered as they are)")
                G = network.sampler(args.class_idx)
                if not network.family.has_mapping:  # z is W: the label is not in it
                    class_labels(G.c_dim, args.class_idx, 1)
                ws = load_projected_ws(args.projected_w, G.num_ws, G.w_dim)
                check_output_files(args.outdir, lambda n: n in fixed or numbered_file(n, "proj", 2, range(len(ws))))
                count = render_projected(network, ws, args.outdir, args.noise_mode, args.batch_size, args.class_idx)
            elif args.interpolate is not None:
                frames = range(interpolation_length(len(args.seeds), args.interpolate))
                video = ["interpolation.mp4"] if has_video_encoder() else []
                check_output_files(args.outdir, lambda n: n in {*fixed, *video} or numbered_file(n, "frame", 5, frames))
                count = interpolate(network, args.seeds, args.outdir, args.interpolate,
                                    space="z" if args.slerp else "w", fps=args.fps or 30, **common)
            else:
                check_output_files(args.outdir, lambda n: n in fixed or numbered_file(n, "seed", 4, args.seeds))
                count = generate(network, args.seeds, args.outdir, grid=args.grid, **common)
        except KeyboardInterrupt:
            print(f"generate: interrupted; what was written so far is in {args.outdir}", file=sys.stderr)
            return 130
        with atomic_write(os.path.join(args.outdir, "generate.json"), "w") as f:
            seeds = None if args.seeds is None else str(args.seeds)
            json.dump({**vars(args), "seeds": seeds, "G_kwargs": network.G_kwargs}, f, indent=2)
        print(f"wrote {count} file{'' if count == 1 else 's'} to {args.outdir}")

    return run("generate", body, NetworkLoadError, UsageError)


if __name__ == "__main__":
    sys.exit(main())
