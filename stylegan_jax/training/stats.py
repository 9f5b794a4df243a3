"""NVIDIA's ``training_stats`` for the phases' reported losses: a phase reports per-sample values (`report`, on
device, inside the jitted phase) and a tick reduces every sample reported in it to NVIDIA's ``{"num", "mean",
"std"}`` (`tick_stats`, on the host), as ``stats.jsonl`` holds them.

A reported name ``n`` is three outputs of the phase: ``n`` the mean of the values (what the phase's callers
and tests read), ``n@squares`` the mean of their squares and ``n@count`` their number. An output without
companions (a scalar such as ``Loss/pl_mean``) counts as one sample.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

SQUARES, COUNT = "@squares", "@count"


def report(name: str, values: jax.Array) -> dict[str, jax.Array]:
    """NVIDIA's ``training_stats.report(name, values)``: the outputs of per-sample ``values`` (any shape; every
    element a sample) under ``name`` (their mean), ``name@squares`` and ``name@count``, all float32 scalars."""
    values = jnp.asarray(values, jnp.float32)
    return {name: jnp.mean(values), name + SQUARES: jnp.mean(jnp.square(values)),
            name + COUNT: jnp.float32(values.size)}


def reported_means(outputs: dict) -> dict:
    """``outputs`` (a phase's) without the reports' companions: each name's mean, and the other outputs."""
    return {k: v for k, v in outputs.items() if not k.endswith((SQUARES, COUNT))}


def tick_stats(outputs: list[dict], previous: dict[str, dict] | None = None) -> dict[str, dict[str, float]]:
    """``{name: {"num", "mean", "std"}}`` over every sample reported in ``outputs`` (the host values of the
    phases' output dicts of a tick; keys other than the reports' are passed over by the caller): NVIDIA's
    moments, summed in float64, std ``sqrt(max(E[x^2] - E[x]^2, 0))`` and 0 for one sample. A name of
    ``previous`` (the tick before's) not reported in this tick keeps its entry (NVIDIA's ``keep_previous``: a
    tick shorter than a lazy regulariser's interval repeats its last values)."""
    moments: dict[str, np.ndarray] = {}
    for out in outputs:
        for name, mean in reported_means(out).items():
            count = float(out.get(name + COUNT, 1.0))
            squares = float(out[name + SQUARES]) if name + SQUARES in out else float(mean) ** 2
            moments.setdefault(name, np.zeros(3))
            moments[name] += np.array([count, count * float(mean), count * squares])
    stats = dict(previous or {})
    for name, (num, total, squares) in moments.items():
        mean = total / num
        std = 0.0 if num == 1 else float(np.sqrt(max(squares / num - mean**2, 0.0)))
        stats[name] = {"num": int(num), "mean": float(mean), "std": std}
    return stats
