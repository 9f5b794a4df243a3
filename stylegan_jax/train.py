"""Train a GAN of the lineage (GAN, cGAN, WGAN, WGAN-GP, PGGAN, StyleGAN1, StyleGAN2 with ADA, StyleGAN3, R3GAN):
``python -m stylegan_jax.train --experiment quickstart`` (or ``gan``, ``cgan``, ``wgan``, ``wgan_gp``, ``pggan``,
``ablations/stylegan2_c``, ...; ``--config.tiny=True`` shrinks any experiment to a CPU-size run).

Flags: --experiment NAME or PATH, --outdir (default runs/<experiment file name>), --kimg, --resume / --no-resume
(default: resume when the run directory has a checkpoint), --seed, --tick, --snap, NVIDIA's train.py flags
(--data, --cond, --mirror, --batch, --gamma, --cbase, --aug, --subset, ...: see --help), and any config value as
--config.KEY=VALUE (e.g. --config.batch_size=32, --config.G.channel_max=256); --dry-run prints the resolved config
and the parameter counts and exits; --no-cpu-fusion turns XLA:CPU's YNNPACK fusion off; --compile-cache off turns
off JAX's persistent compilation cache (default auto: JAX_COMPILATION_CACHE_DIR when set, else the run directory's
compile-cache/, so a resumed run compiles nothing).
Multi-host: the usual environment (TPU pods, SLURM) is detected by jax.distributed;
--coordinator/--num-processes/--process-id set it explicitly.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from stylegan_jax.cli import (
    ArgumentParser,
    finite_float,
    metric_names,
    nonnegative_float,
    nonnegative_int,
    parse_bool,
    parse_seed,
    path_arg,
    positive_int,
    run,
)

if TYPE_CHECKING:  # the config library loads with the run, not with --help
    import ml_collections

#: Flags -> the config keys they set (each flag's value is set on every key it names). The second group is
#: NVIDIA's train.py flags (stylegan3's names, which include stylegan2-ada's), so its commands carry over.
SHORTCUTS = {"kimg": ("kimg",), "seed": ("seed",), "tick": ("tick",), "snap": ("snap",),
             "cpu_fusion": ("cpu_fusion",), "compile_cache": ("compile_cache",),
             "aug": ("aug",), "p": ("p",), "target": ("ada_target",), "augpipe": ("augpipe",), "subset": ("subset",),
             "data": ("dataset",), "cond": ("conditional",), "mirror": ("xflip",), "batch": ("batch_size",),
             "batch_gpu": ("batch_gpu",), "gamma": ("r1_gamma",), "glr": ("G_lr",), "dlr": ("D_lr",),
             "cbase": ("G.channel_base", "D.channel_base"), "cmax": ("G.channel_max", "D.channel_max"),
             "map_depth": ("G.mapping_layers",), "mbstd_group": ("D.mbstd_group_size",), "metrics": ("metrics",),
             "freezed": ("freeze_d",), "workers": ("workers",), "allow_tf32": ("allow_tf32",)}
#: NVIDIA's ``--fp32=1``: no reduced-precision layers and no activation clamping, in G and D (R3GAN's: no
#: reduced-precision stages).
FP32 = (("G.num_fp16_res", "0"), ("D.num_fp16_res", "0"), ("G.conv_clamp", "None"), ("D.conv_clamp", "None"))
FP32_R3GAN = (("G.fp16_stages", "()"), ("D.fp16_stages", "()"))


def parse_metric_list(text: str) -> tuple[str, ...]:
    """NVIDIA's ``--metrics``: comma-separated names, or ``none`` (checked against the registry with the config)."""
    names = tuple(metric_names(text))
    if [n.lower() for n in names] == ["none"]:
        return ()
    if "none" in (n.lower() for n in names):
        raise argparse.ArgumentTypeError(f"{text!r}: 'none' (no metrics) stands alone, not beside metric names")
    return names


