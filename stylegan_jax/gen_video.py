"""Render a looping latent interpolation video, alone or a grid of them (StyleGAN3's gen_video.py, with its flags).

    python -m stylegan_jax.gen_video --network afhq.pkl --seeds 0-31 --grid 4x2 --output lerp.mp4

Each grid cell runs through its keyframes' ws on a smooth closed path (cubic, as NVIDIA's), ``--w-frames``
frames from one keyframe to the next, and back to its first: ``num_keyframes * w_frames`` frames at 60 fps
(libx264, 12 Mbit/s). The keyframes are the seeds in order (``--num-keyframes`` per cell; default: the seeds
shared out evenly), optionally shuffled by ``--shuffle-seed``; cell (x, y) of a W x H grid takes keyframes
``(y * W + x) * K ..``. Constant noise; a conditional network takes ``--class`` (NVIDIA's tool takes only
unconditional ones).

The MP4 needs the optional ``video`` extra (imageio with its ffmpeg plugin); without it the frames are written
as PNGs to ``<output without .mp4>_frames/``. Frames are rendered and written a batch at a time, so memory does
not grow with the video's length. Bad flags and files are one line on stderr and exit status 1, before
anything is written.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import numpy as np
from tqdm import tqdm

from stylegan_jax import image_size
from stylegan_jax.cli import (
    MAX_GRID_BYTES,
    ArgumentParser,
    UsageError,
    add_runtime_flags,
    check_grid,
    check_output_files,
    finite_float,
    load_sampled_network,
    nonnegative_int,
    numbered_file,
    output_file,
    parse_seed,
    parse_seeds,
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
from stylegan_jax.network_snapshot import NetworkLoadError
from stylegan_jax.runtime import configure_runtime
from stylegan_jax.sampling import (
    class_labels,
    keyframe_seeds,
    looping_video_frames,
    map_latents,
    seed_latents,
    started,
)

#: NVIDIA's video: 60 fps, H.264 at 12 Mbit/s.
FPS, CODEC, BITRATE = 60, "libx264", "12M"
#: Bytes per number of the keyframes' ws: float32, and each path's five-fold float64 copy and spline.
KEYFRAME_BYTES_PER_NUMBER = 4 + 5 * 8 * 2


def parse_grid(text: str) -> tuple[int, int]:
    """``"4x2"`` or ``"4,2"`` -> (columns, rows), each >= 1 (an argparse ``type``)."""
    m = re.fullmatch(r"\s*(\d+)\s*[x,]\s*(\d+)\s*", text)
    if not m or min(int(m[1]), int(m[2])) < 1:
        raise argparse.ArgumentTypeError(f"not a grid: {text!r} (use WxH, e.g. 4x2)")
    return int(m[1]), int(m[2])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see ``--help``."""
    p = ArgumentParser(prog="python -m stylegan_jax.gen_video", description=__doc__.split("\n\n")[0])
    add_runtime_flags(p)
    p.add_argument("--network", required=True, type=path_arg,
                   help="NVIDIA network pickle (.pkl) or stylegan_jax snapshot dir")
    p.add_argument("--seeds", required=True, type=parse_seeds, help="seeds of the keyframes, e.g. 0-31")
    p.add_argument("--shuffle-seed", type=parse_seed, help="shuffle the keyframes' seeds with this seed")
    p.add_argument("--grid", type=parse_grid, default=(1, 1), help="videos per row and column, WxH (default 1x1)")
    p.add_argument("--num-keyframes", type=positive_int, help="keyframes per video (default: the seeds divided "
                   "by W*H, which must be whole)")
    p.add_argument("--w-frames", type=positive_int, default=120, help="frames between keyframes (default 120)")
    p.add_argument("--trunc", dest="truncation_psi", type=finite_float, help="truncation psi (default 1; "
                   "StyleGAN1 networks: 0.7 on the first 8 ws, as NVIDIA's)")
    p.add_argument("--trunc-cutoff", dest="truncation_cutoff", type=nonnegative_int,
                   help="truncate only the first N ws")
    p.add_argument("--class", dest="class_idx", type=int, help="class label (conditional networks only)")
    p.add_argument("--output", required=True, type=output_file, help="the video to write (.mp4)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="images per jitted batch (default 16)")
    args = p.parse_args(argv)
    if not args.output.lower().endswith(".mp4"):
        p.error(f"--output {args.output}: expected a file name ending in .mp4")
    return args


def gen_video(args: argparse.Namespace) -> str:
    """Renders the video of ``args`` (`parse_args`); returns what was written (the MP4, or the frames' folder)."""
    network = load_sampled_network(args)
    G = network.sampler(args.class_idx)
    columns, rows = args.grid
    cells = columns * rows
    keyframes = cells * (args.num_keyframes or -(-len(args.seeds) // cells))
    need = keyframes * G.num_ws * G.w_dim * KEYFRAME_BYTES_PER_NUMBER
    if need > MAX_GRID_BYTES:
        raise UsageError(f"--seeds/--num-keyframes/--grid: {keyframes} keyframes would need {need / 2**30:.3g} GiB of "
                         f"memory for their paths (at most {MAX_GRID_BYTES / 2**30:g} GiB); use fewer")
    seeds = keyframe_seeds(args.seeds, cells, args.num_keyframes, args.shuffle_seed)
    num_keyframes = len(seeds) // cells
    height, width = image_size.parse(G.img_resolution)
    check_grid(cells, height * width * G.img_channels, "--grid")
    c = class_labels(G.c_dim, args.class_idx, len(seeds))
    ws = np.asarray(map_latents(G, network.G_ema, seed_latents(seeds, G.z_dim), c, args.truncation_psi,
                                args.truncation_cutoff))
    ws = ws.reshape(cells, num_keyframes, *ws.shape[1:])
    frames_dir = args.output[: -len(".mp4")] + "_frames"
    total = num_keyframes * args.w_frames
    if not has_video_encoder():  # the frames go to frames_dir: nothing may stand in their way
        check_output_files(frames_dir, lambda name: numbered_file(name, "frame", 5, range(total)),
                           why="without a video encoder the frames are written there")
    frames = started(looping_video_frames(G, network.G_ema, ws, columns, args.w_frames, args.batch_size))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with video_writer(args.output, FPS, codec=CODEC, bitrate=BITRATE) as writer:
        if writer is None:
            os.makedirs(frames_dir, exist_ok=True)
        with tqdm(total=total, unit="frame", file=sys.stderr) as bar:
            for i, frame in enumerate(frames):
                if writer is None:
                    save_png(frame, os.path.join(frames_dir, f"frame{i:05d}.png"))
                else:
                    writer.append_data(frame)
                bar.update()
    if writer is None:
        remove_frames_from(frames_dir, total, 5)
        report_frames_without_video(total, frames_dir)
        return frames_dir
    return args.output


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 done, 1 user error, 130 interrupted)."""
    args = parse_args(argv)
    configure_runtime(cpu_fusion=args.cpu_fusion)

    def body() -> None:
        print(f"wrote {gen_video(args)}")

    return run("gen_video", body, NetworkLoadError, UsageError)


if __name__ == "__main__":
    sys.exit(main())
