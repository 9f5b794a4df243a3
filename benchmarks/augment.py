"""Cost of ADA's augmentation (``stylegan_jax.augment.AugmentPipe``) per image: one JSON line.

    python benchmarks/augment.py                    # bgc, p = 1, batch 32, 256x256 RGB, forward
    python benchmarks/augment.py --grad             # also the gradient w.r.t. the images (what R1 adds)

The line has ``name`` ("augment"), ``preset``, ``p``, ``batch``, ``resolution``, ``backend``, ``compile_s``,
``ms_per_img`` (jitted, warm: the forward pass; with ``--grad`` also ``grad_ms_per_img``, forward + backward of
sum(pipe(x) * probe)) and ``peak_mem_mb`` (device peak, or the process's peak resident memory on CPU).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stylegan_jax.runtime import configure_runtime  # noqa: E402

configure_runtime()  # the CLIs' XLA flags, before JAX starts its backends

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from stylegan_jax.augment import AugmentPipe  # noqa: E402


def peak_mem_mb() -> float:
    """Peak device memory (GPU/TPU) or the process's peak resident memory (CPU), in MiB."""
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_call(fn, args, iters: int) -> tuple[float, float]:
    """(seconds of compilation and the first call beyond a warm call, seconds per warm call)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(iters):
        jax.block_until_ready(fn(*args))
    per_call = (time.perf_counter() - t0) / iters
    return first - per_call, per_call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="bgc")
    parser.add_argument("--p", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--grad", action="store_true", help="also time the gradient w.r.t. the images")
    args = parser.parse_args()

    pipe = AugmentPipe.preset(args.preset)
    shape = (args.batch, args.resolution, args.resolution, 3)
    images = jax.random.uniform(jax.random.key(0), shape, minval=-1, maxval=1)
    key, p = jax.random.key(1), jnp.float32(args.p)
    forward = jax.jit(lambda x, k, p: pipe(x, k, p))
    compile_s, seconds = time_call(forward, (images, key, p), args.iters)
    line = dict(name="augment", preset=args.preset, p=args.p, batch=args.batch, resolution=args.resolution,
                backend=jax.default_backend(), compile_s=round(compile_s, 2),
                ms_per_img=round(1000 * seconds / args.batch, 3))
    if args.grad:
        probe = jax.random.normal(jax.random.key(2), shape)
        grad = jax.jit(jax.grad(lambda x, k, p: jnp.sum(pipe(x, k, p) * probe)))
        _, seconds = time_call(grad, (images, key, p), args.iters)
        line["grad_ms_per_img"] = round(1000 * seconds / args.batch, 3)
    line["peak_mem_mb"] = round(peak_mem_mb(), 1)
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
