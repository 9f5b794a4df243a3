"""Speed and memory of StyleGAN2's, StyleGAN3's and R3GAN's G and D: one JSON line per measurement.

    python benchmarks/networks.py            # all cases
    python benchmarks/networks.py --quick    # a subset, under a minute on 2 CPU cores

The first line is ``matmul_peak`` (``gflop_per_s``, ``devices``). Then one line per case, with ``name``
(g_forward, gd_fwd_bwd, train_step; sg3t_/sg3r_g_forward and sg3t_/sg3r_train_step: StyleGAN3 T and R with
the ``stylegan3_t``/``stylegan3_r`` experiments' networks and losses, ADA included, channel_base 0;
r3gan_train_step: the ``r3gan_ffhq64`` experiment's networks and recipe),
``resolution``, ``channel_base``, ``batch``, ``dtype``, ``fused``,
``backend``, ``compile_s`` (seconds), ``img_per_s``, ``peak_mem_mb`` (MiB), ``gflop_per_img`` and
``pct_of_peak``: the FLOP count of the work per image times img/s, over that fp32 matmul peak (network cases:
NVIDIA's count, ``benchmarks/flops.py`` or ``FIXED_GFLOPS``; train_step cases of every family: XLA's count of
the phases' programs, amortised over the period as the timing is); train_step lines add ``s_per_kimg`` (and
``experiment``). Results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import math
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stylegan_jax.runtime import configure_runtime  # noqa: E402

configure_runtime()  # the CLIs' XLA flags, before JAX starts its backends

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.flops import discriminator_gflops, generator_gflops, xla_gflops  # noqa: E402
from benchmarks.op_profile import top_ops  # noqa: E402
from stylegan_jax.models.stylegan2 import Discriminator, Generator  # noqa: E402

# NVIDIA's FLOP count per image (GFLOP) of the cases docs/performance.md reports; others: benchmarks/flops.py.
FIXED_GFLOPS = {("g_forward", 64, 16384): 15.3, ("g_forward", 256, 16384): 30.1}


def peak_mem_mb() -> float:
    """Peak device memory (GPU/TPU) or the process's peak resident memory (CPU), in MiB."""
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_call(fn, args, min_time: float, min_iters: int = 2) -> tuple[float, float]:
    """(seconds of the first call, which includes compilation, seconds per call after it)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    iters, t0 = 0, time.perf_counter()
    while iters < min_iters or time.perf_counter() - t0 < min_time:
        jax.block_until_ready(fn(*args))
        iters += 1
    per_call = (time.perf_counter() - t0) / iters
    return first - per_call, per_call


def matmul_peak(n: int, dtype) -> float:
    """GFLOP/s of one n x n matmul (a single dot: XLA's YNNPACK fusion runs chains of dots slowly)."""
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)) / np.sqrt(n), dtype)
    _, t = time_call(jax.jit(jnp.matmul), (a, a), min_time=2.0)
    return 2 * n**3 / t / 1e9


FUSED = {"auto": None, "true": True, "false": False}
FUSED_MODCONV = None  # set from --fused


def networks(res: int, channel_base: int, dtype: str, c_dim: int = 0):
    """G and D of the benchmark configs: z/w 512, mapping 8, channel_max 512, G skip, D resnet; bfloat16
    runs the 4 highest resolutions in reduced precision with clamp 256, as NVIDIA's fp16 configs."""
    mixed = dict(num_fp16_res=4, conv_clamp=256) if dtype == "bfloat16" else {}
    G = Generator(z_dim=512, c_dim=c_dim, w_dim=512, img_resolution=res, img_channels=3,
                  mapping_kwargs=dict(num_layers=8),
                  synthesis_kwargs=dict(channel_base=channel_base, fused_modconv=FUSED_MODCONV, **mixed))
    D = Discriminator(c_dim=c_dim, img_resolution=res, img_channels=3, channel_base=channel_base, **mixed)
    return G, D


def bench_g_forward(res, channel_base, batch, dtype, min_time):
    G, _ = networks(res, channel_base, dtype)
    z, c = jnp.ones((batch, 512)), jnp.zeros((batch, 0))
    g_vars = jax.jit(G.init)(jax.random.key(0), z, c)
    fn = jax.jit(lambda v, z, key: G.apply(v, z, c, rngs={"noise": key}))
    compile_s, t = time_call(fn, (g_vars, z, jax.random.key(1)), min_time)
    gflops = FIXED_GFLOPS.get(("g_forward", res, channel_base), generator_gflops(res, channel_base=channel_base))
    return compile_s, t, gflops


