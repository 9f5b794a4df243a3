"""The Inception-v3 of NVIDIA's metrics (``inception-2015-12-05.pt``, a TorchScript translation of
TensorFlow's 2015-12-05 ImageNet graph) as a Flax module.

Input: uint8 images [N, H, W, 3] of any size. They are resized to 299x299 the way TensorFlow 1's
``ResizeBilinear`` does (source pixel ``j * in / 299``, no half-pixel offset, clamped at the border; NVIDIA
does it with ``affine_grid`` + ``grid_sample(padding_mode="border")``), mapped to ``(x - 128) / 128``,
and run through the graph: 3x3 stem convolutions, 11 "mixed" blocks, an 8x8 average pool to the 2048
pool3 features. Each convolution has no bias and is followed by batch normalisation with constants
``beta``, ``mean``, ``var`` (no scale, epsilon 1e-3) and a ReLU. The 3x3 average pools exclude padding
(TensorFlow's SAME pooling); the last block pools by max. The head is a 1008-way linear layer whose softmax
NVIDIA's IS reads without its bias.

Parameter names are those of the TorchScript module (``layers.mixed_4.tower_1.conv_2.weight`` ...);
`width_div` divides every channel count, for small test networks of the same graph.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

HIGHEST = jax.lax.Precision.HIGHEST
BN_EPS = 1e-3


def tf1_resize_bilinear(x: jax.Array, size: int) -> jax.Array:
    """TensorFlow 1 ``ResizeBilinear`` (align_corners=False, no half-pixel centres) of float [N, H, W, C] to
    [N, size, size, C]: output pixel j samples input position ``j * in / size``, clamped to the last pixel."""
    for axis in (1, 2):
        n_in = x.shape[axis]
        pos = jnp.minimum(jnp.arange(size, dtype=jnp.float32) * (n_in / size), n_in - 1)
        lo = jnp.floor(pos).astype(jnp.int32)
        hi = jnp.minimum(lo + 1, n_in - 1)
        frac = (pos - lo).reshape([-1 if a == axis else 1 for a in range(4)])
        a, b = jnp.take(x, lo, axis=axis), jnp.take(x, hi, axis=axis)
        x = a + (b - a) * frac
    return x


def max_pool(x: jax.Array, window: int, stride: int, pad: int = 0) -> jax.Array:
    """Max pool over H, W of NHWC (padding with -inf)."""
    p = ((0, 0), (pad, pad), (pad, pad), (0, 0))
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1), (1, stride, stride, 1), p)


def avg_pool_same(x: jax.Array) -> jax.Array:
    """3x3 stride-1 average pool with padding 1 that averages only the pixels inside the image."""
    p = ((0, 0), (1, 1), (1, 1), (0, 0))
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), p)
    count = jax.lax.reduce_window(jnp.ones(x.shape[1:3], x.dtype), 0.0, jax.lax.add, (3, 3), (1, 1), p[1:3])
    return total / count[None, :, :, None]


class ConvBN(nn.Module):
    """Convolution (no bias, torch layout OIHW stored as HWIO ``weight``) + batch norm constants + ReLU."""

    features: int
    kernel: tuple[int, int] = (1, 1)
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.param("weight", nn.initializers.lecun_normal(), (*self.kernel, x.shape[-1], self.features))
        beta = self.param("beta", nn.initializers.normal(0.1), (self.features,))
        mean = self.param("mean", nn.initializers.normal(0.1), (self.features,))
        var = self.param("var", nn.initializers.ones, (self.features,))
        (ph, pw), s = self.padding, self.stride
        y = jax.lax.conv_general_dilated(x, w, (s, s), ((ph, ph), (pw, pw)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=HIGHEST)
        return jax.nn.relu((y - mean) * jax.lax.rsqrt(var + BN_EPS) + beta)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class Tower(nn.Module):
    """A chain of ConvBN named ``conv``, ``conv_1``, ``conv_2``... from specs (channels, kernel, stride,
    padding), optionally after the padding-excluding 3x3 average pool (``pool``); channels // width_div."""

    specs: tuple
    width_div: int = 1
    pool: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.pool:
            x = avg_pool_same(x)
        for i, (n, kernel, stride, padding) in enumerate(self.specs):
            x = ConvBN(n // self.width_div, _pair(kernel), stride, _pair(padding),
                       name="conv" if i == 0 else f"conv_{i}")(x)
        return x


