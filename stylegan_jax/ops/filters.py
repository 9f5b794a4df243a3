"""FIR filters for resampling: NVIDIA's ``setup_filter`` and the separable factoring used by the fast path."""

from __future__ import annotations

import numpy as np


def setup_filter(
    f: object = (1, 3, 3, 1),
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1.0,
    separable: bool | None = None,
) -> np.ndarray:
    """Prepare a FIR filter as NVIDIA's ``upfirdn2d.setup_filter`` does.

    Args:
        f: taps (1-D, outer product taken unless ``separable``), a 2-D [fh, fw] array, a scalar, or None.
        normalize: divide by the sum so that a constant signal keeps its magnitude.
        flip_filter: flip the taps.
        gain: overall signal gain; the taps are multiplied by ``gain ** (ndim / 2)``.
        separable: keep 1-D taps; default True only for 1-D filters of 8 or more taps.
    Returns:
        float32 array of shape [taps] (separable) or [fh, fw].
    """
    f = np.asarray(1 if f is None else f, dtype=np.float32)
    if f.ndim not in (0, 1, 2) or f.size == 0:
        raise ValueError(f"a FIR filter must be a scalar, 1-D or 2-D and non-empty, got shape {f.shape}")
    if f.ndim == 0:
        f = f[np.newaxis]
    if separable is None:
        separable = f.ndim == 1 and f.size >= 8
    if f.ndim == 1 and not separable:
        f = np.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError(f"cannot make a {'separable' if separable else '2-D'} filter from shape {f.shape}")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = np.flip(f, axis=tuple(range(f.ndim)))
    return (f * (gain ** (f.ndim / 2))).astype(np.float32)


def separable_factors(f: np.ndarray, rtol: float = 1e-6) -> tuple[np.ndarray, np.ndarray] | None:
    """Factor a 2-D filter [fh, fw] as outer(fy, fx) when it has rank one, else return None.

    A 1-D filter of taps t is the separable filter outer(t, t) and is returned as (t, t).
    """
    f = np.asarray(f, dtype=np.float64)
    if f.ndim == 1:
        return f, f
    u, s, vt = np.linalg.svd(f)
    if s[0] == 0 or (s.size > 1 and s[1] > rtol * s[0]):
        return None
    fy, fx = u[:, 0] * np.sqrt(s[0]), vt[0] * np.sqrt(s[0])
    if fy.sum() < 0:
        fy, fx = -fy, -fx
    return fy, fx
