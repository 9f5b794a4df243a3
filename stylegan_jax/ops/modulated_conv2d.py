"""StyleGAN2's modulated convolution (NVIDIA's ``modulated_conv2d``) on NHWC images, in two forms.

- ``fused=False`` (activation scaling): x * styles, one convolution with the shared weights, output * demod.
- ``fused=True`` (per-sample weights): weights * styles * demod, one grouped convolution with the batch as
  groups.

Both give the same result (to float rounding). Activation scaling is the default on every backend
(``fused=None``), because XLA's grouped convolution is slower on CPU and GPU, above all its gradient
(figures: docs/performance.md, "Modulated convolution").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.ops.conv2d_resample import conv2d_resample
from stylegan_jax.ops.upfirdn2d import IntPair

DEMOD_EPS = 1e-8


def default_fused() -> bool:
    """The form ``fused=None`` selects: False (activation scaling) on every backend (see module docstring)."""
    return False


def modulated_conv2d(
    x: jax.Array,
    weight: jax.Array,
    styles: jax.Array,
    demodulate: bool = True,
    up: int = 1,
    down: int = 1,
    padding: IntPair = 0,
    resample_filter: np.ndarray | None = None,
    flip_weight: bool = True,
    fused: bool | None = None,
) -> jax.Array:
    """Modulate ``weight`` by per-sample ``styles``, optionally demodulate, and convolve.

    Args:
        x: [N, H, W, in_channels] activations.
        weight: [out_channels, in_channels, kh, kw] shared weights (NVIDIA's layout).
        styles: [N, in_channels] modulation coefficients.
        demodulate: scale each output channel to unit expected variance (eps 1e-8).
        up, down, padding, resample_filter, flip_weight: as ``conv2d_resample``.
        fused: True = grouped convolution with per-sample weights, False = activation scaling,
            None = ``default_fused()``.
    Returns:
        [N, H', W', out_channels] in ``x``'s dtype.
    """
    batch, in_channels = styles.shape
    out_channels, w_in, kh, kw = weight.shape
    if w_in != in_channels or x.shape[0] != batch or x.shape[-1] != in_channels:
        raise ValueError(
            f"modulated_conv2d: x {x.shape}, weight {weight.shape} and styles {styles.shape} disagree"
        )
    if fused is None:
        fused = default_fused()
    weight = weight.astype(jnp.float32)
    styles = styles.astype(jnp.float32)
    if jnp.finfo(x.dtype).bits < 32 and demodulate:
        # Pre-normalise (as NVIDIA does for fp16) so that reduced precision cannot overflow; demodulation
        # makes the result independent of these scales but for its eps. NVIDIA rescales for fp16 only: not
        # for float32 or float64.
        weight = weight * (1 / np.sqrt(in_channels * kh * kw) / jnp.max(jnp.abs(weight), axis=(1, 2, 3),
                                                                        keepdims=True))
        styles = styles / jnp.max(jnp.abs(styles), axis=1, keepdims=True)

    dcoefs = None
    if demodulate:
        # sum_{i,k} (weight[o,i,k] * styles[n,i])^2 = sum_i styles[n,i]^2 * sum_k weight[o,i,k]^2
        dcoefs = jax.lax.rsqrt(jnp.square(styles) @ jnp.sum(jnp.square(weight), axis=(2, 3)).T + DEMOD_EPS)

    conv = dict(f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight)
    if not fused:
        x = x * styles.astype(x.dtype)[:, None, None, :]
        x = conv2d_resample(x, weight.astype(x.dtype), **conv)
        if demodulate:
            x = x * dcoefs.astype(x.dtype)[:, None, None, :]
        return x

    w = weight[None] * styles[:, None, :, None, None]  # [N, O, I, kh, kw]
    if demodulate:
        w = w * dcoefs[:, :, None, None, None]
    _, height, width, _ = x.shape
    xg = jnp.transpose(x, (1, 2, 0, 3)).reshape(1, height, width, batch * in_channels)
    y = conv2d_resample(xg, w.reshape(batch * out_channels, in_channels, kh, kw).astype(x.dtype),
                        groups=batch, **conv)
    _, oh, ow, _ = y.shape
    return jnp.transpose(y.reshape(oh, ow, batch, out_channels), (2, 0, 1, 3))
