"""Fused bias + activation + gain + clamp, with NVIDIA's activation table (``torch_utils/ops/bias_act.py``).

XLA fuses the elementwise chain into the producer (usually a convolution), so this is the reference form
and the fast form at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class Activation:
    """An activation function with its default shape parameter ``alpha`` and output ``gain``."""

    func: Callable[[jax.Array, float], jax.Array]
    def_alpha: float
    def_gain: float


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0),
    "relu": Activation(lambda x, a: jax.nn.relu(x), 0.0, float(np.sqrt(2))),
    # the slope at 0 is alpha, as NVIDIA's CUDA kernel's gradient (`y > 0`) and torch's leaky_relu
    "lrelu": Activation(lambda x, a: jnp.where(x > 0, x, x * a), 0.2, float(np.sqrt(2))),
    "tanh": Activation(lambda x, a: jnp.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, a: jax.nn.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, a: jax.nn.elu(x), 0.0, 1.0),
    "selu": Activation(lambda x, a: jax.nn.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, a: jax.nn.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, a: jax.nn.sigmoid(x) * x, 0.0, float(np.sqrt(2))),
}


def activation_gain(act: str) -> float:
    """The default output gain of activation ``act`` (sqrt 2 for relu / lrelu / swish, else 1)."""
    return activation_spec(act).def_gain


def activation_spec(act: str) -> Activation:
    """Look up ``act`` in the activation table; an unknown name is a clear error."""
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[act]


def bias_act(
    x: jax.Array,
    b: jax.Array | None = None,
    axis: int = -1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> jax.Array:
    """Add bias ``b`` along ``axis``, apply ``act``, multiply by ``gain``, clamp to [-clamp, clamp].

    Args:
        x: activations of any shape; ``x.shape[axis] == b.shape[0]`` (the channel axis, last in NHWC).
        b: bias vector or None; rounded to ``x.dtype``.
        act: a key of ``ACTIVATIONS``.
        alpha: shape parameter (the lrelu slope), default from the table (0.2 for lrelu).
        gain: output scale, default from the table (sqrt 2 for lrelu).
        clamp: clamp the output to +-clamp, None to disable (NaN stays NaN).
    Returns:
        An array of ``x``'s shape and dtype. Half-precision ``x`` (and the bias, cast to it as NVIDIA's layers
        do) is computed in float32 and the result rounded once, as NVIDIA's CUDA kernel does.
    """
    spec = activation_spec(act)
    alpha = spec.def_alpha if alpha is None else float(alpha)
    gain = spec.def_gain if gain is None else float(gain)
    if clamp is not None and clamp < 0:
        raise ValueError(f"clamp must be >= 0 or None, got {clamp}")
    dtype = x.dtype
    x = x.astype(jnp.promote_types(dtype, jnp.float32))
    if b is not None:
        axis = axis % x.ndim
        if b.ndim != 1 or b.shape[0] != x.shape[axis]:
            raise ValueError(f"bias of shape {b.shape} does not match axis {axis} of x {x.shape}")
        x = x + b.astype(dtype).astype(x.dtype).reshape([-1 if i == axis else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * jnp.asarray(gain, x.dtype)
    if clamp is not None:  # gradient 0 from |x| = clamp on, as NVIDIA's CUDA kernel (jnp.clip's is 0.5 there)
        x = jnp.where(jnp.abs(x) < clamp, x, jnp.sign(x) * jnp.asarray(clamp, x.dtype))
    return x.astype(dtype)
