"""StyleGAN3's filtered leaky ReLU (NVIDIA's ``torch_utils/ops/filtered_lrelu.py``) on NHWC images, and the
low-pass filters its layers design.

`filtered_lrelu`: add the bias, upsample ``up`` times with the FIR filter ``fu`` (gain up^2), apply the leaky
ReLU times ``gain`` clamped to +-``clamp``, filter with ``fd`` and keep every ``down``-th sample. Both filters run
on the polyphase `stylegan_jax.ops.upfirdn2d` (no dilated or transposed convolution; the inserted zeros are
never multiplied and the downsampling filter is evaluated at the kept positions only), so XLA fuses each into
elementwise passes. The gradient is NVIDIA's: each filter's adjoint is again a polyphase upfirdn2d (up and
down swapped, the filter flipped; `upfirdn2d_adjoint`) times the leaky ReLU's and the clamp's derivative,
rather than JAX's transpose of the slices (pads and adds over the upsampled image), which compiles several
times slower (figures: docs/performance.md); it is differentiable again. `filtered_lrelu_ref` computes the
same thing the plain way (zeros inserted, padded, one depthwise 2-D correlation per filter, then strided), as a
readable reference, with JAX's own gradient.

`design_lowpass_filter`: NVIDIA's ``SynthesisLayer.design_lowpass_filter``: a separable Kaiser-windowed
low-pass as ``scipy.signal.firwin`` designs it, or the radially symmetric jinc-Kaiser filter of config R.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal
import scipy.special

from stylegan_jax.ops.bias_act import bias_act
from stylegan_jax.ops.upfirdn2d import IntPair, filter_size, parse_padding, upfirdn2d, upfirdn2d_adjoint


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> np.ndarray | None:
    """NVIDIA's low-pass designs (float32): None for one tap (the identity); separable taps [numtaps] from
    ``scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)``; with ``radial``, the 2-D [numtaps, numtaps]
    filter ``J1(2 pi cutoff r) / (pi r)`` times an outer Kaiser window (beta from ``kaiser_atten(numtaps,
    width / (fs / 2))``), normalised to sum 1. ``cutoff`` and ``width`` are in the units of the sampling rate
    ``fs``."""
    if numtaps < 1:
        raise ValueError(f"a filter needs at least one tap, got {numtaps}")
    if numtaps == 1:
        return None
    if not radial:
        return scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs).astype(np.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f *= np.outer(window, window)
    return (f / np.sum(f)).astype(np.float32)


def output_size(in_size: tuple[int, int], fu: np.ndarray | None, fd: np.ndarray | None, up: int, down: int,
                padding: IntPair) -> tuple[int, int]:
    """(out_h, out_w) of `filtered_lrelu` for an input (in_h, in_w), as NVIDIA's shape arithmetic."""
    px0, px1, py0, py1 = parse_padding(padding)
    (fu_w, fu_h), (fd_w, fd_h) = filter_size(fu), filter_size(fd)
    in_h, in_w = in_size
    out_w = (in_w * up + px0 + px1 - (fu_w - 1) - (fd_w - 1) + (down - 1)) // down
    out_h = (in_h * up + py0 + py1 - (fu_h - 1) - (fd_h - 1) + (down - 1)) // down
    return out_h, out_w


def filtered_lrelu(x: jax.Array, fu: np.ndarray | None = None, fd: np.ndarray | None = None,
                   b: jax.Array | None = None, up: int = 1, down: int = 1, padding: IntPair = 0,
                   gain: float = float(np.sqrt(2)), slope: float = 0.2, clamp: float | None = None,
                   flip_filter: bool = False) -> jax.Array:
    """Bias, upsample, leaky ReLU, clamp, downsample, as NVIDIA's ``filtered_lrelu``.

    Args:
        x: [N, H, W, C] images.
        fu, fd: up- and downsampling FIR filters: separable taps [t], 2-D [fh, fw] or None (identity);
            concrete arrays (e.g. from `design_lowpass_filter`).
        b: bias [C] or None.
        up, down: integer factors.
        padding: with respect to the upsampled image: int, [px, py] or [px0, px1, py0, py1] (negative crops).
        gain: scale after the leaky ReLU's input (sqrt 2 by default); slope: the negative side's slope.
        clamp: clamp to +-clamp after the gain, None to disable.
        flip_filter: False = convolution, True = correlation.
    Returns:
        [N, `output_size`..., C] in ``x``'s dtype.
    """
    if x.ndim != 4:
        raise ValueError(f"filtered_lrelu expects NHWC images, got shape {x.shape}")
    if not (gain > 0 and slope >= 0 and (clamp is None or clamp >= 0)):  # NVIDIA's asserts
        raise ValueError(f"filtered_lrelu needs gain > 0, slope >= 0 and clamp >= 0 or None; got gain {gain}, "
                         f"slope {slope}, clamp {clamp}")
    b = jnp.zeros((x.shape[-1],), x.dtype) if b is None else b.astype(x.dtype)
    spec = (_FilterKey(fu), _FilterKey(fd), up, down, parse_padding(padding), float(gain), float(slope),
            None if clamp is None else float(clamp), flip_filter)
    return _filtered_lrelu(spec, x, b)


