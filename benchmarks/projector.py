"""Cost of projecting a target (``stylegan_jax.projection.Projector``): one JSON line.

    python benchmarks/projector.py                       # ffhq256's G, LPIPS (full-size VGG16), 1 target
    python benchmarks/projector.py --targets 4 --loss l2 --space wplus

G is the ``--experiment``'s generator with random weights and the VGG16 has NVIDIA's full size with random
weights (the cost does not depend on the values; ``--detector-dir`` uses a real ``vgg16.pt`` instead). The line
has ``name`` ("projector"), ``experiment``, ``resolution``, ``targets``, ``loss``, ``space``, ``backend``,
``devices``, ``w_stats_s`` (mapping 10,000 latents), ``compile_s`` (the first step beyond a warm one),
``s_per_step`` (all targets, warm), ``s_per_target`` (``num_steps`` steps, per target, warm) and ``peak_mem_mb``.
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

from benchmarks.augment import peak_mem_mb  # noqa: E402
from stylegan_jax.metrics.detectors import Detector, load_vgg16  # noqa: E402
from stylegan_jax.metrics.vgg16 import VGG16  # noqa: E402
from stylegan_jax.models import get_family  # noqa: E402
from stylegan_jax.projection import ProjectionSettings, Projector, distance_embedding  # noqa: E402
from stylegan_jax.training.config import load_experiment  # noqa: E402


def random_vgg16() -> Detector:
    """NVIDIA's VGG16 at full size with random weights."""
    module = VGG16()
    params = module.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)), method=VGG16.features)["params"]
    return Detector("vgg16-random", module, params, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="ffhq256")
    parser.add_argument("--targets", type=int, default=1)
    parser.add_argument("--loss", choices=("lpips", "l2"), default="lpips")
    parser.add_argument("--space", choices=("w", "wplus"), default="w")
    parser.add_argument("--num-steps", type=int, default=1000, help="the run the per-target time is for")
    parser.add_argument("--iters", type=int, default=5, help="warm steps timed")
    parser.add_argument("--detector-dir", help="use the real vgg16.pt from here")
    args = parser.parse_args()

    cfg = load_experiment(args.experiment)
    family = get_family(cfg.model)
    G, _ = family.build(cfg, 0)
    variables = jax.jit(lambda: G.init(jax.random.key(0), jnp.zeros((1, G.z_dim)), jnp.zeros((1, 0)),
                                       noise_mode="const"))()
    vgg = None
    if args.loss == "lpips":
        vgg = load_vgg16(args.detector_dir) if args.detector_dir else random_vgg16()
    settings = ProjectionSettings(num_steps=args.num_steps, space=args.space)
    t0 = time.perf_counter()
    projector = Projector(G, variables, np.zeros((1, 0), np.float32), distance_embedding(args.loss, vgg), settings)
    w_stats_s = time.perf_counter() - t0
    shape = (args.targets, G.img_resolution, G.img_resolution, G.img_channels)
    targets = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    steps = projector.steps(targets, seed=303)
    times = []
    for _ in range(args.iters + 1):
        t0 = time.perf_counter()
        _, _, _, ws = next(steps)
        jax.block_until_ready(ws)
        times.append(time.perf_counter() - t0)
    per_step = float(np.median(times[1:]))
    line = dict(name="projector", experiment=args.experiment, resolution=G.img_resolution, targets=args.targets,
                loss=args.loss, space=args.space, backend=jax.default_backend(), devices=jax.device_count(),
                w_stats_s=round(w_stats_s, 2), compile_s=round(times[0] - per_step, 2),
                s_per_step=round(per_step, 4), s_per_target=round(per_step * args.num_steps / args.targets, 1),
                peak_mem_mb=round(peak_mem_mb(), 1))
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
