"""``python -m tests.training.step_on_devices DATA_DIR OUT N RULE BATCH``: the training tests' tiny config
(`tests.training.conftest.tiny_config`, batch ``BATCH`` in minibatches of 2, conv2d gradient rule ``RULE``)
runs every phase of iteration 0, then iteration 1, on 1 device and on ``N``, in a process of its own given
``N`` fake CPU devices; every leaf of both final states goes to the .npz ``OUT`` (``one_<i>``, ``many_<i>``)."""

import os
import re
import sys
import tempfile
from pathlib import Path


def main(argv: list[str]) -> None:
    data_dir, out, count, rule, batch = argv
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", os.environ.get("XLA_FLAGS", ""))
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}"
    import jax
    import numpy as np

    from stylegan_jax.training.loop import run_config
    from tests.training.conftest import tiny_config, two_iterations

    cfg = tiny_config(data_dir, conv_grad=rule, batch_size=int(batch))
    assert len(jax.devices()) == int(count) and run_config(cfg, jax.devices()).conv_grad == rule
    leaves = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, devices in (("one", jax.devices()[:1]), ("many", jax.devices())):
            leaves.update({f"{name}_{i}": x for i, x in enumerate(two_iterations(cfg, devices, Path(tmp) / name))})
    np.savez(out, **leaves)


if __name__ == "__main__":
    main(sys.argv[1:])
