"""Calculate quality metrics of a network pickle or snapshot (NVIDIA's calc_metrics.py).

    python -m stylegan_jax.calc_metrics --metrics fid50k_full,kid50k_full --network runs/x/network-snapshot-000100
    python -m stylegan_jax.calc_metrics --metrics swd --network ffhq.pkl --data ffhq256 --mirror

Each result is printed as a JSON line and, when the network lies in a training run directory (one with
the ``config.json`` that training writes), appended to ``<run dir>/metric-<name>.jsonl``. ``--data`` and
``--mirror`` default to the run's dataset and x-flip setting (its ``--subset`` for PPL's and EQ's labels, as NVIDIA's);
a ``--data`` given has no x-flips unless ``--mirror``.
Inception and VGG16 metrics read NVIDIA's detector files from ``--detector-dir`` (default
``$STYLEGAN_JAX_DETECTORS`` or ``~/.cache/stylegan_jax/detectors``); swd needs none.

Bad flags and files (an unknown metric or one that cannot score the network, all checked before any is
computed, a missing network or dataset, a conditional network whose classes do
not match the dataset's, a damaged run ``config.json``...) are one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from stylegan_jax.cli import (
    ArgumentParser,
    add_runtime_flags,
    metric_names,
    outdir,
    parse_seed,
    path_arg,
    positive_int,
    run,
)
from stylegan_jax.data import DatasetError, resolve_dataset
from stylegan_jax.metrics import METRICS, DetectorError, MetricError, append_result, calc_metric
from stylegan_jax.metrics.metric_main import __doc__ as METRICS_TABLE
from stylegan_jax.metrics.metric_main import check_metric, result_line
from stylegan_jax.network_snapshot import NetworkLoadError, load_network
from stylegan_jax.runtime import configure_runtime

RUN_CONFIG = "config.json"
#: The run config's keys calc_metrics reads, each with its test and what it should be.
RUN_CONFIG_KEYS = {
    "dataset": (lambda v: isinstance(v, str), "a dataset name or path"),
    "data_dir": (lambda v: v is None or isinstance(v, str), "a directory"),
    "xflip": (lambda v: isinstance(v, bool), "true or false"),
    "subset": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
               "a whole number of images >= 0"),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a whole number >= 0"),
}


def parse_metrics(text: str) -> list[str]:
    """``"fid50k_full,swd"`` -> ["fid50k_full", "swd"]; unknown names are an argparse error listing the valid."""
    names = metric_names(text)
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        what = f"unknown metric {', '.join(unknown)}" if unknown else f"{text!r} names no metric"
        raise argparse.ArgumentTypeError(f"{what}; valid: {', '.join(METRICS)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see ``--help``."""
    table = METRICS_TABLE[METRICS_TABLE.index("| name"):]
    p = ArgumentParser(prog="python -m stylegan_jax.calc_metrics", description=__doc__.split("\n")[0],
                       epilog="metrics:\n" + table, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_flags(p)
    p.add_argument("--metrics", type=parse_metrics, default=["fid50k_full"],
                   help=f"comma-separated metric names (default fid50k_full): {', '.join(METRICS)}")
    p.add_argument("--network", required=True, type=path_arg,
                   help="NVIDIA network pickle (.pkl) or stylegan_jax snapshot dir")
    p.add_argument("--data", type=path_arg, help="dataset name or directory (default: the training run's dataset)")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="the reals include x-flips (default: the training run's setting without --data, else no)")
    p.add_argument("--detector-dir", type=path_arg, help="directory of NVIDIA's detector files "
                   "(inception-2015-12-05.pt, vgg16.pt)")
    p.add_argument("--seed", type=parse_seed, default=0, help="seed of latents, labels and subsets (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per jitted batch (default 64)")
    p.add_argument("--cache-dir", type=outdir,
                   help="dataset statistics cache (default ~/.cache/stylegan_jax/gan-metrics)")
    return p.parse_args(argv)


def run_config(network: str, data_given: bool = False) -> tuple[Path | None, dict]:
    """The training run directory holding ``network`` (None when it is not in one) and its config; a config
    that is not a JSON object, or whose `RUN_CONFIG_KEYS` do not hold what training writes, is a `MetricError`
    (with ``data_given``, ``--data``, only the seed is read and checked)."""
    run_dir = Path(network).absolute().parent
    config = run_dir / RUN_CONFIG
    if not config.is_file():
        return None, {}
    try:
        with open(config) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise MetricError(f"{config}: not a readable training run config ({e}); fix it, or move the network "
                          "out of this directory") from None
    if not isinstance(data, dict):
        raise MetricError(f"{config}: not a training run config (a JSON {type(data).__name__}, expected an object)")
    for key, (fits, expected) in RUN_CONFIG_KEYS.items():
        if key in data and not fits(data[key]) and (key == "seed" or not data_given):
            raise MetricError(f"{config}: its {key} is {data[key]!r}; expected {expected} (fix it, or move the "
                              "network out of this directory)")
    return run_dir, data


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 done, 1 user error)."""
    args = parse_args(argv)
    configure_runtime(cpu_fusion=args.cpu_fusion)

    def body() -> None:
        network = load_network(args.network)
        run_dir, config = run_config(args.network, data_given=bool(args.data))
        data = args.data or config.get("dataset")
        if not data:
            raise MetricError(f"{args.network} is not in a training run directory: pass --data")
        dataset = resolve_dataset(data, data_dir=None if args.data else config.get("data_dir") or None)
        # NVIDIA's: --data is a new dataset, without x-flips unless --mirror; else the run's setting
        mirror = args.mirror if args.mirror is not None else not args.data and bool(config.get("xflip", False))
        subset = None if args.data else config.get("subset") or None  # the run's training set (PPL, EQ)
        G = network.generator
        for name in args.metrics:  # every one before any is computed (each may take hours)
            check_metric(name, network.family, G.img_resolution)
        # against --data, the line names the dataset, so that it is not taken for the run's own result
        other = os.path.abspath(dataset) if args.data else None  # (`has_result`)
        for name in args.metrics:
            result = calc_metric(name, G=G, G_vars=network.G_ema, family=network.family,
                                 dataset=dataset, mirror=mirror,
                                 detector_dir=args.detector_dir, seed=args.seed, batch_size=args.batch_size,
                                 cache_dir=args.cache_dir, subset=subset, subset_seed=config.get("seed", 0))
            # NVIDIA's report_metric: the line it appends to the run's results, printed
            print(append_result(run_dir, result, os.path.abspath(args.network), data=other) if run_dir is not None
                  else result_line(result, snapshot=args.network, data=other))

    return run("calc_metrics", body, NetworkLoadError, DatasetError, DetectorError, MetricError)


if __name__ == "__main__":
    sys.exit(main())