#: NVIDIA's train.py flags this CLI does not take, and what does their job here (the one-line error says it).
NVIDIA_FLAGS_ELSEWHERE = {
    "--cfg": "NVIDIA's --cfg is --experiment here (stylegan3_t, stylegan3_r, ffhq256 for paper256, auto, ...: the "
             "files in experiments/)",
    "--gpus": "every device JAX sees trains (NVIDIA's --gpus); choose them with CUDA_VISIBLE_DEVICES on GPUs",
    "--desc": "the run directory is --outdir (NVIDIA's --desc names a numbered one)",
    "--nobench": "NVIDIA's cuDNN benchmarking switch has no counterpart: XLA chooses its kernels",
    "--nhwc": "NVIDIA's memory-layout switch has no counterpart: XLA chooses the layouts",
}
#: NVIDIA's ``--resume PKL`` given here, where ``--resume`` takes no value.
RESUME_WITH_A_FILE = ("--resume takes no value here (it continues the run in --outdir); NVIDIA's --resume PKL, a "
                      "network to start from, is --config.resume_from=PKL")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[tuple[str, str]]]:
    # allow_abbrev off: NVIDIA's click takes no abbreviations, and '--resu x.pkl' must reach RESUME_WITH_A_FILE
    parser = ArgumentParser(prog="python -m stylegan_jax.train", description=__doc__.split("\n\n")[0],
                            allow_abbrev=False)
    parser.add_argument("--experiment", default="quickstart", help="experiment name (experiments/NAME.py) or path")
    parser.add_argument("--outdir", default=None, type=path_arg,
                        help="run directory (default runs/<experiment file name>)")
    parser.add_argument("--kimg", type=finite_float, help="total training length in thousands of images")
    parser.add_argument("--seed", type=parse_seed, help="root random seed")
    parser.add_argument("--tick", type=finite_float, help="kimg per tick (status line, log.txt, stats, snapshot "
                        "cadence; the TF lineages' runs: at training resolutions their tick_by_resolution lacks)")
    parser.add_argument("--snap", type=int, help="ticks between checkpoints, grids, network snapshots and metrics "
                        "(from tick 0, where the run has one)")
    parser.add_argument("--aug", choices=("ada", "noaug", "fixed"), help="discriminator augmentation (NVIDIA's "
                        "--aug; the config's aug)")
    parser.add_argument("--p", type=finite_float, help="augmentation probability for --aug=fixed (start for ada; "
                        "the config's p)")
    parser.add_argument("--target", type=finite_float, help="ADA's target for E[sign(D(real))] (default 0.6; the "
                        "config's ada_target)")
    parser.add_argument("--augpipe", help="augmentation preset: blit, geom, color, filter, noise, cutout, bg, bgc "
                        "(default), bgcf, bgcfn, bgcfnc (the config's augpipe)")
    parser.add_argument("--subset", type=int, help="train on a random N of the dataset's images, chosen by the "
                        "seed (NVIDIA's --subset; default, or 0: all; the config's subset)")
    nvidia = parser.add_argument_group("NVIDIA's train.py flags (each sets config keys; its --resume PKL is "
                                       "--config.resume_from here, and its --gpus is every device JAX sees)")
    nvidia.add_argument("--data", type=path_arg, help="dataset name or directory (config dataset)")
    nvidia.add_argument("--cond", type=parse_bool, help="class-conditional training, 1 or 0 (config conditional)")
    nvidia.add_argument("--mirror", type=parse_bool, help="x-flips, 1 or 0 (config xflip)")
    nvidia.add_argument("--batch", type=positive_int, help="global batch size (config batch_size; and batch_gpu 0, "
                        "the batch over the devices, unless --batch-gpu is given; StyleGAN3's EMA and StyleGAN3-R's "
                        "blur fade follow it, auto's values stay its own, as NVIDIA's)")
    nvidia.add_argument("--batch-gpu", type=positive_int, help="images per device minibatch (config batch_gpu)")
    nvidia.add_argument("--gamma", type=nonnegative_float, help="R1 weight (config r1_gamma; where the experiment "
                        "schedules it, as R3GAN's, its start: config decay.r1_gamma is the end)")
    nvidia.add_argument("--glr", type=nonnegative_float, help="G learning rate (config G_lr; where scheduled, its "
                        "start: config decay.G_lr is the end)")
    nvidia.add_argument("--dlr", type=nonnegative_float, help="D learning rate (config D_lr; where scheduled, its "
                        "start: config decay.D_lr is the end)")
    nvidia.add_argument("--cbase", type=positive_int, help="capacity multiplier (config G/D.channel_base; "
                        "StyleGAN3-R's G twice it, as NVIDIA's)")
    nvidia.add_argument("--cmax", type=positive_int, help="max. feature maps (config G/D.channel_max; StyleGAN3-R's "
                        "G twice it)")
    nvidia.add_argument("--map-depth", type=positive_int, help="mapping network depth (config G.mapping_layers)")
    nvidia.add_argument("--mbstd-group", type=positive_int, help="minibatch std group size (config "
                        "D.mbstd_group_size)")
    nvidia.add_argument("--metrics", type=parse_metric_list, help="metrics at every snapshot, comma-separated, or "
                        "none (config metrics)")
    nvidia.add_argument("--freezed", type=nonnegative_int, help="freeze the first N layers of D (config freeze_d)")
    nvidia.add_argument("--workers", type=nonnegative_int, help="data loader worker processes (config workers)")
    nvidia.add_argument("--fp32", type=parse_bool, help="1: every layer in float32, no clamping (config "
                        "G/D.num_fp16_res=0, conv_clamp=None; R3GAN's G/D.fp16_stages=())")
    nvidia.add_argument("--allow-tf32", type=parse_bool, help="0: float32 convolutions and matrix products in "
                        "full float32, NVIDIA's default; 1 (ours): the backend's default, TF32 on NVIDIA GPUs "
                        "(config allow_tf32)")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                        help="continue from the run directory's latest checkpoint if there is one")
    parser.add_argument("--coordinator", help="multi-process: coordinator address host:port")
    parser.add_argument("--num-processes", type=int, help="multi-process: number of processes")
    parser.add_argument("--process-id", type=int, help="multi-process: this process's index")
    parser.add_argument("-n", "--dry-run", action="store_true", help="print the resolved config and the networks' "
                        "parameter counts, then exit (nothing compiled; the dataset is read only for what the "
                        "config leaves to it: auto's resolution, a conditional run's class count)")
    parser.add_argument("--cpu-fusion", action=argparse.BooleanOptionalAction, default=None,
                        help="XLA:CPU's YNNPACK fusion (default: the config's cpu_fusion, on)")
    parser.add_argument("--compile-cache", help="JAX's persistent compilation cache: 'auto' (JAX_COMPILATION_CACHE_DIR "
                        "if set, else 'run'; the default), 'run' (the run directory's compile-cache/), 'off', or a "
                        "directory of yours")
    parser.add_argument("--stop-at-step", type=int, help=argparse.SUPPRESS)
    if any(item.startswith("--resume=") for item in argv):  # argparse's own line says only "ignored"
        parser.error(RESUME_WITH_A_FILE)
    args, rest = parser.parse_known_args(argv)
    check_processes(parser, args)
    overrides = []
    resume_values = {value for flag, value in itertools.pairwise(argv)
                     if flag == "--resume" and not value.startswith("-")}
    for item in rest:
        flag = item.split("=", 1)[0]
        if flag in NVIDIA_FLAGS_ELSEWHERE:
            parser.error(f"{flag}: {NVIDIA_FLAGS_ELSEWHERE[flag]}")
        if item in resume_values:
            parser.error(RESUME_WITH_A_FILE)
        if not item.startswith("--config.") or "=" not in item:
            parser.error(f"unrecognised argument {item!r}; config values are given as --config.KEY=VALUE")
        key, value = item[len("--config."):].split("=", 1)
        overrides.append((key, value))
    return args, overrides