def bench_gd_fwd_bwd(res, channel_base, batch, dtype, min_time):
    """One G step (G, D forward; gradient into G) and one D step (G forward; D on fakes and reals;
    gradient into D) with the non-saturating logistic losses, no regularisers."""
    G, D = networks(res, channel_base, dtype)
    z, c = jnp.ones((batch, 512)), jnp.zeros((batch, 0))
    reals = jnp.zeros((batch, res, res, 3))
    g_vars = jax.jit(G.init)(jax.random.key(0), z, c)
    d_vars = jax.jit(D.init)(jax.random.key(0), reals, c)

    def g_loss(g_params, d_params, key):
        img = G.apply({**g_vars, "params": g_params}, z, c, rngs={"noise": key})
        return jnp.mean(jax.nn.softplus(-D.apply({"params": d_params}, img, c)))

    def d_loss(d_params, g_params, key):
        img = jax.lax.stop_gradient(G.apply({**g_vars, "params": g_params}, z, c, rngs={"noise": key}))
        fake = D.apply({"params": d_params}, img, c)
        real = D.apply({"params": d_params}, reals, c)
        return jnp.mean(jax.nn.softplus(fake)) + jnp.mean(jax.nn.softplus(-real))

    @jax.jit
    def step(g_params, d_params, key):
        k1, k2 = jax.random.split(key)
        g_grad = jax.grad(g_loss)(g_params, d_params, k1)
        d_grad = jax.grad(d_loss)(d_params, g_params, k2)
        return g_grad, d_grad

    compile_s, t = time_call(step, (g_vars["params"], d_vars["params"], jax.random.key(1)), min_time)
    f_g = generator_gflops(res, channel_base=channel_base)
    f_d = discriminator_gflops(res, channel_base=channel_base)
    return compile_s, t, 4 * f_g + 8 * f_d  # G step 3 F_G + 2 F_D; D step F_G + 6 F_D


def train_config(res: int, channel_base: int, batch: int, dtype: str, experiment: str | None,
                 batch_gpu: int | None = None, conv_grad: str = "auto", overrides: tuple[str, ...] = ()):
    """The benchmark networks as a training config (or a named experiment's, e.g. ffhq256); ``batch_gpu``
    None: the whole batch as one minibatch (the experiment's: split over the devices); ``overrides``:
    ``KEY=VALUE`` as train's ``--config.KEY=VALUE``, applied last; the values derived from the batch (NVIDIA's
    StyleGAN3 settings) filled in as a run fills them."""
    from stylegan_jax.training.config import (
        apply_override,
        load_experiment,
        resolve_batch_derived,
        stylegan2_defaults,
    )

    cfg = load_experiment(experiment) if experiment else stylegan2_defaults()
    cfg.resolution, cfg.batch_size, cfg.batch_gpu, cfg.conv_grad = res, batch, batch_gpu or 0, conv_grad
    if not experiment:
        cfg.batch_gpu = batch_gpu or batch
        cfg.G.channel_base = cfg.D.channel_base = channel_base
    if dtype == "float32":
        for net in (cfg.G, cfg.D):
            net.update({k: v for k, v in (("num_fp16_res", 0), ("conv_clamp", None), ("fp16_stages", ()))
                        if k in net})
    for item in overrides:
        apply_override(cfg, *item.split("=", 1))
    return resolve_batch_derived(cfg)  # StyleGAN3's G_ema half-life and magnitude beta, from the batch


def bench_sg3_g_forward(res, channel_base, batch, dtype, min_time, experiment):
    """StyleGAN3's G (the experiment's widths) forward at ``res``."""
    from stylegan_jax.models import get_family

    G, _ = get_family("stylegan3").build(train_config(res, channel_base, batch, dtype, experiment), 0)
    z, c = jnp.ones((batch, 512)), jnp.zeros((batch, 0))
    g_vars = jax.jit(G.init)(jax.random.key(0), z, c)
    compile_s, t = time_call(jax.jit(lambda v, z: G.apply(v, z, c)), (g_vars, z), min_time)
    return compile_s, t, None


