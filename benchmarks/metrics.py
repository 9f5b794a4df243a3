"""Throughput of the metrics' feature extraction: one JSON line per measurement.

    python benchmarks/metrics.py                       # Inception, VGG16 and SWD descriptors, batch 32
    python benchmarks/metrics.py --only inception --batch 64 --iters 10

Full-size networks with random weights (the throughput does not depend on the weights), fed uint8 images
of ``--resolution`` through the same path the metrics use (`stylegan_jax.metrics.features.run_batches`:
host batches sharded over every device, the jitted feature function, features back to the host). Each line
has ``name`` (inception_features, vgg16_features, swd_descriptors), ``backend``, ``devices``, ``batch``,
``resolution``, ``compile_s`` (the first batch) and ``img_per_s`` (the following ``--iters`` batches).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stylegan_jax.runtime import configure_runtime  # noqa: E402

configure_runtime()  # the CLIs' XLA flags, before JAX starts its backends

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from stylegan_jax.metrics.features import compiled, run_batches  # noqa: E402
from stylegan_jax.metrics.inception import InceptionV3  # noqa: E402
from stylegan_jax.metrics.metric_main import _detector_fn, _swd_fn  # noqa: E402
from stylegan_jax.metrics.vgg16 import VGG16  # noqa: E402


def feature_case(name: str, batch: int, resolution: int) -> tuple:
    """(feature fn, params) of a benchmark case; detectors get random full-size parameters."""
    if name == "swd":
        return _swd_fn(0), None
    module, method, size = {"inception": (InceptionV3(), "features", 299), "vgg16": (VGG16(), "features", 224)}[name]
    dummy = jnp.zeros((1, size, size, 3), jnp.uint8)
    params = jax.jit(lambda: module.init(jax.random.key(0), dummy, method=method))()["params"]
    return _detector_fn(module, method), params


def measure(name: str, batch: int, resolution: int, iters: int) -> dict:
    fn, params = feature_case(name, batch, resolution)
    images = np.random.default_rng(0).integers(0, 256, (batch, resolution, resolution, 3), dtype=np.uint8)
    indices = np.arange(batch, dtype=np.int32)
    times = []
    start = time.perf_counter()
    step = compiled(fn, fn)
    for _ in run_batches(step, params, ((images, indices) for _ in range(iters + 1)), (iters + 1) * batch, batch,
                         name, progress=False):
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
    return dict(name=f"{name}_{'descriptors' if name == 'swd' else 'features'}", backend=jax.default_backend(),
                devices=jax.device_count(), batch=batch, resolution=resolution, compile_s=round(times[0], 2),
                img_per_s=round(batch * iters / sum(times[1:]), 2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default="inception,vgg16,swd", help="comma-separated cases: inception, vgg16, swd")
    p.add_argument("--batch", type=int, default=32, help="images per batch (default 32)")
    p.add_argument("--resolution", type=int, default=256, help="input image size (default 256)")
    p.add_argument("--iters", type=int, default=3, help="timed batches after the first (default 3)")
    args = p.parse_args()
    for name in args.only.split(","):
        print(json.dumps(measure(name, args.batch, args.resolution, args.iters)), flush=True)


if __name__ == "__main__":
    main()