def default_outdir(experiment: str) -> Path:
    """``runs/<the experiment file's name>``: ``runs/quickstart``, ``runs/stylegan2_c`` for
    ``ablations/stylegan2_c``, ``runs/my_exp`` for ``path/to/my_exp.py`` (so that two files of one's own, which may
    keep the name of the config they build on, do not share a run directory)."""
    from stylegan_jax.training.config import experiment_path

    return Path("runs") / experiment_path(experiment).stem


def check_processes(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The multi-process flags that are given, as jax.distributed needs them (it detects those left out on
    SLURM, TPU pods...): ``--coordinator`` host:port, ``--num-processes`` >= 1, ``--process-id`` >= 0 and
    below ``--num-processes``."""
    if args.coordinator is not None:
        host, _, port = args.coordinator.rpartition(":")
        if not (host and port.isdigit() and 0 < int(port) < 65536):
            parser.error(f"--coordinator: expected host:port (e.g. 10.0.0.1:1234), got {args.coordinator!r}")
    if args.num_processes is not None and args.num_processes < 1:
        parser.error(f"--num-processes: expected a whole number >= 1, got {args.num_processes}")
    if args.process_id is not None and args.process_id < 0:
        parser.error(f"--process-id: expected a whole number >= 0, got {args.process_id}")
    if args.process_id is not None and args.num_processes and args.process_id >= args.num_processes:
        parser.error(f"--process-id: expected 0 ... {args.num_processes - 1} (--num-processes "
                     f"{args.num_processes}), got {args.process_id}")


#: StyleGAN3's train.py default of ``--p`` (stylegan2-ada's requires the flag with ``--aug fixed``).
STYLEGAN3_FIXED_P = 0.2


def check_augment_flags(args: argparse.Namespace, cfg: ml_collections.ConfigDict) -> None:
    """``--target`` only where ADA runs (NVIDIA's rule); ``--p`` and ``--augpipe`` only where something
    augments (NVIDIA allows ``--p`` with ``--aug fixed`` only; here it also sets ADA's start); ``--aug fixed``
    needs a p (stylegan2-ada's "--aug=fixed requires specifying --p"), from ``--p`` or the config, unless the
    config schedules it (R3GAN); StyleGAN3's models take its train.py's 0.2 (`flag_values`). Config values
    of the experiment are not flags: not checked."""
    from stylegan_jax.errors import ConfigError
    from stylegan_jax.training.hyperparams import final_values

    aug = cfg.aug
    needs = {"p": ("ada", "fixed"), "augpipe": ("ada", "fixed"), "target": ("ada",)}
    for flag, kinds in needs.items():
        if getattr(args, flag) is not None and aug not in kinds:
            raise ConfigError(f"--{flag} applies only with --aug {' or '.join(kinds)} (this run's aug is {aug!r})")
    if args.aug == "fixed" and args.p is None and not cfg.p and "p" not in final_values(cfg):
        raise ConfigError("--aug=fixed requires specifying --p (the fixed augmentation probability)")


def flag_values(args: argparse.Namespace, cfg: ml_collections.ConfigDict,
                overrides: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(config key, value as a Python literal) for every `SHORTCUTS` flag given, as NVIDIA's flag sets it:
    ``--batch`` without ``--batch-gpu`` also sets ``batch_gpu`` 0 (the batch over the devices); StyleGAN3-R's G
    gets twice ``--cbase`` and ``--cmax`` (its train.py doubles them after setting them); ``--fp32 1`` sets
    `FP32` (R3GAN: `FP32_R3GAN`). A key the experiment's model does not have (``--cbase`` of an R3GAN), or one
    that a flag and a ``--config.KEY`` of `overrides` both set, is a `ConfigError` naming the flag (a value the
    flag only derives, ``--batch``'s ``batch_gpu``, gives way to the ``--config.KEY``)."""
    from stylegan_jax.errors import ConfigError
    from stylegan_jax.training.config import valid_keys

    known = set(valid_keys(cfg))

    def value(flag: str, key: str) -> str:
        given = getattr(args, flag)
        doubled = flag in ("cbase", "cmax") and key.startswith("G.") and cfg.G.get("use_radial_filters")
        return repr(given * 2 if doubled else given)

    given = [(flag, [(key, value(flag, key)) for key in keys]) for flag, keys in SHORTCUTS.items()
             if getattr(args, flag) is not None]
    if args.fp32:
        given.append(("fp32", list(FP32_R3GAN if "G.fp16_stages" in known else FP32)))
    n_explicit = len(given)  # the flags given outright; the entries after them are derived
    if args.batch is not None and args.batch_gpu is None:
        given.append(("batch", [("batch_gpu", "0")]))
    if args.aug == "fixed" and args.p is None and cfg.model == "stylegan3" and not cfg.p:
        given.append(("aug", [("p", repr(STYLEGAN3_FIXED_P))]))  # StyleGAN3's train.py: --p defaults to 0.2
    overridden = {key for key, _ in overrides}
    out = []
    for i, (flag, pairs) in enumerate(given):
        for key, value in pairs:
            name = "--" + flag.replace("_", "-")
            if key not in known:
                raise ConfigError(f"{name}: model {cfg.model!r} has no {key} (its keys: --dry-run)")
            if key in overridden and i < n_explicit:
                raise ConfigError(f"{name} sets {key}, and --config.{key} is given too; give one of them")
            out.append((key, value))
    return out


def user_errors() -> tuple[type[Exception], ...]:
    """The error types whose message is a one-line answer to bad input (imported when one was raised)."""
    from stylegan_jax.data import DatasetError
    from stylegan_jax.errors import ConfigError
    from stylegan_jax.metrics import DetectorError, MetricError
    from stylegan_jax.network_snapshot import NetworkLoadError
    from stylegan_jax.training.checkpoint import CheckpointError
    from stylegan_jax.training.loop import RunDirectoryError, TrainingDivergedError

    return (ConfigError, DatasetError, CheckpointError, RunDirectoryError, TrainingDivergedError, NetworkLoadError,
            DetectorError, MetricError)


def main(argv: list[str] | None = None) -> int:
    args, overrides = parse_args(sys.argv[1:] if argv is None else argv)

    def body() -> int | None:
        import jax  # inside the body: Ctrl-C during these imports is handled by `run`

        from stylegan_jax.runtime import configure_runtime
        from stylegan_jax.training.config import apply_override, load_experiment, shrink_to_tiny
        from stylegan_jax.training.loop import TrainingInterruptedError, train

        cfg = load_experiment(args.experiment)
        explicit = flag_values(args, cfg, overrides) + overrides
        for key, value in explicit:
            apply_override(cfg, key, value)
        if cfg.get("tiny"):  # --config.tiny shrinks the experiment; values given on the command line win
            cfg = shrink_to_tiny(cfg)
            for key, value in explicit:
                if key != "tiny":
                    apply_override(cfg, key, value)
        check_augment_flags(args, cfg)
        configure_runtime(cpu_fusion=cfg.cpu_fusion)  # before JAX starts its backends
        if args.dry_run:
            from stylegan_jax.training.summary import describe

            print(describe(cfg))
            return None
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # cross-process collectives on CPU
        if args.coordinator or args.num_processes:
            jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
        else:
            try:
                jax.distributed.initialize()  # detects TPU pods, SLURM, ...; single process otherwise
            except (ValueError, RuntimeError):
                pass
        outdir = Path(args.outdir) if args.outdir else default_outdir(args.experiment)
        try:
            train(cfg, outdir, resume=args.resume, stop_at_step=args.stop_at_step)
        except TrainingInterruptedError as e:
            print(f"train: {e}", file=sys.stderr)
            return e.exit_status
        return None

    return run("train", body, user_errors)


if __name__ == "__main__":
    sys.exit(main())