def bench_train_step(res, channel_base, batch, dtype, min_time, experiment=None, batch_gpu=None,
                     conv_grad="auto", overrides=(), phase_times=False, profile=0):
    """The whole training step on synthetic data, amortised over the period of its phases (16 iterations with
    StyleGAN2's lazy regularisers, 1 without periodic phases) after iteration 0 and a first call of each phase
    of the period that iteration 0 does not run (ADA's update), which compile them all (``compile_s``: their
    time less one timed iteration): the phases the config runs
    (StyleGAN2: G main every iteration, G reg (path length) every 4, D main every iteration, D reg (R1) every
    16; R3GAN: D main with R1 and R2, then G main on its own real batch, every iteration).

    ``phase_times``: time each phase alone instead of whole periods (each at least once and ``min_time``
    seconds) and weigh it by how often the period runs it; the line adds ``phase_s`` (seconds per call).
    ``profile`` > 0 (with ``phase_times``): one more run of each phase under the profiler; the line adds
    ``top_ops``, that many of each phase's XLA operations with the most time (`op_profile.top_ops`, ms)."""
    from stylegan_jax import losses
    from stylegan_jax.models import get_family
    from stylegan_jax.training import hyperparams
    from stylegan_jax.training.state import init_state, make_optimizer
    from stylegan_jax.training.steps import Phases, active_phases, compile_phases, make_layout, resolve_conv_grad

    cfg = train_config(res, channel_base, batch, dtype, experiment, batch_gpu, conv_grad, overrides)
    devices = jax.devices()
    family = get_family(cfg.model)
    G, D = family.build(cfg, 0)
    lazy = cfg.lazy_regularization
    scheduled = hyperparams.schedules_adam(cfg)
    g_tx = make_optimizer(cfg.G_lr, cfg, cfg.G_reg_interval if lazy else None, scheduled)
    d_tx = make_optimizer(cfg.D_lr, cfg, cfg.D_reg_interval if lazy else None, scheduled)
    layout = make_layout(cfg, len(devices))
    conv_grad = resolve_conv_grad(cfg.conv_grad, len(devices), jax.default_backend())
    phases = compile_phases(Phases(cfg, family, G, D, g_tx, d_tx, layout), conv_grad)
    state = jax.jit(lambda: init_state(cfg, G, D, g_tx, d_tx))()
    k = layout.minibatches
    per_minibatch = layout.batch_gpu * (2 if losses.objective(cfg).pairs else 1)  # R3GAN: D's and G's reals
    reals = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (k, per_minibatch, res, res, cfg.img_channels)),
                        jnp.float32)
    labels = jnp.zeros((k, layout.batch_gpu, 0))
    alpha, nimg = np.float32(1), np.float32(0)  # no progressive growing; the schedules' start

    def iterations(state, count):
        for step in range(count):
            for name in active_phases(cfg, step):
                state, _ = phases[name](state, reals, labels, alpha, nimg)
        return state

    # The period after which the phases repeat: the lazy regularisers' and ADA's intervals (1 without them).
    intervals = [cfg.G_reg_interval] if cfg.lazy_regularization and cfg.pl_weight else []
    intervals += [cfg.D_reg_interval] if cfg.lazy_regularization and losses.gradient_penalties(cfg) else []
    intervals += [cfg.ada_interval] if cfg.aug == "ada" else []
    period = math.lcm(*intervals) if intervals else 1
    calls = collections.Counter(name for step in range(period) for name in active_phases(cfg, step))
    t0 = time.perf_counter()
    state = jax.block_until_ready(iterations(state, 1))  # iteration 0 runs (and compiles) its phases
    for name in set(calls) - set(active_phases(cfg, 0)):  # and the rest (ADA's update: iteration 3) compile
        state = jax.block_until_ready(phases[name](state, reals, labels, alpha, nimg)[0])
    first = time.perf_counter() - t0
    extra = {}
    if phase_times:
        for name in calls:
            runs, t0 = 0, time.perf_counter()
            while runs < 1 or time.perf_counter() - t0 < min_time:
                state = jax.block_until_ready(phases[name](state, reals, labels, alpha, nimg)[0])
                runs += 1
            extra[name] = (time.perf_counter() - t0) / runs
        per_iteration = sum(extra[name] * count for name, count in calls.items()) / period
        extra = {"phase_s": {name: round(t, 2) for name, t in extra.items()}}
        if profile:
            extra["top_ops"] = {}
            for name in calls:
                (state, _), extra["top_ops"][name] = top_ops(
                    functools.partial(phases[name], state, reals, labels, alpha, nimg), profile)
    else:
        rounds, t0 = 0, time.perf_counter()
        while rounds < 1 or time.perf_counter() - t0 < min_time:
            state = jax.block_until_ready(iterations(state, period))
            rounds += 1
        per_iteration = (time.perf_counter() - t0) / (period * rounds)
    gflops = sum(xla_gflops(phases[name], state, reals, labels, alpha, nimg) * count
                 for name, count in calls.items()) / period / cfg.batch_size
    return first - per_iteration, per_iteration, gflops, {"conv_grad": conv_grad, "devices": len(devices),
                                                          "batch_gpu": layout.batch_gpu, **extra}


