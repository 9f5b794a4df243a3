"""2-D convolution with optional FIR up/downsampling: NVIDIA's ``conv2d_resample`` on NHWC images.

Semantics (NVIDIA's): with the padding adjusted for the filter,

    up:   y = conv(upfirdn2d(x, f, up=up, padding=p, gain=up**2), w)
    down: y = upfirdn2d(conv(pad(x, p), w), f, down=down)

The fast forms here never multiply inserted zeros and never compute discarded outputs, and they use only
stride-1 VALID convolutions, slices, pads and reshapes, whose gradients XLA computes well (no
``lhs_dilation`` / ``conv_transpose``, whose gradients are pathologically slow in XLA):

- up, k x k: the convolution and the FIR commute, so the zero-upsampled convolution (a transposed
  convolution) is computed first, as ``up**2`` small convolutions with the sub-kernels ``w[::up, ::up]``
  shifted per phase (exactly the k*k multiply-adds per input pixel of a transposed convolution), the phases
  interleaved (depth-to-space), then the FIR filter at full resolution as shifts-and-adds.
- down, k x k: FIR at full resolution, then the strided convolution as a sum over the ``down**2`` input
  phases (space-to-depth) of stride-1 convolutions with the sub-kernels ``w[p::down, q::down]``.
- 1 x 1 kernels: the convolution at the low resolution, the FIR on the other side (as NVIDIA does).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.ops import polyphase
from stylegan_jax.ops.upfirdn2d import IntPair, filter_size, parse_padding, upfirdn2d

_DIMS = ("NHWC", "OIHW", "NHWC")


def _correlate(x: jax.Array, w: jax.Array, groups: int, padding: tuple[int, int]) -> jax.Array:
    py, px = padding
    return jax.lax.conv_general_dilated(
        x, w, window_strides=(1, 1), padding=((py, py), (px, px)), dimension_numbers=_DIMS,
        feature_group_count=groups,
    )


def _weight_grad_xla(x: jax.Array, w: jax.Array, groups: int, padding: tuple[int, int],
                     dy: jax.Array) -> jax.Array:
    """d(sum(dy * correlate(x, w)))/dw by XLA's own transpose rule (its fast path in a first-order backward
    of an ungrouped convolution)."""
    return jax.vjp(lambda w: _correlate(x, w, groups, padding), w)[1](dy)[0]


def _weight_grad_taps(x: jax.Array, w: jax.Array, groups: int, padding: tuple[int, int],
                      dy: jax.Array) -> jax.Array:
    """The same weight gradient as one matmul per kernel tap and group (contracting batch and pixels).

    Used where XLA's own rule is far off XLA:CPU's fast path (docs/performance.md, "Convolution gradient
    rule"): for grouped convolutions (XLA lowers their weight gradient to a ``batch_group_count``
    convolution, about 200x the forward's time) and for the input-gradient correlations that the
    second-order regularisers differentiate (there XLA's simplifier swaps the operands of its weight-gradient
    convolution: the cotangent becomes the "kernel", with ``rhs_reversal``)."""
    py, px = padding
    n, oh, ow, out_channels = dy.shape
    _, in_per_group, kh, kw = w.shape
    xp = jnp.pad(x, ((0, 0), (py, py), (px, px), (0, 0)))
    dyg = dy.reshape(n, oh, ow, groups, out_channels // groups)
    taps = [
        jnp.einsum("nyxgi,nyxgo->goi", xp[:, i:i + oh, j:j + ow].reshape(n, oh, ow, groups, in_per_group), dyg)
        for i in range(kh) for j in range(kw)
    ]
    return jnp.stack(taps, axis=-1).reshape(w.shape)


def _transpose_groups(w: jax.Array, groups: int) -> jax.Array:
    """OIHW weights [out, in / groups, kh, kw] of a grouped correlation -> the flipped weights
    [in, out / groups, kh, kw] of its input gradient (each group's in and out swapped)."""
    out_channels, in_per_group, kh, kw = w.shape
    wg = jnp.flip(w, axis=(2, 3)).reshape(groups, out_channels // groups, in_per_group, kh, kw)
    return wg.transpose(0, 2, 1, 3, 4).reshape(groups * in_per_group, out_channels // groups, kh, kw)


def _forward_form_correlation(weight_grad):
    """A stride-1 correlation (x NHWC, w OIHW, feature groups, symmetric padding) whose input gradient is
    again a forward-form correlation (``_input_grad_correlation``) and whose weight gradient is
    ``weight_grad``.

    Differentiating the input gradient (R1, path length) then yields the same well-optimised convolutions as
    a first-order backward: XLA's own transpose rule gives reversed-kernel convolutions whose weight
    gradients fall off XLA:CPU's fast path (docs/performance.md, "Convolution gradient rule")."""

    @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
    def correlate(x: jax.Array, w: jax.Array, groups: int, padding: tuple[int, int]) -> jax.Array:
        return _correlate(x, w, groups, padding)

    def fwd(x, w, groups, padding):
        return _correlate(x, w, groups, padding), (x, w)

    def bwd(groups, padding, residuals, dy):
        x, w = residuals
        py, px = padding
        _, _, kh, kw = w.shape
        dx = _input_grad_correlation(dy, _transpose_groups(w, groups), groups, (kh - 1 - py, kw - 1 - px))
        return dx, weight_grad(x, w, groups, padding, dy)

    correlate.defvjp(fwd, bwd)
    return correlate


def _xla_weight_grad_is_fast(w_shape: tuple[int, ...], groups: int, padding: tuple[int, int]) -> bool:
    """Whether XLA:CPU runs the weight gradient of this correlation on its fast path: ungrouped weights of more
    than one tap padded at most to 'same'. With more padding (StyleGAN3's k - 1: an output larger than the
    input) it lowers to a naive loop, 20x slower than the per-tap matmuls. A 1x1 kernel's gradient is one
    matmul; XLA's convolution for it first transposes the input to (channels, pixels, batch) order, and inside
    a training step XLA fuses the input's producer into that transpose, recomputed per element in the
    transposed order (StyleGAN3-R's down filters: 0.5 s per layer, G's step 3x slower; docs/performance.md,
    "Convolution gradient rule")."""
    _, _, kh, kw = w_shape
    return groups == 1 and kh * kw > 1 and padding[0] <= (kh - 1) // 2 and padding[1] <= (kw - 1) // 2


@functools.cache
def _weight_grad_first_order(groups: int, padding: tuple[int, int]):
    """The first-order weight gradient ``(x, w, dy) -> dw`` (``w`` for its shape): XLA's rule where it is
    fast (`_xla_weight_grad_is_fast`), the per-tap matmuls otherwise; under ``vmap`` over the training step's
    minibatches, the per-tap matmuls with the minibatch as a matmul batch dimension.

    XLA's rule under ``vmap`` becomes a convolution grouped over the minibatches, which XLA's SPMD
    partitioner mis-partitions when the minibatch axis is sharded (D's Adam moments 38% off on 4 devices)
    and which XLA:CPU runs off its fast path; a batched matmul partitions and runs as any other. JAX cannot
    differentiate a custom batching rule in reverse mode, so the derivative of ``dw`` (bilinear in ``x`` and
    ``dy``) is given as per-tap matmuls: R1 and path length trace through it (unused, then removed)."""

    def taps(x: jax.Array, w: jax.Array, dy: jax.Array) -> jax.Array:
        return _weight_grad_taps(x, w, groups, padding, dy)

    @jax.custom_batching.custom_vmap
    def batching_aware(x: jax.Array, w: jax.Array, dy: jax.Array) -> jax.Array:
        return (_weight_grad_xla(x, w, groups, padding, dy) if _xla_weight_grad_is_fast(w.shape, groups, padding)
                else taps(x, w, dy))

    @batching_aware.def_vmap
    def per_minibatch(axis_size: int, in_batched: list[bool], x: jax.Array, w: jax.Array, dy: jax.Array):
        if axis_size == 1 and in_batched == [True, False, True]:  # one minibatch: XLA's fast path
            return batching_aware(x[0], w, dy[0])[None], True
        return jax.vmap(taps, in_axes=[0 if batched else None for batched in in_batched])(x, w, dy), True

    @jax.custom_jvp
    def weight_grad(x: jax.Array, w: jax.Array, dy: jax.Array) -> jax.Array:
        return batching_aware(x, w, dy)

    @weight_grad.defjvp
    def weight_grad_jvp(primals, tangents):
        (x, w, dy), (dx, _, ddy) = primals, tangents
        return weight_grad(x, w, dy), taps(dx, w, dy) + taps(x, w, ddy)

    return weight_grad


def _first_order_weight_grad(x: jax.Array, w: jax.Array, groups: int, padding: tuple[int, int],
                             dy: jax.Array) -> jax.Array:
    return _weight_grad_first_order(groups, padding)(x, w, dy)


_correlate_forward_form = _forward_form_correlation(_first_order_weight_grad)
_input_grad_correlation = _forward_form_correlation(_weight_grad_taps)


#: ``conv2d``'s gradient rule while a computation is traced: ``'xla'`` (XLA's own transpose rule, the default)
#: or ``'forward'`` (`_forward_form_correlation`). Set only through `gradient_rule`.
_RULE: contextvars.ContextVar[str] = contextvars.ContextVar("conv2d_gradient_rule", default="xla")


@contextlib.contextmanager
def gradient_rule(rule: str) -> Iterator[None]:
    """Trace ``conv2d`` inside the block with gradient rule ``rule``, as NVIDIA's training loop scopes
    ``conv2d_gradfix``. ``'forward'`` differentiates every convolution through
    `_forward_form_correlation` (second-order gradients as fast forward convolutions on CPU; numbers in
    docs/performance.md), ``'xla'`` through XLA's own rule. The caller chooses (the trainer resolves
    ``cfg.conv_grad`` from its mesh and backend): both rules give the same gradients on any number of
    devices and minibatches; ``'forward'`` is slower on GPU (cuDNN recognises XLA's own backward
    convolutions)."""
    if rule not in ("xla", "forward"):
        raise ValueError(f"conv2d gradient rule: expected 'xla' or 'forward', got {rule!r}")
    token = _RULE.set(rule)
    try:
        yield
    finally:
        _RULE.reset(token)


def conv2d(x: jax.Array, w: jax.Array, groups: int = 1, padding: tuple[int, int] = (0, 0)) -> jax.Array:
    """Stride-1 correlation of NHWC ``x`` with OIHW ``w`` (torch's conv2d), symmetric ``padding`` (py, px);
    differentiated by the `gradient_rule` in force when traced."""
    w = w.astype(x.dtype)
    if _RULE.get() == "forward":
        return _correlate_forward_form(x, w, groups, tuple(padding))
    return _correlate(x, w, groups, padding)


def _conv_up(x: jax.Array, w: jax.Array, up: int, pads: tuple[int, int, int, int], groups: int) -> jax.Array:
    """Correlate the ``up``-fold zero-upsampled, padded ``x`` with ``w``, computed per output phase.

    ``pads`` = (px0, px1, py0, py1) with respect to the upsampled image.
    """
    _, _, kh, kw = w.shape
    px0, px1, py0, py1 = pads
    plan_y = polyphase.plan_up(x.shape[1], up, py0, py1, kh)
    plan_x = polyphase.plan_up(x.shape[2], up, px0, px1, kw)
    xw = polyphase.window(polyphase.window(x, 1, plan_y.lo, plan_y.hi), 2, plan_x.lo, plan_x.hi)
    out_channels = w.shape[0]
    rows = []
    for ph_y in plan_y.phases:
        cols = []
        for ph_x in plan_x.phases:
            if ph_y.count == 0 or ph_x.count == 0:
                cols.append(jnp.zeros((x.shape[0], plan_y.phase_len, plan_x.phase_len, out_channels), x.dtype))
                continue
            sub = w[:, :, ph_y.first :: up, ph_x.first :: up][:, :, : ph_y.count, : ph_x.count]
            xs = xw[:, ph_y.start : ph_y.start + plan_y.phase_len + ph_y.count - 1,
                    ph_x.start : ph_x.start + plan_x.phase_len + ph_x.count - 1]
            cols.append(conv2d(xs, sub, groups))
        rows.append(polyphase.interleave_phases(cols, 2, plan_x.out_len))
    return polyphase.interleave_phases(rows, 1, plan_y.out_len)


def _conv_down(x: jax.Array, w: jax.Array, down: int, groups: int) -> jax.Array:
    """Correlate ``x`` with ``w`` (no padding) keeping every ``down``-th output, as a sum over input phases."""
    _, _, kh, kw = w.shape
    plan_y = polyphase.plan_down(x.shape[1], down, 0, 0, kh)
    plan_x = polyphase.plan_down(x.shape[2], down, 0, 0, kw)
    xw = polyphase.window(polyphase.window(x, 1, plan_y.lo, plan_y.hi), 2, plan_x.lo, plan_x.hi)
    xs = polyphase.split_phases(polyphase.split_phases(xw, 2, down), 1, down)  # [N, qh, down, qw, down, C]
    out = None
    for ph_y, ph_x in itertools.product(plan_y.phases, plan_x.phases):
        if ph_y.count == 0 or ph_x.count == 0:
            continue
        sub = w[:, :, ph_y.first :: down, ph_x.first :: down]
        xp = xs[:, : plan_y.out_len + ph_y.count - 1, ph_y.first, : plan_x.out_len + ph_x.count - 1, ph_x.first]
        term = conv2d(xp, sub, groups)
        out = term if out is None else out + term
    return out


def conv2d_resample(
    x: jax.Array,
    w: jax.Array,
    f: np.ndarray | None = None,
    up: int = 1,
    down: int = 1,
    padding: IntPair = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
) -> jax.Array:
    """2-D convolution with optional up/downsampling; padding applied once, at the start.

    Args:
        x: [N, H, W, in_channels] images.
        w: [out_channels, in_channels // groups, kh, kw] weights (NVIDIA's / torch's layout).
        f: FIR filter from ``setup_filter`` (concrete), used when resampling; None = identity.
        up, down: integer factors (both > 1: upsample, convolve, downsample, as NVIDIA's).
        padding: with respect to the upsampled image: int, [px, py] or [px0, px1, py0, py1].
        groups: feature groups.
        flip_weight: True = correlation (torch's conv2d), False = convolution.
        flip_filter: False = convolution, True = correlation, for ``f``.
    Returns:
        [N, H', W', out_channels] in ``x``'s dtype.
    """
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d_resample expects NHWC x and OIHW w, got {x.shape} and {w.shape}")
    if not (isinstance(up, int) and isinstance(down, int) and up >= 1 and down >= 1):
        raise ValueError(f"up and down must be integers >= 1, got {up}, {down}")
    _, _, kh, kw = w.shape
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)
    if up > 1:
        px0, px1, py0, py1 = (px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2,
                              py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2)
    if down > 1:
        px0, px1, py0, py1 = (px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2,
                              py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2)
    wc = w if flip_weight else jnp.flip(w, axis=(2, 3))  # correlation kernel

    if kh == 1 and kw == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=(px0, px1, py0, py1), flip_filter=flip_filter)
        return conv2d(x, wc, groups)
    if kh == 1 and kw == 1 and up > 1 and down == 1:
        x = conv2d(x, wc, groups)
        return upfirdn2d(x, f, up=up, padding=(px0, px1, py0, py1), gain=up**2, flip_filter=flip_filter)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=(px0, px1, py0, py1), flip_filter=flip_filter)
        return _conv_down(x, wc, down, groups)
    if up > 1:
        # conv then FIR: pad for the FIR's taps so that its VALID pass yields the reference's size.
        x = _conv_up(x, wc, up, (px0, px1, py0, py1), groups)
        x = upfirdn2d(x, f, gain=up**2, flip_filter=flip_filter)
        # both (no network does): then FIR-downsample without padding, as NVIDIA's
        return x if down == 1 else upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    polyphase.output_length(x.shape[1], 1, 1, py0, py1, kh)  # a clear error where no output would remain
    polyphase.output_length(x.shape[2], 1, 1, px0, px1, kw)
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return conv2d(x, wc, groups, (py0, px0))
    x = upfirdn2d(x, None, padding=(px0, px1, py0, py1))
    return conv2d(x, wc, groups)
