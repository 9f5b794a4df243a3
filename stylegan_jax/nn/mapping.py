"""StyleGAN2's mapping network z, c -> w (NVIDIA's MappingNetwork), and the tail every mapping network ends in:
the tracked average ``w_avg``, the broadcast to ws and the truncation trick."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from stylegan_jax.errors import ConfigError
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


def ws_from_w(module: nn.Module, w: jax.Array, num_ws: int, w_avg_beta: float, truncation_psi: float | jax.Array,
              truncation_cutoff: int | None, update_emas: bool) -> jax.Array:
    """The mapping networks' tail, called from ``module``'s compact method: w [N, w_dim] -> ws [N, num_ws, w_dim].

    ``module``'s buffer ``w_avg`` [w_dim] (collection ``buffers``) tracks the mean w with decay ``w_avg_beta``
    when ``update_emas`` (under ``mutable=['buffers']``); unless ``truncation_psi`` is the constant 1 the ws
    are truncated towards it (`truncate`).
    """
    w_avg = module.variable("buffers", "w_avg", jnp.zeros, (w.shape[1],), jnp.float32)
    if update_emas:
        batch_mean = jax.lax.stop_gradient(jnp.mean(w, axis=0))
        w_avg.value = batch_mean + w_avg_beta * (w_avg.value - batch_mean)
    ws = jnp.broadcast_to(w[:, None, :], (w.shape[0], num_ws, w.shape[1]))
    if not (isinstance(truncation_psi, int | float) and truncation_psi == 1):
        ws = truncate(ws, w_avg.value, truncation_psi, truncation_cutoff)
    return ws


class MappingNetwork(nn.Module):
    """z [N, z_dim], c [N, c_dim] -> w [N, num_ws, w_dim] (or [N, w_dim] when ``num_ws`` is None).

    ``w_avg`` (collection ``buffers``) tracks the mean w with decay ``w_avg_beta`` when called with
    ``update_emas=True`` and ``mutable=['buffers']`` (`ws_from_w`); without ``num_ws`` or ``w_avg_beta`` the
    network returns w as is.
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
        if not parts:
            raise ConfigError(f"the mapping network needs z (z_dim > 0) or labels (c_dim > 0), got z_dim {self.z_dim} "
                              f"and c_dim {self.c_dim} (--config.G.z_dim)")
        x = jnp.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        if not self.num_layers and x.shape[1] != self.w_dim:  # NVIDIA's fails later, on the ws' shape
            passed = " and the label embedding" if self.c_dim else ""
            raise ConfigError(f"--map-depth / --config.G.mapping_layers 0 passes z{passed} through as w: "
                              f"{x.shape[1]} features, not w_dim {self.w_dim}; give the mapping at least one layer")
        for idx in range(self.num_layers):
            features = self.w_dim if idx == self.num_layers - 1 else layer_features
            x = FullyConnected(features, activation=self.activation, lr_multiplier=self.lr_multiplier,
                               name=f"fc{idx}")(x)

        if self.num_ws is None or self.w_avg_beta is None:
            return x
        return ws_from_w(self, x, self.num_ws, self.w_avg_beta, truncation_psi, truncation_cutoff, update_emas)
