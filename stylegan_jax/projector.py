"""Project real images into a generator's latent space (NVIDIA's projector.py), several targets as one batch.

    python -m stylegan_jax.projector --network ffhq.pkl --target me.png --outdir out
    python -m stylegan_jax.projector --network run/network-snapshot-000400 --target photos/ --space wplus \\
        --loss l2 --outdir out

The algorithm, its defaults and its schedules are NVIDIA's (`stylegan_jax.projection`). Each target is
centre-cropped to G's aspect ratio (a square, or W:H) and Lanczos-resized to G's resolution (converted to grayscale
for a one-channel network). A single ``--target`` file writes into ``--outdir`` as NVIDIA's: ``target.png``,
``proj.png`` (the final w rendered with the network's own constant noise, converted as NVIDIA's projector:
``(x + 1) * 255 / 2``, truncated), ``projected_w.npz`` (key ``w``, [1, num_ws, w_dim]: ``generate --projected-w``
renders it), ``projection.json`` (the final distance and the settings) and ``proj.mp4`` (target and projection side by
side at every step, with the ``video`` extra; ``proj_frames/`` PNGs otherwise). Several targets (files, or the images
of a folder) are projected together, sharded over the devices, each into ``--outdir/<file stem>/``.

``--loss lpips`` (NVIDIA's distance) reads ``vgg16.pt`` from the detector directory (see calc_metrics);
``--loss l2`` needs no file. Bad flags and files are one line on stderr and exit status 1, before anything is
written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import PIL
import PIL.Image
from tqdm import tqdm

from stylegan_jax import image_size
from stylegan_jax.atomic import atomic_write
from stylegan_jax.cli import (
    MAX_GRID_BYTES,
    ArgumentParser,
    UsageError,
    add_runtime_flags,
    check_output_files,
    load_sampled_network,
    numbered_file,
    outdir,
    parse_bool,
    parse_seed,
    path_arg,
    positive_int,
    run,
)
from stylegan_jax.data.images import decode, quiet_large_images, to_channels
from stylegan_jax.images import (
    has_video_encoder,
    remove_frames_from,
    report_frames_without_video,
    save_png,
    video_writer,
)
from stylegan_jax.metrics.detectors import VGG16_FILE, DetectorError, detector_file, load_vgg16
from stylegan_jax.network_snapshot import Network, NetworkLoadError
from stylegan_jax.projection import LOSSES, SPACES, ProjectionSettings, Projector, distance_embedding
from stylegan_jax.runtime import configure_runtime
from stylegan_jax.sampling import class_labels

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
#: proj.mp4 as NVIDIA's projector writes it.
VIDEO_FPS, VIDEO_CODEC, VIDEO_BITRATE = 10, "libx264", "16M"


def target_files(paths: list[str]) -> list[str]:
    """``--target`` values -> image files: files as given, folders as their image files (sorted, not
    recursive). A missing path, an empty folder, a file given twice (by any path) or two targets with the same
    file stem is a `UsageError`."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_SUFFIXES))
            if not found:
                raise UsageError(f"--target {path}: the folder holds no {'/'.join(IMAGE_SUFFIXES)} images")
            files += found
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise UsageError(f"--target {path}: no such file or directory")
    stems: dict[str, str] = {}
    given: dict[str, str] = {}  # each file's real path -> the name it was first given by
    for f in files:
        real = os.path.realpath(f)
        if real in given:
            raise UsageError(f"--target: {f} is given twice" + ("" if given[real] == f else f" (as {given[real]})"))
        given[real] = f
        stem = os.path.splitext(os.path.basename(f))[0]
        if stem in stems and len(files) > 1:
            raise UsageError(f"--target: {stems[stem]} and {f} would both write to --outdir/{stem}; rename one")
        stems[stem] = f
    return files


