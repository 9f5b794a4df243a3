"""Transfer learning: a new run's G, G_ema and D initialised from a pretrained network (NVIDIA's ``--resume``),
copying the parameters and buffers whose names and shapes match, as NVIDIA's ``copy_params_and_buffers``."""

from __future__ import annotations

from collections.abc import Callable

import flax
import jax
import ml_collections
import numpy as np

from stylegan_jax.errors import ConfigError
from stylegan_jax.network_snapshot import load_network
from stylegan_jax.training.state import TrainState


def transfer_settings(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """NVIDIA's settings for a run resumed from a network (its train.py with ``--resume``): ADA's p moves over
    100 kimg instead of 500, G_ema has no ramp-up and StyleGAN3-R's blur of D's images is off. ``cfg`` when it has
    no ``resume_from``."""
    if not cfg.get("resume_from"):
        return cfg
    c = cfg.copy_and_resolve_references()
    c.ada_kimg, c.ema_rampup, c.blur_init_sigma = 100.0, None, 0.0
    return c


def _copy(target: dict, source: dict | None, what: str, missed: list[str]) -> tuple[dict, int]:
    """``target`` with the leaves of ``source`` whose path and shape match (cast to the target's dtype)."""
    flat = flax.traverse_util.flatten_dict(target, sep="/")
    given = flax.traverse_util.flatten_dict(source or {}, sep="/")
    copied = 0
    for name, value in flat.items():
        new = given.get(name)
        if new is not None and np.shape(new) == value.shape:
            flat[name], copied = np.asarray(new, value.dtype), copied + 1
        else:
            missed.append(f"{what}/{name}")
    return flax.traverse_util.unflatten_dict(flat, sep="/"), copied


def initialise_from(state: TrainState, path: str, report: Callable[[str], None]) -> TrainState:
    """``state`` (a fresh run's, on the host or replicated) with G, G_ema and D from the network at ``path``
    (an NVIDIA pickle or a snapshot directory). What does not match is listed in one line through
    ``report``; a network of which nothing matches is a `ConfigError`. The optimiser states stay fresh."""
    network = load_network(path)
    host = jax.tree_util.tree_map(np.asarray, jax.device_get(state))
    missed: list[str] = []
    counts = []
    fields = {}
    for field, source, what in (("g_params", network.G or network.G_ema, "G"),
                                ("g_buffers", network.G or network.G_ema, "G"),
                                ("g_ema_params", network.G_ema, "G_ema"),
                                ("g_ema_buffers", network.G_ema, "G_ema"),
                                ("d_params", network.D, "D")):
        kind = "buffers" if field.endswith("buffers") else "params"
        fields[field], copied = _copy(getattr(host, field), (source or {}).get(kind), f"{what}/{kind}", missed)
        counts.append(copied)
    if not sum(counts):
        raise ConfigError(f"--config.resume_from={path}: none of its parameters match this run's networks")
    total = sum(counts) + len(missed)
    report(f"resume_from {path}: copied {sum(counts)} of {total} tensors" + (
        f"; not matched ({len(missed)}): " + ", ".join(missed[:8]) + (" ..." if len(missed) > 8 else "")
        if missed else ""))
    sharding = jax.tree_util.tree_leaves(state)[0].sharding
    return jax.device_put(host.replace(**fields), sharding)
