"""StyleGAN2's mapping network z, c -> w (NVIDIA's MappingNetwork), with the tracked average ``w_avg``."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from stylegan_jax.nn.layers import FullyConnected


def normalize_2nd_moment(x: jax.Array, axis: int = 1, eps: float = 1e-8) -> jax.Array:
    """Scale ``x`` to unit mean square along ``axis``."""
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=axis, keepdims=True) + eps)


def truncate(ws: jax.Array, w_avg: jax.Array, psi: float | jax.Array, cutoff: int | None = None) -> jax.Array:
    """The truncation trick: w_avg + psi * (w - w_avg) on the first ``cutoff`` ws (all when None).

    ``ws`` is [N, num_ws, w_dim] or [N, w_dim]; ``w_avg`` is [w_dim].
    """
    truncated = w_avg + psi * (ws - w_avg)
    if cutoff is None or ws.ndim == 2:
        return truncated
    layer = jnp.arange(ws.shape[1])[None, :, None]
    return jnp.where(layer < cutoff, truncated, ws)


class MappingNetwork(nn.Module):
    """z [N, z_dim], c [N, c_dim] -> w [N, num_ws, w_dim] (or [N, w_dim] when ``num_ws`` is None).

    ``w_avg`` (collection ``buffers``) tracks the mean w with decay ``w_avg_beta`` when called with
    ``update_emas=True`` and ``mutable=['buffers']``.
    """

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int | None
    num_layers: int = 8
    embed_features: int | None = None
    layer_features: int | None = None
    activation: str = "lrelu"
    lr_multiplier: float = 0.01
    w_avg_beta: float | None = 0.995

    @nn.compact
    def __call__(
        self,
        z: jax.Array | None,
        c: jax.Array | None,
        truncation_psi: float | jax.Array = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> jax.Array:
        embed_features = (self.w_dim if self.embed_features is None else self.embed_features) if self.c_dim else 0
        layer_features = self.w_dim if self.layer_features is None else self.layer_features
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.astype(jnp.float32)))
        if self.c_dim > 0:
            embedded = FullyConnected(embed_features, name="embed")(c.astype(jnp.float32))
            parts.append(normalize_2nd_moment(embedded))
        x = jnp.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        for idx in range(self.num_layers):
            features = self.w_dim if idx == self.num_layers - 1 else layer_features
            x = FullyConnected(features, activation=self.activation, lr_multiplier=self.lr_multiplier,
                               name=f"fc{idx}")(x)

        if self.num_ws is None or self.w_avg_beta is None:
            return x
        w_avg = self.variable("buffers", "w_avg", jnp.zeros, (self.w_dim,), jnp.float32)
        if update_emas:
            batch_mean = jax.lax.stop_gradient(jnp.mean(x, axis=0))
            w_avg.value = batch_mean + self.w_avg_beta * (w_avg.value - batch_mean)
        x = jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, self.w_dim))
        if not (isinstance(truncation_psi, (int, float)) and truncation_psi == 1):
            x = truncate(x, w_avg.value, truncation_psi, truncation_cutoff)
        return x
