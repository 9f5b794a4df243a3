"""Calculate quality metrics of a network pickle or snapshot (NVIDIA's calc_metrics.py).

    python -m stylegan_jax.calc_metrics --metrics fid50k_full,kid50k_full --network runs/x/network-snapshot-000100
    python -m stylegan_jax.calc_metrics --metrics swd --network ffhq.pkl --data ffhq256 --mirror

Each result is printed as a JSON line and, when the network lies in a training run directory (one with
the ``config.json`` that training writes), appended to ``<run dir>/metric-<name>.jsonl``. ``--data`` and
``--mirror`` default to the run's dataset and x-flip setting. Inception and VGG16 metrics read NVIDIA's
detector files from ``--detector-dir`` (default ``$STYLEGAN_JAX_DETECTORS`` or
``~/.cache/stylegan_jax/detectors``); swd needs none.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from stylegan_jax.cli import run
from stylegan_jax.data import DatasetError, resolve_dataset
from stylegan_jax.metrics import METRICS, DetectorError, MetricError, append_result, calc_metric
from stylegan_jax.metrics.metric_main import __doc__ as METRICS_TABLE
from stylegan_jax.network_snapshot import NetworkLoadError, load_network
from stylegan_jax.runtime import configure_runtime

RUN_CONFIG = "config.json"


def parse_metrics(text: str) -> list[str]:
    """``"fid50k_full,swd"`` -> ["fid50k_full", "swd"]; unknown names are an argparse error listing the valid."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown metric {', '.join(unknown) or '(none)'}; valid: "
                                         f"{', '.join(METRICS)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    table = METRICS_TABLE[METRICS_TABLE.index("| name"):]
    p = argparse.ArgumentParser(prog="python -m stylegan_jax.calc_metrics", description=__doc__.split("\n")[0],
                                epilog="metrics:\n" + table, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--metrics", type=parse_metrics, default=["fid50k_full"],
                   help=f"comma-separated metric names (default fid50k_full): {', '.join(METRICS)}")
    p.add_argument("--network", required=True, help="NVIDIA network pickle (.pkl) or stylegan_jax snapshot dir")
    p.add_argument("--data", help="dataset name or directory (default: the training run's dataset)")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="the reals include x-flips (default: the training run's setting, else no)")
    p.add_argument("--detector-dir", help="directory of NVIDIA's detector files (inception-2015-12-05.pt, "
                   "vgg16.pt)")
    p.add_argument("--seed", type=int, default=0, help="seed of latents, labels and subsets (default 0)")
    p.add_argument("--batch-size", type=int, default=64, help="images per jitted batch (default 64)")
    p.add_argument("--cache-dir", help="dataset statistics cache (default ~/.cache/stylegan_jax/gan-metrics)")
    return p.parse_args(argv)


def run_config(network: str) -> tuple[Path | None, dict]:
    """The training run directory holding ``network`` (None when it is not in one) and its config."""
    run_dir = Path(network).absolute().parent
    config = run_dir / RUN_CONFIG
    if not config.is_file():
        return None, {}
    with open(config) as f:
        return run_dir, json.load(f)


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 done, 1 user error)."""
    args = parse_args(argv)
    configure_runtime()

    def body() -> None:
        network = load_network(args.network)
        run_dir, config = run_config(args.network)
        data = args.data or config.get("dataset")
        if not data:
            raise MetricError(f"{args.network} is not in a training run directory: pass --data")
        dataset = resolve_dataset(data, data_dir=None if args.data else config.get("data_dir") or None)
        mirror = args.mirror if args.mirror is not None else bool(config.get("xflip", False))
        for name in args.metrics:
            result = calc_metric(name, G=network.generator, G_vars=network.G_ema, family=network.family,
                                 dataset=dataset, mirror=mirror,
                                 detector_dir=args.detector_dir, seed=args.seed, batch_size=args.batch_size,
                                 cache_dir=args.cache_dir)
            print(json.dumps(dict(result, snapshot_pkl=os.path.basename(os.path.abspath(args.network)))))
            if run_dir is not None:
                append_result(run_dir, result, os.path.abspath(args.network))

    return run("calc_metrics", body, NetworkLoadError, DatasetError, DetectorError, MetricError)


if __name__ == "__main__":
    sys.exit(main())