CASES = {
    "g_forward": (bench_g_forward, [(64, 16384), (256, 16384)]),
    "gd_fwd_bwd": (bench_gd_fwd_bwd, [(32, 4096), (64, 16384)]),
    "train_step": (bench_train_step, [(32, 4096), (64, 16384)]),
    **{f"sg3{c}_g_forward": (functools.partial(bench_sg3_g_forward, experiment=f"stylegan3_{c}"), [(64, 0), (256, 0)])
       for c in "tr"},
    **{f"sg3{c}_train_step": (functools.partial(bench_train_step, experiment=f"stylegan3_{c}"), [(32, 0), (256, 0)])
       for c in "tr"},
    "r3gan_train_step": (functools.partial(bench_train_step, experiment="r3gan_ffhq64"), [(64, 0)]),
}
QUICK = {name: [] for name in CASES} | {"g_forward": [(64, 16384)], "gd_fwd_bwd": [(32, 4096)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a subset that runs in under a minute on 2 cores")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--only", default=None, help="comma-separated case names")
    parser.add_argument("--min-time", type=float, default=None, help="seconds to time each case")
    parser.add_argument("--fused", choices=list(FUSED), default="auto",
                        help="modulated conv form: grouped conv (true), activation scaling (false), backend default")
    parser.add_argument("--cases", default=None, help="override resolutions as RES:CHANNEL_BASE,...")
    parser.add_argument("--experiment", default=None,
                        help="train_step only: that experiment's networks and losses (e.g. ffhq256), synthetic data")
    parser.add_argument("--batch-gpu", type=int, default=None,
                        help="train_step only: the minibatch (default: the whole batch, or the experiment's split)")
    parser.add_argument("--conv-grad", choices=["auto", "xla", "forward"], default="auto",
                        help="train_step only: conv2d's gradient rule (--config.conv_grad)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="train_step only: a config value as train's --config.KEY=VALUE (repeatable)")
    parser.add_argument("--phase-times", action="store_true",
                        help="train_step only: time each phase alone, weighted by its calls per period (faster "
                             "than whole periods; adds phase_s)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="train_step only, implies --phase-times: each phase's N XLA operations with the most "
                             "time, from a profiler trace of one more run (adds top_ops, ms)")
    args = parser.parse_args()
    global FUSED_MODCONV
    FUSED_MODCONV = FUSED[args.fused]
    min_time = args.min_time if args.min_time is not None else (1.0 if args.quick else 5.0)
    backend = jax.default_backend()
    peak = matmul_peak(8192 if backend != "cpu" else (1024 if args.quick else 2048), jnp.float32)
    print(json.dumps(dict(name="matmul_peak", dtype="float32", backend=backend, gflop_per_s=round(peak, 1),
                          devices=str(jax.devices()[0].device_kind))), flush=True)
    only = set(args.only.split(",")) if args.only else None
    for name, (fn, cases) in CASES.items():
        if only and name not in only:
            continue
        if args.cases:
            cases = [tuple(int(v) for v in case.split(":")) for case in args.cases.split(",")]
        for res, channel_base in QUICK[name] if args.quick and not args.cases else cases:
            extra = {"experiment": args.experiment} if name == "train_step" and args.experiment else {}
            if name.endswith("train_step"):
                extra |= {"batch_gpu": args.batch_gpu, "conv_grad": args.conv_grad, "overrides": tuple(args.set),
                          "phase_times": args.phase_times or args.profile > 0, "profile": args.profile}
            compile_s, t, gflops, *step = fn(res, channel_base, args.batch, args.dtype, min_time, **extra)
            extra |= step[0] if step else {}
            img_per_s = args.batch / t
            print(json.dumps(dict(
                name=name, resolution=res, channel_base=channel_base, batch=args.batch, dtype=args.dtype,
                fused=args.fused, backend=backend, compile_s=round(compile_s, 2), img_per_s=round(img_per_s, 3),
                peak_mem_mb=round(peak_mem_mb(), 1), gflop_per_img=None if gflops is None else round(gflops, 2),
                pct_of_peak=None if gflops is None else round(100 * gflops * img_per_s / peak, 1),
                **({"s_per_kimg": round(1000 / img_per_s, 2)} if name.endswith("train_step") else {}), **extra,
            )), flush=True)


if __name__ == "__main__":
    main()