class _FilterKey:
    """A filter as a hashable static argument (compared by its taps)."""

    def __init__(self, f: np.ndarray | None) -> None:
        self.f = None if f is None else np.asarray(f, np.float32)
        self._key = None if f is None else (self.f.shape, self.f.tobytes())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _FilterKey) and self._key == other._key


#: The leaky ReLU's regions, recorded per upsampled sample for the gradient (NVIDIA's sign bytes).
NEGATIVE, POSITIVE, CLAMPED = 0, 1, 2


def _forward(spec, x, b):
    """(the output in ``x``'s dtype, int8 [N, up*H.., C]: each upsampled pre-activation's region, what the
    gradient needs), computed in float32 at least (NVIDIA's kernel computes half inputs in float and records
    the regions of the float values)."""
    fu, fd, up, down, padding, gain, slope, clamp, flip = spec
    work = jnp.promote_types(x.dtype, jnp.float32)
    u = upfirdn2d(x.astype(work) + b.astype(work), fu.f, up=up, padding=padding, gain=up**2, flip_filter=flip)
    a = bias_act(u, act="lrelu", alpha=slope, gain=gain)
    region = jnp.where(u >= 0, POSITIVE, NEGATIVE).astype(jnp.int8)
    if clamp is not None:  # the clamp passes no gradient where it acts
        region = jnp.where(jnp.abs(a) <= clamp, region, jnp.int8(CLAMPED))
        a = jnp.clip(a, -clamp, clamp)
    return upfirdn2d(a, fd.f, down=down, flip_filter=flip).astype(x.dtype), region


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _filtered_lrelu(spec, x, b):
    return _forward(spec, x, b)[0]


def _filtered_lrelu_fwd(spec, x, b):
    return _forward(spec, x, b)


def _filtered_lrelu_bwd(spec, region, dy):
    fu, fd, up, down, padding, gain, slope, clamp, flip = spec
    work = jnp.promote_types(dy.dtype, jnp.float32)  # as the forward pass, the result in dy's dtype
    da = upfirdn2d_adjoint(dy.astype(work), fd.f, region.shape[1:3], down=down, flip_filter=flip)
    slope_gain = jnp.select([region == POSITIVE, region == NEGATIVE], [gain, gain * slope], 0.0).astype(work)
    in_hw = ((region.shape[1] - padding[2] - padding[3] + filter_size(fu.f)[1] - 1) // up,
             (region.shape[2] - padding[0] - padding[1] + filter_size(fu.f)[0] - 1) // up)
    dx = upfirdn2d_adjoint(da * slope_gain, fu.f, in_hw, up=up, padding=padding, flip_filter=flip, gain=up**2)
    return dx.astype(dy.dtype), jnp.sum(dx, axis=(0, 1, 2)).astype(dy.dtype)


_filtered_lrelu.defvjp(_filtered_lrelu_fwd, _filtered_lrelu_bwd)


def _filter_2d(f: np.ndarray | None) -> np.ndarray:
    """Any filter as its 2-D taps [fh, fw] (separable taps t -> outer(t, t), None -> [[1]])."""
    if f is None:
        return np.ones((1, 1), np.float32)
    f = np.asarray(f, np.float32)
    return np.outer(f, f) if f.ndim == 1 else f


def _correlate_depthwise(x: jax.Array, taps: np.ndarray) -> jax.Array:
    """Valid 2-D correlation of every channel of [N, H, W, C] with the same taps [fh, fw]."""
    channels = x.shape[-1]
    kernel = jnp.broadcast_to(jnp.asarray(taps, x.dtype)[:, :, None, None], taps.shape + (1, channels))
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        feature_group_count=channels, precision=jax.lax.Precision.HIGHEST)


def filtered_lrelu_ref(x: jax.Array, fu: np.ndarray | None = None, fd: np.ndarray | None = None,
                       b: jax.Array | None = None, up: int = 1, down: int = 1, padding: IntPair = 0,
                       gain: float = float(np.sqrt(2)), slope: float = 0.2, clamp: float | None = None,
                       flip_filter: bool = False) -> jax.Array:
    """`filtered_lrelu` the plain way: zeros inserted, padded (negative pads crop), correlated with the
    (flipped, for a convolution) 2-D filters, strided. Same arguments and result."""
    px0, px1, py0, py1 = parse_padding(padding)
    n, h, w, c = x.shape
    dtype = x.dtype
    x = x.astype(jnp.promote_types(dtype, jnp.float32))  # half inputs computed in float32, as `filtered_lrelu`
    if b is not None:
        x = x + b.astype(dtype).astype(x.dtype)
    u = jnp.zeros((n, h, up, w, up, c), x.dtype).at[:, :, 0, :, 0].set(x).reshape(n, h * up, w * up, c)
    u = jax.lax.pad(u, jnp.zeros((), x.dtype), ((0, 0, 0), (py0, py1, 0), (px0, px1, 0), (0, 0, 0)))
    gu, gd = _filter_2d(fu) * up**2, _filter_2d(fd)
    if not flip_filter:
        gu, gd = gu[::-1, ::-1], gd[::-1, ::-1]
    y = _correlate_depthwise(u, np.ascontiguousarray(gu))
    y = jnp.where(y >= 0, y, y * slope) * gain
    if clamp is not None:
        y = jnp.clip(y, -clamp, clamp)
    return _correlate_depthwise(y, np.ascontiguousarray(gd))[:, ::down, ::down].astype(dtype)
