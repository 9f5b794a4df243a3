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

    from stylegan_jax.training.loop import Trainer
    from tests.training.conftest import tiny_config

    cfg = tiny_config(data_dir, conv_grad=rule, batch_size=int(batch))
    leaves = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, devices in (("one", jax.devices()[:1]), ("many", jax.devices())):
            trainer = Trainer(cfg, Path(tmp) / name, devices=devices)
            assert trainer.cfg.conv_grad == rule and len(devices) in (1, int(count))
            state = trainer.initial_state()
            batch_arrays = trainer.device_batch(next(trainer.iterator))
            for step in range(2):
                state, _ = trainer.run_iteration(state, batch_arrays, step)
            leaves.update({f"{name}_{i}": np.asarray(x)
                           for i, x in enumerate(jax.tree_util.tree_leaves(jax.device_get(state)))})
            trainer.manager.close()
    np.savez(out, **leaves)


if __name__ == "__main__":
    main(sys.argv[1:])
