"""Pad, upsample, FIR-filter and downsample NHWC images: NVIDIA's ``upfirdn2d`` and its helpers.

Only the taps that meet input samples at kept output positions are computed (see ``polyphase``): an
upsampling filter never multiplies the inserted zeros and a downsampling filter is evaluated at the
strided positions only. Each product is a slice of the input times a constant, so XLA fuses the whole
filter into one elementwise loop, forward and backward, instead of a depthwise convolution, which XLA:CPU
runs far slower (figures: docs/performance.md, "Up/downsampling").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.ops import polyphase
from stylegan_jax.ops.filters import separable_factors

IntPair = int | Sequence[int]


def parse_scaling(scaling: IntPair) -> tuple[int, int]:
    """An int or [sx, sy] -> (sx, sy), each >= 1."""
    sx, sy = (scaling, scaling) if isinstance(scaling, int) else tuple(scaling)
    if not (isinstance(sx, int) and isinstance(sy, int) and sx >= 1 and sy >= 1):
        raise ValueError(f"scaling factors must be integers >= 1, got {scaling}")
    return sx, sy


def parse_padding(padding: IntPair) -> tuple[int, int, int, int]:
    """An int, [px, py] or [px0, px1, py0, py1] -> (px0, px1, py0, py1), as NVIDIA orders them."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    if len(padding) != 4:
        raise ValueError(f"padding must be an int, [x, y] or [x0, x1, y0, y1], got {padding}")
    return tuple(padding)  # type: ignore[return-value]


def filter_size(f: np.ndarray | None) -> tuple[int, int]:
    """(fw, fh) of a filter; (1, 1) for None."""
    if f is None:
        return 1, 1
    f = np.asarray(f)
    return f.shape[-1], f.shape[0]


def _zero_upsample(x: jax.Array, axis: int, up: int) -> jax.Array:
    """Insert ``up - 1`` zeros after each sample along ``axis``."""
    z = jnp.stack([x] + [jnp.zeros_like(x)] * (up - 1), axis=axis + 1)
    return z.reshape(x.shape[:axis] + (x.shape[axis] * up,) + x.shape[axis + 1 :])


def _plannable(x: jax.Array, axis: int, up: int, down: int) -> tuple[jax.Array, int]:
    """``(x, up)`` for `_axis_taps`, which plans up or down along an axis: with both (not used by the networks)
    the zeros are inserted here and a pure down is planned."""
    if up > 1 and down > 1:
        return _zero_upsample(x, axis, up), 1
    return x, up


def _weighted_sum(terms: list[tuple[float, jax.Array]]) -> jax.Array | None:
    """sum_i c_i * a_i over the non-zero coefficients, or None when there are none."""
    out = None
    for coef, arr in terms:
        if coef != 0:
            term = arr * jnp.asarray(coef, arr.dtype)
            out = term if out is None else out + term
    return out


@dataclass(frozen=True)
class _AxisTaps:
    """One axis of an upfirdn as sums of strided slices: take the input window [lo, hi) (zero outside the
    input); output phase r is ``sum over (s, start) in phases[r] of taps[s] * window[start::stride][:phase_len]``;
    the phases are interleaved (depth-to-space) and cropped to ``out_len``."""

    lo: int
    hi: int
    stride: int
    phase_len: int
    out_len: int
    phases: tuple[tuple[tuple[int, int], ...], ...]


def _axis_taps(n: int, up: int, down: int, pad0: int, pad1: int, k: int) -> _AxisTaps:
    """The `_AxisTaps` of ``y[o] = sum_s taps[s] * u[o * down + s - pad0]`` (u: the ``up``-fold zero-upsampled
    length-n input; up == 1 or down == 1) from the `polyphase` plans: only contributing taps at kept
    positions."""
    if up > 1:
        plan = polyphase.plan_up(n, up, pad0, pad1, k)
        phases = tuple(tuple((ph.first + j * up, ph.start + j) for j in range(ph.count)) for ph in plan.phases)
        return _AxisTaps(plan.lo, plan.hi, 1, plan.phase_len, plan.out_len, phases)
    plan = polyphase.plan_down(n, down, pad0, pad1, k)
    taps = tuple((p + j * down, p + j * down) for p, ph in enumerate(plan.phases) for j in range(ph.count))
    return _AxisTaps(plan.lo, plan.hi, down, plan.out_len, plan.out_len, (taps,))


