"""Reading throughput of the input pipeline at 256x256: images/s with 0 and 2 worker processes.

Builds a dataset of photo-like 256x256 RGB images (random crops of scikit-image's sample photos) in a
temporary directory, or reads --dataset, then times `make_iterator` batches after one warm-up batch
(worker start-up excluded). Prints one JSON line per measurement:

    python benchmarks/data_pipeline.py [--workers 0 2] [--batch-size 32] [--batches 40] [--dataset DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import skimage.data

from stylegan_jax.data import make_iterator, read_dataset_info
from stylegan_jax.data.images import encode_png
from stylegan_jax.data.tfds_builder import DatasetSpec, write_dataset

RESOLUTION = 256


def photo_examples(num: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """`num` PNG-encoded 256x256 RGB random crops of scikit-image's colour sample photos."""
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    rng = np.random.default_rng(seed)
    for i in range(num):
        photo = photos[i % len(photos)]
        side = int(rng.integers(RESOLUTION // 2, min(photo.shape[:2]) + 1))
        y, x = (int(rng.integers(0, photo.shape[k] - side + 1)) for k in (0, 1))
        crop = PIL.Image.fromarray(photo[y : y + side, x : x + side])
        yield {"image": encode_png(np.asarray(crop.resize((RESOLUTION, RESOLUTION), PIL.Image.LANCZOS)))}


def measure(path: Path, *, workers: int, batch_size: int, batches: int) -> dict[str, Any]:
    """Images/s of `batches` batches after a warm-up batch."""
    iterator = make_iterator(path, batch_size=batch_size, seed=0, xflip=True, worker_count=workers)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
    seconds = time.perf_counter() - start
    iterator.close()
    assert batch["image"].shape == (batch_size, RESOLUTION, RESOLUTION, 3)
    return {
        "benchmark": "data_pipeline",
        "resolution": RESOLUTION,
        "workers": workers,
        "batch_size": batch_size,
        "batches": batches,
        "seconds": round(seconds, 3),
        "images_per_s": round(batches * batch_size / seconds, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--num-images", type=int, default=512, help="size of the generated dataset")
    p.add_argument("--dataset", type=Path, help="a 256x256 RGB dataset directory instead of generated data")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.dataset
        if path is None:
            spec = DatasetSpec(resolution=RESOLUTION, channels=3, source="benchmarks/data_pipeline.py")
            path = write_dataset(Path(tmp) / "photos", spec, photo_examples(args.num_images))
        info = read_dataset_info(path)
        for workers in args.workers:
            line = measure(path, workers=workers, batch_size=args.batch_size, batches=args.batches)
            print(json.dumps({**line, "num_images": info["num_images"]}), flush=True)


if __name__ == "__main__":
    main()
