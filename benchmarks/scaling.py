"""Data-parallel scaling of the training step on fake CPU devices: the same per-device minibatch on 1, 2
and 4 devices (``--xla_force_host_platform_device_count``), one ``benchmarks/networks.py --only
train_step`` process per device count and gradient rule. One JSON line per run (networks.py's train_step
line); the per-image cost (``s_per_kimg``) should not grow with the device count. Results:
docs/performance.md.

    python benchmarks/scaling.py                       # 32x32, channel_base 4096, 4 images per device
    python benchmarks/scaling.py --devices 1,2 --rules forward
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

NETWORKS = Path(__file__).resolve().parent / "networks.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="1,2,4", help="comma-separated device counts")
    parser.add_argument("--rules", default="xla,forward", help="comma-separated conv2d gradient rules")
    parser.add_argument("--batch-gpu", type=int, default=4, help="images per device")
    parser.add_argument("--case", default="32:4096", help="RES:CHANNEL_BASE")
    parser.add_argument("--min-time", type=float, default=20.0, help="seconds to time each run")
    args = parser.parse_args()
    for rule in args.rules.split(","):
        for count in (int(n) for n in args.devices.split(",")):
            env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={count}")
            subprocess.run([sys.executable, str(NETWORKS), "--only", "train_step", "--cases", args.case,
                            "--batch", str(args.batch_gpu * count), "--batch-gpu", str(args.batch_gpu),
                            "--conv-grad", rule, "--min-time", str(args.min_time)], env=env, check=True)


if __name__ == "__main__":
    main()