def _strided(x: jax.Array, axis: int, start: int, stride: int, length: int) -> jax.Array:
    """``x[start::stride][:length]`` along ``axis``."""
    return jax.lax.slice_in_dim(x, start, start + (length - 1) * stride + 1, stride, axis=axis)


def _phase(terms: list[tuple[float, jax.Array]], shape: tuple[int, ...], dtype: jnp.dtype) -> jax.Array:
    """The weighted sum of ``terms``; zeros of ``shape`` for a phase that no tap reaches."""
    out = _weighted_sum(terms)
    return jnp.zeros(shape, dtype) if out is None else out


def fir_axis(x: jax.Array, axis: int, taps: np.ndarray, up: int, down: int, pad0: int, pad1: int) -> jax.Array:
    """1-D upfirdn along ``axis``: ``y[o] = sum_s taps[s] * u[o * down + s - pad0]`` (u zero-upsampled x).

    Only contributing taps at kept positions are computed (see ``polyphase``).
    """
    x, up = _plannable(x, axis, up, down)
    plan = _axis_taps(x.shape[axis], up, down, pad0, pad1, len(taps))
    xw = polyphase.window(x, axis, plan.lo, plan.hi)
    shape = x.shape[:axis] + (plan.phase_len,) + x.shape[axis + 1 :]
    phases = [_phase([(taps[s], _strided(xw, axis, start, plan.stride, plan.phase_len)) for s, start in phase],
                     shape, x.dtype) for phase in plan.phases]
    return polyphase.interleave_phases(phases, axis, plan.out_len)


def fir_2d(x: jax.Array, g: np.ndarray, up: tuple[int, int], down: tuple[int, int],
           padding: tuple[int, int, int, int]) -> jax.Array:
    """2-D upfirdn of NHWC ``x`` with correlation taps ``g`` [fh, fw] of any rank, computed directly: each
    output phase is a sum of strided slices of the input times ``g``'s taps, which XLA fuses into one
    elementwise loop. For a full-rank filter (config R's radial ones) this makes no intermediate image, where
    a sum of separable terms makes one per term at the input's height. ``up``, ``down``: (x, y) factors;
    ``padding``: (px0, px1, py0, py1)."""
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
    x, upx = _plannable(x, 2, upx, downx)
    x, upy = _plannable(x, 1, upy, downy)
    ty = _axis_taps(x.shape[1], upy, downy, py0, py1, g.shape[0])
    tx = _axis_taps(x.shape[2], upx, downx, px0, px1, g.shape[1])
    xw = polyphase.window(polyphase.window(x, 1, ty.lo, ty.hi), 2, tx.lo, tx.hi)
    shape = (x.shape[0], ty.phase_len, tx.phase_len, x.shape[3])
    rows = []
    for phase_y in ty.phases:
        strips = [(sy, _strided(xw, 1, start, ty.stride, ty.phase_len)) for sy, start in phase_y]
        cols = [_phase([(g[sy, sx], _strided(strip, 2, start, tx.stride, tx.phase_len))
                        for sy, strip in strips for sx, start in phase_x], shape, x.dtype)
                for phase_x in tx.phases]
        rows.append(polyphase.interleave_phases(cols, 2, tx.out_len))
    return polyphase.interleave_phases(rows, 1, ty.out_len)


