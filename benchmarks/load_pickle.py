"""Time to load an NVIDIA network pickle: restricted unpickling, then conversion to our variables.

    python benchmarks/load_pickle.py /tmp/config_f_1024.pkl

Make a full 1024x1024 config-f snapshot (G 30.4M parameters, plus G_ema, D, augment_pipe; 382 MB) with
NVIDIA's code, once, in a scratch venv with torch:
``NVIDIA_SRC=... python tests/fixtures/make_nvidia_pickles.py --config-f /tmp/config_f_1024.pkl``.
Prints one JSON line per measurement.
"""

import argparse
import json
import os
import time

import jax

from stylegan_jax.convert import load_network_pkl
from stylegan_jax.io.network_pickle import read_network_pickle


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("pickle", help="an NVIDIA network pickle")
    path = p.parse_args().pickle
    size = os.path.getsize(path)
    start = time.perf_counter()
    read_network_pickle(path)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    net = load_network_pkl(path)
    load_s = time.perf_counter() - start
    params = sum(x.size for x in jax.tree.leaves(net["G_ema"]["params"]))
    for name, seconds in (("read_pickle", read_s), ("load_and_convert", load_s)):
        print(json.dumps({"benchmark": name, "file_mb": round(size / 2**20, 1), "G_params": params,
                          "seconds": round(seconds, 2)}))


if __name__ == "__main__":
    main()
