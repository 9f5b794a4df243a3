"""DCGAN (Radford et al. 2016) and its class-conditional form (Mirza & Osindero 2014): the first rung of the
lineage.

G: z [N, z_dim] (with a label embedding concatenated when conditional) -> dense to 4x4 -> per doubling of
resolution a 2x upsampling (nearest + 3x3 conv, or a 4x4 transposed conv with stride 2) -> batch norm ->
ReLU; the last layer makes the image channels and ends in tanh. D mirrors it: 4x4 convs with stride 2,
batch norm from the second layer on, leaky ReLU 0.2, a dense logit on the 4x4 features; labels enter D by
projection (Miyato & Koyama 2018) or by concatenation as constant image channels.

Widths follow NVIDIA's rule, ``min(channel_base // res, channel_max)`` at resolution ``res``: with
channel_base 1024 and channel_max 256 that is 256 at 4x4, 128 at 8x8, 64 at 16x16, the small generator of
the introductory text (a 100-d noise vector, dense to 256x4x4, convs 256 -> 128 -> 64 -> image channels).

Batch norm under data parallelism: statistics are those of one minibatch (one device's ``batch_gpu``
samples), as PyTorch's DistributedDataParallel without SyncBatchNorm computes them, so a step does not
depend on the device count. G keeps running averages in the ``buffers`` collection (used at inference:
grids, ``generate``); the training step sets them to the mean over the K minibatches of each minibatch's
update. D always normalises with the statistics of the batch it sees (it is never run for inference), so
it has no buffers.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from stylegan_jax.errors import ConfigError
from stylegan_jax.models.registry import Family, register
from stylegan_jax.nn.resolution import channels_per_resolution, log2_resolution


def widths(img_resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """Channels at each resolution 4 .. img_resolution / 2 (img_resolution a power of two >= 8):
    min(channel_base // res, channel_max)."""
    log2_img = log2_resolution(img_resolution, minimum=8, name="DCGAN resolution")
    return channels_per_resolution([2**i for i in range(2, log2_img)], channel_base, channel_max)


class BatchNorm(nn.Module):
    """Batch norm over N, H, W with learned scale and shift (eps 1e-5). ``track``: keep running averages in
    ``buffers`` (momentum 0.9 per update, PyTorch's 0.1) and use them when ``train`` is False. The batch is
    normalised by its biased variance; the running variance averages the unbiased one (x n / (n - 1), n the
    values per channel), as PyTorch's ``BatchNorm2d`` and Torch7's, DCGAN's own, update it."""

    track: bool = True
    momentum: float = 0.9
    eps: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        axes = tuple(range(x.ndim - 1))
        c = x.shape[-1]
        if self.track:
            ra_mean = self.variable("buffers", "mean", jnp.zeros, (c,), jnp.float32)
            ra_var = self.variable("buffers", "var", jnp.ones, (c,), jnp.float32)
        if train or not self.track:
            mean, var = jnp.mean(x, axes), jnp.var(x, axes)
            if self.track and train and not self.is_initializing():
                ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
                n = x.size // c
                ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var * (n / max(n - 1, 1))
        else:
            mean, var = ra_mean.value, ra_var.value
        scale = self.param("scale", nn.initializers.ones, (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        return (x - mean) * jax.lax.rsqrt(var + self.eps) * scale + bias


def _norm(kind: str, track: bool):
    """'batch' -> BatchNorm, 'layer' -> LayerNorm over H, W, C (WGAN-GP's critic), 'none' -> identity."""
    if kind == "batch":
        return lambda x, train: BatchNorm(track=track)(x, train)
    if kind == "layer":
        return lambda x, train: nn.LayerNorm(reduction_axes=(1, 2, 3), feature_axes=(1, 2, 3))(x)
    if kind == "none":
        return lambda x, train: x
    raise ConfigError(f"DCGAN norm must be 'batch', 'layer' or 'none', got {kind!r}")


_INIT = nn.initializers.normal(0.02)  # DCGAN's N(0, 0.02) weights


class Generator(nn.Module):
    """z [N, z_dim], c [N, c_dim] -> images [N, img_resolution, img_resolution, img_channels] in (-1, 1).

    ``train``: batch statistics (and, under ``mutable=['buffers']``, updated running averages); otherwise
    the running averages. ``resolution``, ``alpha``, ``noise_mode`` and truncation are accepted for the
    common interface and do nothing (DCGAN neither grows nor has noise inputs or a W space).
    """

    z_dim: int
    c_dim: int
    img_resolution: int
    img_channels: int
    channel_base: int = 1024
    channel_max: int = 256
    upsample: str = "nearest"  # or 'transposed'
    norm: str = "batch"
    embed_dim: int = 32  # label embedding concatenated to z (cGAN)


    @nn.compact
    def __call__(self, z: jax.Array, c: jax.Array, *, train: bool = False, resolution: int | None = None,
                 alpha: float | jax.Array = 1.0, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                 noise_mode: str = "random") -> jax.Array:
        del resolution, alpha, truncation_psi, truncation_cutoff, noise_mode
        ch = widths(self.img_resolution, self.channel_base, self.channel_max)
        norm = _norm(self.norm, track=True)
        x = z
        if self.c_dim:
            x = jnp.concatenate([z, nn.Dense(self.embed_dim, use_bias=False, kernel_init=_INIT, name="embed")(c)], 1)
        bias = self.norm == "none"  # a bias before a normalisation does nothing (its gradient is only noise)
        x = nn.Dense(4 * 4 * ch[4], use_bias=bias, kernel_init=_INIT, name="fc")(x).reshape(-1, 4, 4, ch[4])
        x = nn.relu(norm(x, train))
        for res in [r * 2 for r in ch]:
            out, last = ch.get(res, self.img_channels), res == self.img_resolution
            conv = dict(use_bias=bias or last, kernel_init=_INIT, name=f"b{res}")
            if self.upsample == "transposed":
                x = nn.ConvTranspose(out, (4, 4), (2, 2), padding="SAME", **conv)(x)
            elif self.upsample == "nearest":
                x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
                x = nn.Conv(out, (3, 3), padding="SAME", **conv)(x)
            else:
                raise ConfigError(f"DCGAN upsample must be 'nearest' or 'transposed', got {self.upsample!r}")
            x = jnp.tanh(x) if last else nn.relu(norm(x, train))
        return x


class Discriminator(nn.Module):
    """images [N, img_resolution, img_resolution, img_channels], c [N, c_dim] -> logits [N, 1].

    ``conditioning``: 'projection' (logit + <embed(c), features>) or 'concat' (c as constant input
    channels). ``alpha`` is accepted for the common interface and does nothing.
    """

    c_dim: int
    img_resolution: int
    img_channels: int
    channel_base: int = 1024
    channel_max: int = 256
    norm: str = "batch"
    conditioning: str = "projection"

    @nn.compact
    def __call__(self, img: jax.Array, c: jax.Array, *, alpha: float | jax.Array = 1.0) -> jax.Array:
        del alpha
        ch = widths(self.img_resolution, self.channel_base, self.channel_max)
        norm = _norm(self.norm, track=False)
        x = img
        if self.c_dim and self.conditioning == "concat":
            x = jnp.concatenate([x, jnp.broadcast_to(c[:, None, None, :], (*x.shape[:3], self.c_dim))], axis=3)
        elif self.c_dim and self.conditioning != "projection":
            raise ConfigError(f"DCGAN conditioning must be 'projection' or 'concat', got {self.conditioning!r}")
        for res in sorted(ch, reverse=True):
            first = res == max(ch)  # no normalisation after the first conv (DCGAN)
            x = nn.Conv(ch[res], (4, 4), (2, 2), padding=((1, 1), (1, 1)), use_bias=first or self.norm == "none",
                        kernel_init=_INIT, name=f"b{res}")(x)
            if not first:
                x = norm(x, True)
            x = nn.leaky_relu(x, 0.2)
        features = x.reshape(x.shape[0], -1)
        logits = nn.Dense(1, kernel_init=_INIT, name="out")(features)
        if self.c_dim and self.conditioning == "projection":
            embed = nn.Dense(features.shape[1], use_bias=False, kernel_init=_INIT, name="embed")(c)
            logits = logits + jnp.sum(embed * features, axis=1, keepdims=True)
        return logits


def config_defaults() -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """G and D config entries (the introductory text's widths at 32x32)."""
    G = ml_collections.ConfigDict(dict(z_dim=100, channel_base=1024, channel_max=256, upsample="nearest",
                                       norm="batch", embed_dim=32))
    D = ml_collections.ConfigDict(dict(channel_base=1024, channel_max=256, norm="batch", conditioning="projection"))
    return G, D



FAMILY = register(Family("dcgan", Generator, Discriminator, config_defaults, batch_norm=True))
