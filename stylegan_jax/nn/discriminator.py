"""StyleGAN2 discriminator layers: the block of each resolution (orig / skip / resnet), minibatch standard
deviation, and the 4x4 epilogue with the conditional projection (NVIDIA's networks.py, NHWC here); the tail
every discriminator ends in (`discriminator_tail`)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.nn.layers import DEFAULT_FILTER, Conv2d, FullyConnected
from stylegan_jax.nn.synthesis import check_architecture
from stylegan_jax.ops import downsample2d, setup_filter


class DiscriminatorBlock(nn.Module):
    """One resolution of D: x [N, h, w, tmp_channels] (None for the first block) and img [N, h, w, C]
    -> x [N, h/2, w/2, out_channels] and img [N, h/2, w/2, C] (skip) or None; ``resolution`` r (h = w = r)
    or (h, w)."""

    in_channels: int
    tmp_channels: int
    out_channels: int
    resolution: int | tuple[int, int]
    img_channels: int
    architecture: str = "resnet"
    activation: str = "lrelu"
    resample_filter: Sequence[int] = DEFAULT_FILTER
    conv_clamp: float | None = None
    use_fp16: bool = False
    equalized_lr: bool = True  # False: plain layers (`Conv2d`'s switch), as stripped StyleGAN2's

    @nn.compact
    def __call__(self, x, img, force_fp32: bool = False):
        check_architecture(self.architecture, "D")
        dtype = jnp.bfloat16 if self.use_fp16 and not force_fp32 else jnp.float32
        eq = {} if self.equalized_lr else {"equalized_lr": False}
        conv = dict(activation=self.activation, conv_clamp=self.conv_clamp, **eq)
        if x is not None:
            x = x.astype(dtype)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.astype(dtype)
            y = Conv2d(self.tmp_channels, kernel_size=1, name="fromrgb", **conv)(img)
            x = y if x is None else x + y
            img = downsample2d(img, setup_filter(self.resample_filter)) if self.architecture == "skip" else None
        conv0 = Conv2d(self.tmp_channels, kernel_size=3, name="conv0", **conv)
        conv1 = Conv2d(self.out_channels, kernel_size=3, down=2, resample_filter=self.resample_filter,
                       name="conv1", **conv)
        if self.architecture == "resnet":
            skip = Conv2d(self.out_channels, kernel_size=1, bias=False, down=2,
                          resample_filter=self.resample_filter, name="skip", **eq)
            y = skip(x, gain=np.sqrt(0.5))
            x = y + conv1(conv0(x), gain=np.sqrt(0.5))
        else:
            x = conv1(conv0(x))
        return x, img


class MinibatchStdLayer(nn.Module):
    """Append the mean standard deviation over groups of ``group_size`` samples as ``num_channels``
    features: [N, H, W, C] -> [N, H, W, C + num_channels].

    Sample i belongs to group member i // (N / G) and statistics slot i % (N / G), as NVIDIA's reshape
    does; G = min(group_size, N) must divide N.
    """

    group_size: int | None
    num_channels: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        n, h, w, c = x.shape
        g = n if self.group_size is None else min(self.group_size, n)
        f = self.num_channels
        if n % g:
            raise ValueError(f"minibatch-stddev group size {g} does not divide the batch of {n}")
        y = x.astype(jnp.float32).reshape(g, n // g, h, w, f, c // f)
        y = y - jnp.mean(y, axis=0)
        y = jnp.sqrt(jnp.mean(jnp.square(y), axis=0) + 1e-8)  # [n/g, H, W, F, c/F]
        y = jnp.mean(y, axis=(1, 2, 4))  # [n/g, F]
        y = jnp.tile(y, (g, 1))[:, None, None, :]
        y = jnp.broadcast_to(y, (n, h, w, f)).astype(x.dtype)
        return jnp.concatenate([x, y], axis=-1)


def discriminator_tail(x: jax.Array, mbstd: nn.Module | None, conv: nn.Module, fc: nn.Module,
                       out: nn.Module) -> jax.Array:
    """The end every discriminator shares: x [N, 4, 4, C] -> minibatch stddev (unless None) -> ``conv`` ->
    flatten in NCHW order (as NVIDIA, so that ``fc``'s weight imports without a permutation) -> ``fc`` ->
    ``out``: [N, out features]."""
    if mbstd is not None:
        x = mbstd(x)
    x = conv(x)
    x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)
    return out(fc(x))


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 end of D (h0 x w0 for non-square images: ``resolution`` 4 or (h0, w0)): x [N, h0, w0, C]
    (+ img [N, h0, w0, img_channels] for skip, or instead of x when it is the whole D), cmap [N, cmap_dim] or
    None -> scores [N, 1]; ``fc`` reads all h0 * w0 * C features."""

    in_channels: int
    cmap_dim: int
    resolution: int | tuple[int, int]
    img_channels: int
    architecture: str = "resnet"
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1
    activation: str = "lrelu"
    conv_clamp: float | None = None
    equalized_lr: bool = True  # False: plain layers (`Conv2d`'s switch), as stripped StyleGAN2's

    @nn.compact
    def __call__(self, x, img, cmap):
        check_architecture(self.architecture, "D")
        eq = {} if self.equalized_lr else {"equalized_lr": False}
        if self.architecture == "skip" or x is None:
            # x is None only for a 4x4 D (no blocks before the epilogue): our extension, NVIDIA's D needs
            # at least 8x8; the epilogue then reads the image through its own fromrgb.
            y = Conv2d(self.in_channels, kernel_size=1, activation=self.activation,
                       name="fromrgb", **eq)(img.astype(jnp.float32))
            x = y if x is None else x.astype(jnp.float32) + y
        mbstd = None
        if self.mbstd_num_channels > 0:
            mbstd = MinibatchStdLayer(self.mbstd_group_size, self.mbstd_num_channels, name="mbstd")
        x = discriminator_tail(
            x.astype(jnp.float32), mbstd,
            Conv2d(self.in_channels, kernel_size=3, activation=self.activation, conv_clamp=self.conv_clamp,
                   name="conv", **eq),
            FullyConnected(self.in_channels, activation=self.activation, name="fc", **eq),
            FullyConnected(1 if self.cmap_dim == 0 else self.cmap_dim, name="out", **eq))
        if self.cmap_dim > 0:
            x = jnp.sum(x * cmap, axis=1, keepdims=True) * (1 / np.sqrt(self.cmap_dim))
        return x
