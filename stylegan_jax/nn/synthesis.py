"""StyleGAN2 synthesis layers: modulated conv with noise (SynthesisLayer), ToRGB, and the block of each
resolution for the architectures orig / skip / resnet (NVIDIA's networks.py, NHWC here)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax import image_size
from stylegan_jax.errors import ConfigError
from stylegan_jax.nn.layers import DEFAULT_FILTER, Conv2d, FullyConnected, clamp_times, normal_init
from stylegan_jax.ops import activation_gain, bias_act, modulated_conv2d, setup_filter, upsample2d

NOISE_MODES = ("random", "const", "none")
ARCHITECTURES = ("orig", "skip", "resnet")


def check_architecture(architecture: str, net: str) -> None:
    """A `ConfigError` naming ``net``'s key (``--config.G.architecture``) for an architecture other than orig /
    skip / resnet."""
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"--config.{net}.architecture: expected one of {ARCHITECTURES}, got {architecture!r}")


def check_noise_mode(noise_mode: str) -> None:
    """A clear error for a noise mode other than random / const / none."""
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up), noise, bias, lrelu: [N, h/up, w/up, in] -> [N, h, w, out].

    ``resolution``: r (h = w = r) or (h, w). Parameters: ``affine`` (w -> styles, bias init 1), ``weight``
    [out, in, k, k], ``noise_strength`` (a scalar, init 0), ``bias``; buffer ``noise_const`` [h, w].
    ``noise_mode='random'`` draws from the ``noise`` rng stream.
    """

    out_channels: int
    resolution: int | tuple[int, int]
    kernel_size: int = 3
    up: int = 1
    use_noise: bool = True
    activation: str = "lrelu"
    resample_filter: Sequence[int] = DEFAULT_FILTER
    conv_clamp: float | None = None
    fused: bool | None = None

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array, noise_mode: str = "random", gain: float = 1.0) -> jax.Array:
        check_noise_mode(noise_mode)
        in_channels, k, (height, width) = x.shape[-1], self.kernel_size, image_size.parse(self.resolution)
        styles = FullyConnected(in_channels, bias_init=1.0, name="affine")(w)
        weight = self.param("weight", normal_init(), (self.out_channels, in_channels, k, k))
        x = modulated_conv2d(x, weight, styles, up=self.up, padding=k // 2,
                             resample_filter=setup_filter(self.resample_filter),
                             flip_weight=(self.up == 1), fused=self.fused)
        if self.use_noise:
            noise_const = self.variable(
                "buffers", "noise_const", lambda: jax.random.normal(self.make_rng("params"), (height, width))
            )
            strength = self.param("noise_strength", nn.initializers.zeros, ())
            if noise_mode == "random":
                noise = jax.random.normal(self.make_rng("noise"), (x.shape[0], height, width, 1)) * strength
                x = x + noise.astype(x.dtype)
            elif noise_mode == "const":
                x = x + (noise_const.value * strength).astype(x.dtype)[None, :, :, None]
        bias = self.param("bias", nn.initializers.zeros, (self.out_channels,))
        return bias_act(x, bias, act=self.activation, gain=activation_gain(self.activation) * gain,
                        clamp=clamp_times(self.conv_clamp, gain))


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation: [N, r, r, in] -> [N, r, r, img_channels]."""

    out_channels: int
    kernel_size: int = 1
    conv_clamp: float | None = None
    fused: bool | None = None

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        in_channels, k = x.shape[-1], self.kernel_size
        styles = FullyConnected(in_channels, bias_init=1.0, name="affine")(w) * (1 / np.sqrt(in_channels * k * k))
        weight = self.param("weight", normal_init(), (self.out_channels, in_channels, k, k))
        bias = self.param("bias", nn.initializers.zeros, (self.out_channels,))
        x = modulated_conv2d(x, weight, styles, demodulate=False, fused=self.fused)
        return bias_act(x, bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network.

    ``resolution``: r (h = w = r) or (h, w). Input x [N, h/2, w/2, in_channels] (None for the first block, which
    starts from ``const`` [out_channels, h, w]), img [N, h/2, w/2, img_channels] or None, ws [N, num_conv +
    num_torgb, w_dim]. Output x [N, h, w, out_channels] (bfloat16 when ``use_fp16``) and img [N, h, w,
    img_channels] (float32).
    """

    in_channels: int
    out_channels: int
    resolution: int | tuple[int, int]
    img_channels: int
    is_last: bool
    architecture: str = "skip"
    resample_filter: Sequence[int] = DEFAULT_FILTER
    conv_clamp: float | None = None
    use_fp16: bool = False
    use_noise: bool = True
    activation: str = "lrelu"
    fused: bool | None = None

    @property
    def num_conv(self) -> int:
        return 1 if self.in_channels == 0 else 2

    @property
    def num_torgb(self) -> int:
        return 1 if (self.is_last or self.architecture == "skip") else 0

    @nn.compact
    def __call__(self, x, img, ws, noise_mode: str = "random", force_fp32: bool = False):
        check_architecture(self.architecture, "G")
        dtype = jnp.bfloat16 if self.use_fp16 and not force_fp32 else jnp.float32
        layer = dict(resolution=self.resolution, use_noise=self.use_noise, activation=self.activation,
                     resample_filter=self.resample_filter, conv_clamp=self.conv_clamp, fused=self.fused)
        w_iter = iter(range(ws.shape[1]))

        def next_w():
            return ws[:, next(w_iter)]

        if self.in_channels == 0:
            height, width = image_size.parse(self.resolution)
            const = self.param("const", normal_init(), (self.out_channels, height, width))
            x = jnp.broadcast_to(jnp.transpose(const, (1, 2, 0)).astype(dtype)[None],
                                 (ws.shape[0], height, width, self.out_channels))
            x = SynthesisLayer(self.out_channels, name="conv1", **layer)(x, next_w(), noise_mode)
        else:
            x = x.astype(dtype)
            conv0 = SynthesisLayer(self.out_channels, up=2, name="conv0", **layer)
            conv1 = SynthesisLayer(self.out_channels, name="conv1", **layer)
            if self.architecture == "resnet":
                skip = Conv2d(self.out_channels, kernel_size=1, bias=False, up=2,
                              resample_filter=self.resample_filter, name="skip")
                y = skip(x, gain=np.sqrt(0.5))
                x = conv0(x, next_w(), noise_mode)
                x = y + conv1(x, next_w(), noise_mode, gain=np.sqrt(0.5))
            else:
                x = conv0(x, next_w(), noise_mode)
                x = conv1(x, next_w(), noise_mode)

        if img is not None:
            img = upsample2d(img, setup_filter(self.resample_filter))
        if self.num_torgb:
            torgb = ToRGBLayer(self.img_channels, conv_clamp=self.conv_clamp, fused=self.fused, name="torgb")
            y = torgb(x, next_w()).astype(jnp.float32)
            img = y if img is None else img + y
        return x, img
