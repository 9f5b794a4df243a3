"""Converts a folder or zip of images into a training dataset (TFDS ArrayRecord).

    python -m stylegan_jax.dataset_tool --source ~/ffhq-images.zip \\
        --dest ~/.cache/stylegan_jax/datasets/ffhq256 --resolution 256
    python -m stylegan_jax.dataset_tool --source ~/downloads/cifar-10-python.tar.gz \\
        --dest ~/.cache/stylegan_jax/datasets/cifar10

As NVIDIA's, the tool also reads CIFAR-10's python tarball (``cifar-10-python.tar.gz``: the 50,000 training
images with their class labels; its pickles read with an allow-list, nothing in them runs) and MNIST's
``train-images-idx3-ubyte.gz`` (with ``train-labels-idx1-ubyte.gz`` beside it; padded to 32x32), by file name,
and LSUN's LMDB directories (named ``*_lmdb``; the ``lmdb`` package).

Flags follow NVIDIA's stylegan3 dataset_tool where they mean the same. User errors are one line
on stderr and exit status 1; an interrupted or failed conversion leaves nothing at --dest.

What --dest may be, so that no data of the user's is lost:

- a path that does not exist yet, or an empty directory: the dataset is created there;
- a dataset this tool wrote (recognised by its files: only TFDS's ``dataset_info.json`` naming the
  ``stylegan_images`` builder, ``features.json``, ``metadata.json`` and ``stylegan_images-train.array_record-*``
  shards): replaced with ``--overwrite`` once the new one is complete, refused without;
- anything else (a file, a symbolic link, a folder holding other files) is refused, even with ``--overwrite``;
- a --dest that is, contains or lies inside --source is refused.

Labels in the source's ``dataset.json`` are all integer classes in [0, ``MAX_CLASSES`` = 100000) (the dataset
gets max + 1 classes, as NVIDIA's tool counts them) or all lists of one length of finite float32 numbers (see
`stylegan_jax.data.convert`). Resolutions are powers of two from 4 to ``MAX_RESOLUTION`` = 4096
(`stylegan_jax.data.images`).
"""

from __future__ import annotations

import argparse
import sys

from stylegan_jax.cli import ArgumentParser, path_arg, run
from stylegan_jax.data.convert import convert_images
from stylegan_jax.data.errors import DatasetError
from stylegan_jax.data.images import TRANSFORMS, quiet_large_images


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see `--help`."""
    p = ArgumentParser(
        prog="python -m stylegan_jax.dataset_tool",
        description="Convert a folder or zip of images (any type Pillow reads; labels from an optional dataset.json), "
        "CIFAR-10's cifar-10-python.tar.gz, MNIST's train-images-idx3-ubyte.gz or an LSUN *_lmdb directory into a "
        "TFDS ArrayRecord dataset directory.",
    )
    p.add_argument("--source", required=True, type=path_arg, help="folder (searched recursively) or .zip of "
                   "images; or CIFAR-10's cifar-10-python.tar.gz, MNIST's train-images-idx3-ubyte.gz or an LSUN *_lmdb "
                   "directory")
    p.add_argument("--dest", required=True, type=path_arg, help="dataset directory to create: a new path, an "
                   "empty directory or (with --overwrite) a dataset made by this tool; never inside --source")
    p.add_argument("--resolution", help="output resolution, N or WxH (or W,H), width first (default: the first image's "
                   "size); WxH keeps W x H images unless --transform center-crop-wide letterboxes them into WxW")
    p.add_argument("--transform", choices=TRANSFORMS, default="none", help="crop before resizing: center-crop "
                   "takes the largest centred box of the output's W:H ratio")
    p.add_argument("--max-images", type=int, help="store at most this many images")
    p.add_argument("--channels", type=int, choices=(1, 3), help="1 or 3 (default: what most images have)")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset made by this tool at --dest "
                   "(nothing else is ever replaced)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs the conversion; returns the exit status (0 done, 1 user error, 130 interrupted)."""
    args = parse_args(argv)
    quiet_large_images()

    def body() -> int:
        try:
            report = convert_images(
                args.source,
                args.dest,
                resolution=args.resolution,
                transform=args.transform,
                max_images=args.max_images,
                channels=args.channels,
                overwrite=args.overwrite,
            )
        except KeyboardInterrupt:
            print(f"dataset_tool: interrupted, nothing written to {args.dest}", file=sys.stderr)
            return 130
        print(report.summary())
        return 0

    return run("dataset_tool", body, DatasetError)


if __name__ == "__main__":
    sys.exit(main())
