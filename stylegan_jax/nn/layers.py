"""Equalised-learning-rate layers (Karras et al.): weights stored N(0, 1) / lr_multiplier, scaled at run time.

``equalized_lr=False`` makes the same layers plain (stripped StyleGAN2): weights initialised
N(0, msr_gain(activation) / sqrt(fan_in)) and used as they are, the activation without its runtime gain.

Parameter names and shapes are NVIDIA's (``weight`` [out, in] or [out, in, kh, kw], ``bias`` [out]), so
importing official weights is a rename.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.ops import activation_gain, bias_act, conv2d_resample, setup_filter

DEFAULT_FILTER = (1, 3, 3, 1)


def normal_init(scale: float = 1.0):
    """Initialiser drawing N(0, 1) * scale (float32)."""

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        return jax.random.normal(key, shape, dtype) * scale

    return init


def msr_gain(activation: str) -> float:
    """The He / MSR initialisation gain of a layer followed by ``activation`` (R3GAN's ``MSRInitializer``):
    sqrt(2 / (1 + 0.2^2)) for lrelu (slope 0.2), sqrt(2) for relu, 1 for linear; else ``activation_gain``."""
    return {"linear": 1.0, "relu": float(np.sqrt(2)), "lrelu": float(np.sqrt(2 / (1 + 0.2**2)))}.get(
        activation, activation_gain(activation))


def clamp_times(conv_clamp: float | None, gain: float) -> float | None:
    """NVIDIA's clamp of a layer called with ``gain``: conv_clamp * gain, or None."""
    return None if conv_clamp is None else conv_clamp * gain


class FullyConnected(nn.Module):
    """Dense layer with equalised learning rate: y = act(x @ (W * lr / sqrt(in)).T + b * lr).

    Input [N, in_features] -> output [N, out_features]; ``weight`` is [out_features, in_features], initialised
    N(0, 1) * weight_init / lr as NVIDIA's; ``bias`` [out_features] starts at ``bias_init`` / lr (a number or
    one value per output).
    """

    out_features: int
    bias: bool = True
    activation: str = "linear"
    lr_multiplier: float = 1.0
    bias_init: float | Sequence[float] = 0.0
    weight_init: float = 1.0
    equalized_lr: bool = True  # False: N(0, weight_init * msr_gain / sqrt(in)) weights, no runtime scales

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        in_features = x.shape[-1]
        if not self.equalized_lr:
            if self.lr_multiplier != 1:
                raise ValueError(f"lr_multiplier {self.lr_multiplier} needs equalized_lr")
            weight = self.param("weight", normal_init(self.weight_init * msr_gain(self.activation)
                                                      / np.sqrt(in_features)), (self.out_features, in_features))
            start = np.broadcast_to(np.asarray(self.bias_init, np.float32), (self.out_features,))
            b = self.param("bias", lambda key, shape: jnp.asarray(start), (self.out_features,)) if self.bias else None
            return bias_act(x @ weight.astype(x.dtype).T, None if b is None else b.astype(x.dtype),
                            act=self.activation, gain=1.0)
        weight = self.param("weight", normal_init(self.weight_init / self.lr_multiplier),
                            (self.out_features, in_features))
        w = weight.astype(x.dtype) * (self.lr_multiplier / np.sqrt(in_features))
        b = None
        if self.bias:
            start = np.broadcast_to(np.asarray(self.bias_init, np.float32) / self.lr_multiplier, (self.out_features,))
            b = self.param("bias", lambda key, shape: jnp.asarray(start), (self.out_features,))
            b = b.astype(x.dtype) * self.lr_multiplier
        return bias_act(x @ w.T, b, act=self.activation)


class Conv2d(nn.Module):
    """Convolution with equalised learning rate and optional FIR up/downsampling (NVIDIA's Conv2dLayer).

    Input [N, H, W, in] -> [N, H * up / down, W * up / down, out_channels]; ``weight`` is
    [out_channels, in, k, k]. Computes in the input's dtype; ``conv_clamp`` clamps the output.
    """

    out_channels: int
    kernel_size: int
    bias: bool = True
    activation: str = "linear"
    up: int = 1
    down: int = 1
    resample_filter: Sequence[int] = DEFAULT_FILTER
    conv_clamp: float | None = None
    equalized_lr: bool = True  # False: N(0, msr_gain / sqrt(fan_in)) weights used as they are, act gain 1

    @nn.compact
    def __call__(self, x: jax.Array, gain: float = 1.0) -> jax.Array:
        in_channels, k = x.shape[-1], self.kernel_size
        if self.equalized_lr:
            weight = self.param("weight", normal_init(), (self.out_channels, in_channels, k, k))
            w, act_gain = weight * (1 / np.sqrt(in_channels * k * k)), activation_gain(self.activation)
        else:
            init = normal_init(msr_gain(self.activation) / np.sqrt(in_channels * k * k))
            w, act_gain = self.param("weight", init, (self.out_channels, in_channels, k, k)), 1.0
        b = self.param("bias", nn.initializers.zeros, (self.out_channels,)) if self.bias else None
        x = conv2d_resample(x, w.astype(x.dtype), f=setup_filter(self.resample_filter), up=self.up,
                            down=self.down, padding=k // 2, flip_weight=(self.up == 1))
        return bias_act(x, b, act=self.activation, gain=act_gain * gain, clamp=clamp_times(self.conv_clamp, gain))
