"""NVIDIA's flat state dicts (``'synthesis.b8.conv0.affine.weight' -> array``) <-> our variable trees.

Our parameter names and shapes are NVIDIA's, so the conversion is a rename: dots become tree levels, and
the buffers (``w_avg``, ``noise_const``; StyleGAN3's ``transform``, ``freqs``, ``phases``, ``magnitude_ema``)
go to the ``buffers`` collection. The FIR filters
(``resample_filter``) are constants here and are skipped. Shapes are checked against a template (the
variables our module creates) so that a state dict of another architecture is one clear error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

BUFFER_NAMES = ("w_avg", "noise_const", "transform", "freqs", "phases", "magnitude_ema")
SKIPPED_NAMES = ("resample_filter",)


def flatten_variables(variables: Mapping[str, Any]) -> dict[str, Any]:
    """{'params': {'mapping': {'fc0': {'weight': a}}}} -> {'mapping.fc0.weight': a}, params and buffers."""
    flat = {}
    for collection in ("params", "buffers"):
        for path, leaf in jax.tree_util.tree_flatten_with_path(dict(variables.get(collection, {})))[0]:
            flat[".".join(str(k.key) for k in path)] = leaf
    return flat


def state_dict_to_variables(state_dict: Mapping[str, np.ndarray], template: Mapping[str, Any],
                            what: str = "network") -> dict[str, dict]:
    """Fill a variable tree shaped like ``template`` (e.g. ``jax.eval_shape`` of ``init``) from NVIDIA's
    state dict; any missing, unexpected or mis-shaped entry is a ValueError naming it."""
    expected = flatten_variables(template)
    given = {k: v for k, v in state_dict.items() if k.rsplit(".", 1)[-1] not in SKIPPED_NAMES}
    missing, unexpected = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{what}: state dict does not match the architecture: missing {missing[:5]}"
                         f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                         f"{'...' if len(unexpected) > 5 else ''}")
    variables: dict[str, dict] = {"params": {}, "buffers": {}}
    for name, value in given.items():
        value = np.asarray(value, dtype=np.float32)
        if value.shape != tuple(expected[name].shape):
            raise ValueError(f"{what}: {name} has shape {value.shape}, the architecture expects "
                             f"{tuple(expected[name].shape)}")
        collection = "buffers" if name.rsplit(".", 1)[-1] in BUFFER_NAMES else "params"
        node = variables[collection]
        *parents, leaf = name.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return {k: v for k, v in variables.items() if v}