def upfirdn2d(
    x: jax.Array,
    f: np.ndarray | None,
    up: IntPair = 1,
    down: IntPair = 1,
    padding: IntPair = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> jax.Array:
    """Upsample (insert zeros), pad (negative crops), FIR-filter and downsample NHWC images.

    Same semantics as NVIDIA's ``upfirdn2d`` with H, W on axes 1, 2.

    Args:
        x: [N, H, W, C] images.
        f: filter [fh, fw] or separable taps [t] (from ``setup_filter``), a concrete (non-traced) array;
            None is the identity.
        up, down: integer factors, or [x, y].
        padding: with respect to the upsampled image: int, [px, py] or [px0, px1, py0, py1].
        flip_filter: False = convolution, True = correlation.
        gain: overall signal gain.
    Returns:
        [N, (H * up_y + py0 + py1 - fh) // down_y + 1, (W * ...) // down_x + 1, C] in ``x``'s dtype. Half-precision
        ``x`` is filtered in float32 and the result rounded once, as NVIDIA's CUDA kernel computes half inputs
        (its internal type for them is float).
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects NHWC images, got shape {x.shape}")
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    f = np.ones([1, 1], np.float32) if f is None else np.asarray(f, np.float32)
    if f.ndim not in (1, 2):
        raise ValueError(f"filter must be 1-D (separable) or 2-D, got shape {f.shape}")
    if f.ndim == 1 and gain < 0:  # each axis takes gain's square root (NVIDIA's: NaN)
        raise ValueError(f"a separable (1-D) filter needs gain >= 0, got {gain}; negate a 2-D filter instead")
    f = f.astype(np.float64) * (gain ** (f.ndim / 2))
    g = f if flip_filter else np.flip(f, axis=tuple(range(f.ndim)))  # correlation taps
    factors = separable_factors(g)
    work = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    if factors is None:
        return fir_2d(work, g, (upx, upy), (downx, downy), (px0, px1, py0, py1)).astype(x.dtype)
    gy, gx = factors
    return fir_axis(fir_axis(work, 2, gx, upx, downx, px0, px1), 1, gy, upy, downy, py0, py1).astype(x.dtype)


def adjoint_padding(f: np.ndarray | None, in_hw: tuple[int, int], out_hw: tuple[int, int], up: IntPair = 1,
                    down: IntPair = 1, padding: IntPair = 0) -> tuple[int, int, int, int]:
    """The padding of the upfirdn2d (up and down swapped, filter flipped) that computes the adjoint of
    ``upfirdn2d(x, f, up, down, padding)`` for x of spatial size ``in_hw`` and output ``out_hw``: NVIDIA's
    ``[fw - px0 - 1, in_w up - out_w down + px0 - up + 1, ...]``."""
    (upx, upy), (downx, downy) = parse_scaling(up), parse_scaling(down)
    px0, _, py0, _ = parse_padding(padding)
    fw, fh = filter_size(f)
    (in_h, in_w), (out_h, out_w) = in_hw, out_hw
    return (fw - px0 - 1, in_w * upx - out_w * downx + px0 - upx + 1,
            fh - py0 - 1, in_h * upy - out_h * downy + py0 - upy + 1)


def upfirdn2d_adjoint(dy: jax.Array, f: np.ndarray | None, in_hw: tuple[int, int], up: IntPair = 1,
                      down: IntPair = 1, padding: IntPair = 0, flip_filter: bool = False,
                      gain: float = 1.0) -> jax.Array:
    """The vector-Jacobian product of ``upfirdn2d(x, f, up, down, padding, flip_filter, gain)`` for x of
    spatial size ``in_hw``, as NVIDIA computes it: upfirdn2d of ``dy`` with up and down swapped, the filter
    flipped and the `adjoint_padding` (polyphase again, where JAX's own transpose pads and adds the full
    image per tap)."""
    pad = adjoint_padding(f, in_hw, dy.shape[1:3], up, down, padding)
    return upfirdn2d(dy, f, up=down, down=up, padding=pad, flip_filter=not flip_filter, gain=gain)


def filter2d(x: jax.Array, f: np.ndarray | None, padding: IntPair = 0, flip_filter: bool = False,
             gain: float = 1.0) -> jax.Array:
    """Filter without resampling, padded so that the output has the input's size (plus ``padding``)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain)


def upsample2d(x: jax.Array, f: np.ndarray | None, up: IntPair = 2, padding: IntPair = 0,
               flip_filter: bool = False, gain: float = 1.0) -> jax.Array:
    """Upsample by ``up`` with filter ``f``, padded so that the output is ``up`` times the input."""
    upx, upy = parse_scaling(up)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=(upx, upy), padding=p, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(x: jax.Array, f: np.ndarray | None, down: IntPair = 2, padding: IntPair = 0,
                 flip_filter: bool = False, gain: float = 1.0) -> jax.Array:
    """Downsample by ``down`` with filter ``f``, padded so that the output is the input over ``down``."""
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2,
         py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=(downx, downy), padding=p, flip_filter=flip_filter, gain=gain)