def _conv(n: int, kernel=1, stride: int = 1, padding=0) -> tuple:
    return (n, kernel, stride, padding)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1, 5x5 | 1x1, 3x3, 3x3 | avg pool, 1x1 (pool_features)."""

    pool_features: int
    width_div: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        d = self.width_div
        return jnp.concatenate([
            ConvBN(64 // d, name="conv")(x),
            Tower((_conv(48), _conv(64, 5, padding=2)), d, name="tower")(x),
            Tower((_conv(64), _conv(96, 3, padding=1), _conv(96, 3, padding=1)), d, name="tower_1")(x),
            Tower((_conv(self.pool_features),), d, pool=True, name="tower_2")(x),
        ], axis=-1)


class InceptionB(nn.Module):
    """35 -> 17 reduction: 3x3 stride 2 | 1x1, 3x3, 3x3 stride 2 | 3x3 max pool stride 2."""

    width_div: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        d = self.width_div
        return jnp.concatenate([
            ConvBN(384 // d, (3, 3), 2, name="conv")(x),
            Tower((_conv(64), _conv(96, 3, padding=1), _conv(96, 3, stride=2)), d, name="tower")(x),
            max_pool(x, 3, 2),
        ], axis=-1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (channels_7x7 inside the towers)."""

    channels_7x7: int
    width_div: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        d, c7 = self.width_div, self.channels_7x7
        row, col = _conv(c7, (1, 7), padding=(0, 3)), _conv(c7, (7, 1), padding=(3, 0))
        return jnp.concatenate([
            ConvBN(192 // d, name="conv")(x),
            Tower((_conv(c7), row, _conv(192, (7, 1), padding=(3, 0))), d, name="tower")(x),
            Tower((_conv(c7), col, row, col, _conv(192, (1, 7), padding=(0, 3))), d, name="tower_1")(x),
            Tower((_conv(192),), d, pool=True, name="tower_2")(x),
        ], axis=-1)


class InceptionD(nn.Module):
    """17 -> 8 reduction: 1x1, 3x3 stride 2 | 1x1, 1x7, 7x1, 3x3 stride 2 | 3x3 max pool stride 2."""

    width_div: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        d = self.width_div
        return jnp.concatenate([
            Tower((_conv(192), _conv(320, 3, stride=2)), d, name="tower")(x),
            Tower((_conv(192), _conv(192, (1, 7), padding=(0, 3)), _conv(192, (7, 1), padding=(3, 0)),
                   _conv(192, 3, stride=2)), d, name="tower_1")(x),
            max_pool(x, 3, 2),
        ], axis=-1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 branches; the pool branch averages (mixed_9) or takes the max
    (mixed_10, as in TensorFlow's graph)."""

    pool: str = "avg"
    width_div: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        d = self.width_div

        def conv(n, kernel=(1, 1), padding=(0, 0), name=None):
            return ConvBN(n // d, kernel, 1, padding, name=name)

        a = conv(384, name="tower_conv")(x)
        b = conv(384, (3, 3), (1, 1), name="tower_1_conv_1")(conv(448, name="tower_1_conv")(x))
        pooled = avg_pool_same(x) if self.pool == "avg" else max_pool(x, 3, 1, 1)
        return jnp.concatenate([
            conv(320, name="conv")(x),
            conv(384, (1, 3), (0, 1), name="tower_mixed_conv")(a),
            conv(384, (3, 1), (1, 0), name="tower_mixed_conv_1")(a),
            conv(384, (1, 3), (0, 1), name="tower_1_mixed_conv")(b),
            conv(384, (3, 1), (1, 0), name="tower_1_mixed_conv_1")(b),
            conv(192, name="tower_2_conv")(pooled),
        ], axis=-1)


class InceptionLayers(nn.Module):
    """Normalised 299x299 images [N, 299, 299, 3] -> pool3 features [N, 2048 // width_div]."""

    width_div: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        d = self.width_div
        x = ConvBN(32 // d, (3, 3), 2, name="conv")(x)
        x = ConvBN(32 // d, (3, 3), name="conv_1")(x)
        x = ConvBN(64 // d, (3, 3), padding=(1, 1), name="conv_2")(x)
        x = max_pool(x, 3, 2)
        x = ConvBN(80 // d, name="conv_3")(x)
        x = ConvBN(192 // d, (3, 3), name="conv_4")(x)
        x = max_pool(x, 3, 2)
        for i, pool_features in enumerate((32, 64, 64)):
            x = InceptionA(pool_features, d, name="mixed" if i == 0 else f"mixed_{i}")(x)
        x = InceptionB(d, name="mixed_3")(x)
        for i, c7 in enumerate((128, 160, 160, 192)):
            x = InceptionC(c7, d, name=f"mixed_{4 + i}")(x)
        x = InceptionD(d, name="mixed_8")(x)
        x = InceptionE("avg", d, name="mixed_9")(x)
        x = InceptionE("max", d, name="mixed_10")(x)
        return x.mean(axis=(1, 2))  # the 8x8 average pool (pool2 / TensorFlow's pool_3)


class Linear(nn.Module):
    """x @ weight.T + bias with torch's [out, in] weight layout."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array, use_bias: bool = True) -> jax.Array:
        w = self.param("weight", nn.initializers.lecun_normal(), (self.features, x.shape[-1]))
        b = self.param("bias", nn.initializers.normal(0.1), (self.features,))
        y = jnp.matmul(x, w.T, precision=HIGHEST)
        return y + b if use_bias else y


class InceptionV3(nn.Module):
    """NVIDIA's Inception detector. `features`: uint8 [N, H, W, 3] -> [N, 2048]; `probabilities`: the
    softmax of the 1008-way head, [N, 1008] (NVIDIA's IS uses it without the bias)."""

    width_div: int = 1
    num_classes: int = 1008

    def setup(self) -> None:
        self.layers = InceptionLayers(self.width_div)
        self.output = Linear(self.num_classes)

    def features(self, images: jax.Array) -> jax.Array:
        x = tf1_resize_bilinear(images.astype(jnp.float32), 299)
        return self.layers((x - 128) / 128)

    def probabilities(self, images: jax.Array, use_bias: bool = False) -> jax.Array:
        return jax.nn.softmax(self.output(self.features(images), use_bias), axis=-1)
