"""Polyphase planning shared by FIR resampling and resampling convolutions.

Both ``upfirdn2d`` and the up/down convolutions compute, along each spatial axis,

    y[o] = sum_s k[s] * u[o * down + s - pad0],   u = x with (up - 1) zeros inserted after each sample,

a correlation with a K-tap kernel ``k`` of the zero-upsampled, padded (or cropped, when a pad is negative)
input, keeping every ``down``-th output. Computed naively this multiplies inserted zeros (up) or computes
outputs that are thrown away (down). The plans below split the work into phases so that only the
contributing taps at the kept positions are computed:

- up (down == 1): output position o = up * m + r belongs to output phase r; phase r sees the taps
  s = s0, s0 + up, ... at consecutive input offsets, i.e. a plain correlation of the input with the
  sub-kernel ``k[s0::up]``. The phases are then interleaved (depth-to-space).
- down (up == 1): input position i = down * q + p belongs to input phase p (space-to-depth); input phase p
  sees the taps s = p, p + down, ..., again a plain correlation with ``k[p::down]``, and the phases' results
  are summed.

All quantities are static Python integers, computed at trace time.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class Phase:
    """One phase: the taps ``k[first::step][:count]`` correlated with the input from offset ``start``."""

    first: int
    count: int
    start: int


@dataclass(frozen=True)
class AxisPlan:
    """How to compute one axis: take the input window [lo, hi) (zero outside the input), then per phase
    correlate; ``out_len`` is the final length and ``phase_len`` the length each phase produces."""

    lo: int
    hi: int
    out_len: int
    phase_len: int
    phases: tuple[Phase, ...]


def output_length(n: int, up: int, down: int, pad0: int, pad1: int, taps: int) -> int:
    """Length of upfirdn's output along one axis (NVIDIA's formula); must be positive."""
    length = (n * up + pad0 + pad1 - taps) // down + 1
    if length < 1:
        raise ValueError(
            f"resampling an axis of {n} samples (up {up}, down {down}, pad {pad0},{pad1}, {taps} taps) "
            "leaves no output"
        )
    return length


def plan_up(n: int, up: int, pad0: int, pad1: int, taps: int) -> AxisPlan:
    """Plan ``y[o] = sum_s k[s] u[o + s - pad0]`` with u the ``up``-fold zero-upsampled input of length n.

    Output phase r (o = up * m + r) uses taps s = first + j * up at input offsets start + j + m
    (relative to the window); phases with no taps are zero.
    """
    out_len = output_length(n, up, 1, pad0, pad1, taps)
    phase_len = -(-out_len // up)
    raw = []
    for r in range(up):
        first = (pad0 - r) % up
        count = len(range(first, taps, up))
        raw.append((first, count, (r + first - pad0) // up))
    used = [(first, count, d0) for first, count, d0 in raw if count > 0]
    lo = min(d0 for _, _, d0 in used)
    hi = max(d0 + count - 1 for _, count, d0 in used) + phase_len
    phases = tuple(Phase(first, count, d0 - lo) for first, count, d0 in raw)
    return AxisPlan(lo, hi, out_len, phase_len, phases)


def plan_down(n: int, down: int, pad0: int, pad1: int, taps: int) -> AxisPlan:
    """Plan ``y[o] = sum_s k[s] x[o * down + s - pad0]`` for a length-n input.

    The window [lo, hi) has a multiple of ``down`` samples; input phase p (window index down * q + p)
    uses taps s = p + j * down at phase offsets j + o.
    """
    out_len = output_length(n, 1, down, pad0, pad1, taps)
    rows = -(-((out_len - 1) * down + taps) // down)
    lo = -pad0
    phases = tuple(Phase(p, len(range(p, taps, down)), 0) for p in range(down))
    return AxisPlan(lo, lo + rows * down, out_len, out_len, phases)


def window(x: jax.Array, axis: int, lo: int, hi: int) -> jax.Array:
    """``x[lo:hi]`` along ``axis``, with zeros where the range leaves the array (pad, then crop)."""
    n = x.shape[axis]
    before, after = max(-lo, 0), max(hi - n, 0)
    if before or after:
        widths = [(0, 0)] * x.ndim
        widths[axis] = (before, after)
        x = jnp.pad(x, widths)
    start = lo + before
    return jax.lax.slice_in_dim(x, start, start + hi - lo, axis=axis)


def split_phases(x: jax.Array, axis: int, factor: int) -> jax.Array:
    """Space-to-depth along ``axis``: (..., factor * q, ...) -> (..., q, factor, ...)."""
    shape = x.shape[:axis] + (x.shape[axis] // factor, factor) + x.shape[axis + 1 :]
    return x.reshape(shape)


def interleave_phases(phases: list[jax.Array], axis: int, out_len: int) -> jax.Array:
    """Depth-to-space along ``axis``: phase r holds outputs r, r + len(phases), ...; crop to ``out_len``."""
    if len(phases) == 1:
        return jax.lax.slice_in_dim(phases[0], 0, out_len, axis=axis)
    stacked = jnp.stack(phases, axis=axis + 1)
    s = stacked.shape
    shape = s[:axis] + (s[axis] * s[axis + 1],) + s[axis + 2 :]
    return jax.lax.slice_in_dim(stacked.reshape(shape), 0, out_len, axis=axis)
