"""Orbax checkpoints of a run: the whole TrainState, the data iterator's position and metadata.

Orbax writes each step into a temporary directory and renames it when complete, so a half-written step
(a crash or a kill during the save) is never seen as a checkpoint and restore takes the latest complete
one. The metadata records the architecture, so a checkpoint of another network is one clear error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grain
import ml_collections
import orbax.checkpoint as ocp

from stylegan_jax.training.state import to_host

ARCHITECTURE_KEYS = ("model", "resolution", "img_channels", "conditional", "G", "D")


class CheckpointError(ValueError):
    """A checkpoint that cannot continue this run; the message is one line for the user."""


def architecture(cfg: ml_collections.ConfigDict) -> dict[str, Any]:
    """The config entries that fix the parameters' shapes."""
    d = cfg.to_dict()
    return {k: d[k] for k in ARCHITECTURE_KEYS}


def make_manager(directory: Path, cfg: ml_collections.ConfigDict) -> ocp.CheckpointManager:
    """Keep the last ``cfg.keep`` checkpoints, plus every step that is a multiple of ``cfg.keep_every``."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=cfg.keep, keep_period=cfg.keep_every or None, enable_async_checkpointing=False,
        create=True,
    )
    return ocp.CheckpointManager(directory.absolute(), options=options)


def save(manager: ocp.CheckpointManager, state, iterator, cfg: ml_collections.ConfigDict, kimg: float) -> None:
    """Save (collective: every process calls it) and wait until it is on disk."""
    meta = {"kimg": kimg, "architecture": architecture(cfg), "config": json.loads(json.dumps(cfg.to_dict(),
                                                                                             default=list))}
    step = int(to_host(state.step))
    manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(iterator),
        meta=ocp.args.JsonSave(meta),
    ), force=True)
    manager.wait_until_finished()


def _differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b and not (isinstance(a, list) and tuple(a) == b):
            out.append(f"{prefix}{key}: checkpoint {a!r}, config {b!r}")
    return out


def restore(manager: ocp.CheckpointManager, abstract_state, iterator, cfg: ml_collections.ConfigDict):
    """Restore the latest complete checkpoint into (state, iterator position); returns (state, meta)."""
    step = manager.latest_step()
    meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    diffs = _differences(meta["architecture"], json.loads(json.dumps(architecture(cfg), default=list)))
    if diffs:
        raise CheckpointError(f"{manager.directory}/{step}: a checkpoint of another architecture ("
                              + "; ".join(diffs[:4]) + ")")
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=grain.checkpoint.CheckpointRestore(iterator),
    ))
    return restored["state"], meta
