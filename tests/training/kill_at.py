"""``python -m tests.training.kill_at MOMENT STEP TRAIN_ARGS...``: the training CLI, killed with SIGKILL (no
handler runs, as when a VM is preempted, the OOM killer strikes or a node fails) or sent SIGTERM at a named
moment of iteration STEP, so that a failure can be replayed exactly. The moments:

- ``sigterm``: SIGTERM once the iteration's phases are dispatched (the run saves after it and exits);
- ``sigterm-at-start``: SIGTERM once the run is restored or initialised, before its first iteration (STEP is
  not used);

- ``mid-step``: the iteration's phases dispatched, their results not yet computed;
- ``mid-save``: the save of the checkpoint of iteration STEP issued its array writes, none waited for;
- ``before-commit``: that checkpoint completely written into Orbax's temporary directory, not yet renamed;
- ``before-snapshot``: the checkpoint of iteration STEP, a snapshot point, saved; its network snapshot not
  yet written.
"""

import os
import signal
import sys

from orbax.checkpoint import type_handlers
from orbax.checkpoint._src.path import atomicity

from stylegan_jax import train
from stylegan_jax.training import checkpoint
from stylegan_jax.training.loop import Trainer


def kill(sig: int = signal.SIGKILL) -> None:
    os.kill(os.getpid(), sig)


def main(moment: str, step: int, argv: list[str]) -> int:
    saving = {"step": None}
    save = checkpoint.save

    def tracked_save(manager, state, *args, **kwargs):
        saving["step"] = int(state.step)
        return save(manager, state, *args, **kwargs)

    checkpoint.save = tracked_save
    if moment in ("mid-step", "sigterm"):
        run_iteration = Trainer.run_iteration

        def killing_iteration(self, state, batch, i, *args):
            out = run_iteration(self, state, batch, i, *args)
            if i == step:
                kill(signal.SIGTERM if moment == "sigterm" else signal.SIGKILL)
            return out

        Trainer.run_iteration = killing_iteration
    elif moment == "sigterm-at-start":
        restore_or_init = Trainer.restore_or_init

        def signalling_restore(self, *args, **kwargs):
            out = restore_or_init(self, *args, **kwargs)
            kill(signal.SIGTERM)
            return out

        Trainer.restore_or_init = signalling_restore
    elif moment == "mid-save":
        serialize = type_handlers.ArrayHandler.serialize

        async def killing_serialize(self, *args, **kwargs):
            futures = await serialize(self, *args, **kwargs)
            if saving["step"] == step:
                kill()
            return futures

        type_handlers.ArrayHandler.serialize = killing_serialize
    elif moment == "before-commit":
        finalize = atomicity.AtomicRenameTemporaryPath.finalize

        async def killing_finalize(self, *args, **kwargs):
            if saving["step"] == step:
                kill()
            return await finalize(self, *args, **kwargs)

        atomicity.AtomicRenameTemporaryPath.finalize = killing_finalize
    elif moment == "before-snapshot":
        save_network = Trainer.save_network

        def killing_save_network(self, state, nimg):
            if int(state.step) == step:
                kill()
            return save_network(self, state, nimg)

        Trainer.save_network = killing_save_network
    else:
        raise SystemExit(f"unknown moment {moment!r}")
    return train.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))