def load_target(path: str, resolution: int | tuple[int, int], channels: int) -> np.ndarray:
    """An image file -> uint8 [H, W, channels] (H = W = ``resolution``, or ``resolution`` = (H, W)): upright
    (its EXIF orientation applied, and 16-bit values scaled, as dataset_tool stores images; NVIDIA's projector
    does neither), centre-cropped to the largest W:H box (a square as NVIDIA's), Lanczos-resized; an
    unreadable file is a `UsageError` naming it."""
    try:
        image = decode(Path(path).read_bytes())
    except PIL.UnidentifiedImageError:  # Pillow's message names its in-memory buffer, not the file
        raise UsageError(f"--target {path}: not a readable image (no format Pillow reads)") from None
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as e:
        raise UsageError(f"--target {path}: not a readable image ({e})") from None
    if image.mode == "F":  # as dataset_tool, which skips them: Pillow's conversion would clip 0..1 to 0 and 1
        raise UsageError(f"--target {path}: floating-point pixels have no 8-bit range; save it with 8 or 16 bits")
    image, _ = to_channels(image, channels)
    height, width = image_size.parse(resolution)
    w, h = image.size
    cw, ch = min(w, h * width // height), min(h, w * height // width)
    image = image.crop(((w - cw) // 2, (h - ch) // 2, (w + cw) // 2, (h + ch) // 2))
    image = image.resize((width, height), PIL.Image.LANCZOS)
    return np.asarray(image, np.uint8).reshape(height, width, channels)


def write_video(projector: Projector, target: np.ndarray, w_steps: np.ndarray, directory: str) -> str:
    """Target | projection at every step as ``proj.mp4`` (10 fps, as NVIDIA's) or, without a video encoder,
    as ``proj_frames/frame%04d.png``; returns what was written."""
    path = os.path.join(directory, "proj.mp4")
    with video_writer(path, VIDEO_FPS, codec=VIDEO_CODEC, bitrate=VIDEO_BITRATE) as writer:
        if writer is None:
            os.makedirs(os.path.join(directory, "proj_frames"), exist_ok=True)
        for start in range(0, len(w_steps), 16):
            frames = projector.render(w_steps[start:start + 16])
            for i, frame in enumerate(frames, start):
                frame = np.concatenate([target, frame], axis=1)
                if writer is None:
                    save_png(frame, os.path.join(directory, "proj_frames", f"frame{i:04d}.png"))
                else:
                    writer.append_data(frame)
    if writer is None:
        remove_frames_from(os.path.join(directory, "proj_frames"), len(w_steps), 4)
        report_frames_without_video(len(w_steps), os.path.join(directory, "proj_frames"))
    return path if writer is not None else os.path.join(directory, "proj_frames")


def _directory(out: str, target: str, num_targets: int) -> str:
    """Where a target's outputs go: ``out`` for one target, ``out/<its file stem>`` for several."""
    return out if num_targets == 1 else os.path.join(out, os.path.splitext(os.path.basename(target))[0])


def project_files(network: Network, files: list[str], out: str, settings: ProjectionSettings, loss: str,
                  seed: int = 303, class_idx: int | None = None, save_video: bool = True,
                  detector_dir: str | None = None, network_path: str | None = None) -> list[dict]:
    """Projects the image ``files`` as one batch and writes each one's outputs (see the module docstring);
    returns each target's record (as in its ``projection.json``)."""
    G = network.sampler(class_idx)
    c = class_labels(G.c_dim, class_idx, 1)
    need = settings.num_steps * len(files) * G.num_ws * G.w_dim * 4  # the video's ws of every step, float32
    if save_video and need > MAX_GRID_BYTES:
        raise UsageError(f"--num-steps {settings.num_steps}: the video's ws of every step would need "
                         f"{need / 2**30:.3g} GiB of memory (at most {MAX_GRID_BYTES / 2**30:g} GiB); use fewer steps "
                         "or --save-video=false")
    targets = np.stack([load_target(f, G.img_resolution, G.img_channels) for f in files])
    encoder = has_video_encoder()
    outputs = {"target.png", "proj.png", "projected_w.npz", "projection.json",
               *(["proj.mp4"] if save_video and encoder else [])}
    folders = [(_directory(out, f, len(files)), f"--outdir's folder for {f}", outputs.__contains__) for f in files]
    if save_video and not encoder:  # `write_video`'s frames, one per step
        folders += [(os.path.join(d, "proj_frames"), "without a video encoder the frames are written there",
                     lambda n: numbered_file(n, "frame", 4, range(settings.num_steps))) for d, _, _ in folders]
    for directory, why, is_output in folders:  # before the projection, which may take hours
        check_output_files(directory, is_output, why)
    embed = distance_embedding(loss, load_vgg16(detector_dir) if loss == "lpips" else None)
    start = time.perf_counter()
    projector = Projector(G, network.G_ema, c, embed, settings)
    with tqdm(total=settings.num_steps, unit="step", file=sys.stderr) as bar:
        def progress(step: int, dist: np.ndarray, loss: np.ndarray) -> None:  # NVIDIA's log line's values
            means = " (means)" if len(dist) > 1 else ""
            bar.set_postfix_str(f"dist {dist.mean():.2f} loss {loss.mean():.2f}{means}", refresh=False)
            bar.update(1)

        result = projector.project(targets, seed, keep_steps=save_video, progress=progress)
    seconds = time.perf_counter() - start
    images = projector.render(result.ws)
    records = []
    for i, f in enumerate(files):
        directory = _directory(out, f, len(files))
        os.makedirs(directory, exist_ok=True)
        save_png(targets[i], os.path.join(directory, "target.png"))
        save_png(images[i], os.path.join(directory, "proj.png"))
        with atomic_write(os.path.join(directory, "projected_w.npz")) as fp:
            np.savez(fp, w=result.ws[i:i + 1])
        record = dict(target=f, network=network_path, distance=float(result.distance[i]),
                      loss_value=float(result.loss[i]), loss=loss, space=settings.space,
                      num_steps=settings.num_steps, seed=seed, class_idx=class_idx,
                      seconds_per_target=seconds / len(files))
        if save_video:
            record["video"] = write_video(projector, targets[i], result.w_steps[i], directory)
        with atomic_write(os.path.join(directory, "projection.json"), "w") as fp:
            json.dump(record, fp, indent=2)
        print(f"{f}: distance {record['distance']:.4f} -> {directory}")
        records.append(record)
    print(f"projected {len(files)} target(s) in {seconds:.1f} s")
    return records


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see ``--help``."""
    p = ArgumentParser(prog="python -m stylegan_jax.projector", description=__doc__.split("\n")[0])
    add_runtime_flags(p)
    p.add_argument("--network", required=True, type=path_arg,
                   help="NVIDIA network pickle (.pkl) or stylegan_jax snapshot dir")
    p.add_argument("--target", required=True, nargs="+", action="extend", type=path_arg, metavar="FILE",
                   help="image file(s) or folder(s) of images to project (together, as one batch)")
    p.add_argument("--outdir", required=True, type=outdir, help="where to write the results")
    p.add_argument("--num-steps", type=positive_int, default=1000, help="optimisation steps (default 1000)")
    p.add_argument("--seed", type=parse_seed, default=303, help="random seed (default 303)")
    p.add_argument("--save-video", type=parse_bool, nargs="?", const=True, default=True, metavar="BOOL",
                   help="write the optimisation as proj.mp4 (PNG frames without the video extra; default true)")
    p.add_argument("--loss", choices=LOSSES, default="lpips",
                   help="distance: lpips (NVIDIA's; needs vgg16.pt) or l2 (pixels; needs no file)")
    p.add_argument("--space", choices=SPACES, default="w", help="w (one w, NVIDIA's) or wplus (one per layer)")
    p.add_argument("--class", dest="class_idx", type=int, help="class label (conditional networks only)")
    p.add_argument("--detector-dir", type=path_arg, help="directory of NVIDIA's vgg16.pt (for --loss lpips; "
                   "default $STYLEGAN_JAX_DETECTORS or ~/.cache/stylegan_jax/detectors)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 done, 1 user error, 130 interrupted)."""
    args = parse_args(argv)
    configure_runtime(cpu_fusion=args.cpu_fusion)
    quiet_large_images()

    def body() -> None:
        files = target_files(args.target)
        if args.loss == "lpips":
            detector_file(VGG16_FILE, args.detector_dir)  # a missing file is refused before any work
        args.truncation_psi, args.truncation_cutoff = 1.0, None
        network = load_sampled_network(args)
        settings = ProjectionSettings(num_steps=args.num_steps, space=args.space)
        project_files(network, files, args.outdir, settings, args.loss, args.seed, args.class_idx,
                      args.save_video, args.detector_dir, args.network)

    return run("projector", body, NetworkLoadError, UsageError, DetectorError)


if __name__ == "__main__":
    sys.exit(main())
