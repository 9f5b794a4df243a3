"""StyleGAN1's layers (NVIDIA/stylegan ``networks_stylegan.py``), NHWC: the mapping network with label
concatenation, and the synthesis layer "epilogue" with per-channel noise, bias, activation, pixel / instance
normalisation and the style modulation (AdaIN = instance norm + style)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax import image_size
from stylegan_jax.nn.mapping import ws_from_w
from stylegan_jax.nn.progressive import ACTIVATIONS, WSDense, blur2d, he_init, instance_norm, pixel_norm, upscale2d
from stylegan_jax.nn.synthesis import check_noise_mode
from stylegan_jax.ops import bias_act, conv2d_resample

#: The He gain NVIDIA gives the dense input layer of the traditional (non-constant) generator input.
DENSE_INPUT_GAIN = float(np.sqrt(2)) / 4


class StyleMapping(nn.Module):
    """StyleGAN1's ``G_mapping``: z [N, z_dim], c [N, c_dim] -> w [N, num_ws, w_dim].

    Labels are embedded by ``embed`` ([z_dim, c_dim], N(0, 1), no equalised lr) and concatenated to z; the
    concatenation is pixel-normalised, then ``num_layers`` dense layers ``fc{i}`` (gain sqrt 2 on the
    weights, ``lr_multiplier``) map it to w. With ``num_layers`` 0, w is the normalised input itself (its
    width must be ``w_dim``). ``w_avg`` (collection ``buffers``) tracks the mean w with decay
    ``w_avg_beta`` when called with ``update_emas=True`` and ``mutable=['buffers']``; truncation
    (w_avg + psi (w - w_avg) on the first ``cutoff`` ws, all when None) uses it (`ws_from_w`).
    """

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    num_layers: int = 8
    layer_features: int = 512
    lr_multiplier: float = 0.01
    nonlinearity: str = "lrelu"
    normalize_latents: bool = True
    use_wscale: bool = True
    w_avg_beta: float = 0.995

    @nn.compact
    def __call__(self, z: jax.Array, c: jax.Array | None, truncation_psi: float | jax.Array = 1.0,
                 truncation_cutoff: int | None = None, update_emas: bool = False) -> jax.Array:
        x = z.astype(jnp.float32)
        if self.c_dim:
            embed = self.param("embed", nn.initializers.normal(1.0), (self.z_dim, self.c_dim))
            x = jnp.concatenate([x, c.astype(jnp.float32) @ embed.T], axis=1)
        if self.normalize_latents:
            x = pixel_norm(x)
        act, gain = ACTIVATIONS[self.nonlinearity]
        for idx in range(self.num_layers):
            features = self.w_dim if idx == self.num_layers - 1 else self.layer_features
            x = WSDense(features, gain=gain, activation=act, use_wscale=self.use_wscale,
                        lrmul=self.lr_multiplier, name=f"fc{idx}")(x)
        if x.shape[1] != self.w_dim:
            raise ValueError(f"without mapping layers w is the normalised [z, embedded c] of width {x.shape[1]}, "
                             f"not w_dim {self.w_dim}")
        return ws_from_w(self, x, self.num_ws, self.w_avg_beta, truncation_psi, truncation_cutoff, update_emas)


def style_modulate(x: jax.Array, style: jax.Array) -> jax.Array:
    """StyleGAN1's style_mod: x [N, H, W, C], style [N, 2C] (scale offsets, then biases) ->
    x * (style[:, :C] + 1) + style[:, C:]."""
    channels = x.shape[-1]
    scale, shift = style[:, None, None, :channels], style[:, None, None, channels:]
    return x * (scale + 1) + shift


class StyleLayer(nn.Module):
    """One StyleGAN1 synthesis layer: optional (2x nearest up +) k x k conv (+ blur after the up), then the
    epilogue: noise * per-channel ``noise_strength``, ``bias``, activation, pixel norm, instance norm, and
    the style from w (``style``: dense w -> 2C, gain 1, as NVIDIA's StyleMod).

    x [N, r/up, r/up, in] (or [N, r, r, C] with ``kernel_size`` 0: epilogue only), w [N, w_dim] -> [N, r, r,
    out_channels] (``resolution`` r, or (h, w) for W x H canvases). Buffer ``noise_const`` [h, w]; ``noise_mode``
    random draws from the ``noise`` rng stream. NVIDIA's fused up-conv (``fused_scale``, >= 128 px) is the same
    function as nearest-up + conv with the kernel flipped, which the TF import accounts for.
    """

    out_channels: int
    resolution: int | tuple[int, int]
    kernel_size: int = 3
    up: bool = False
    blur_filter: Sequence[int] | None = (1, 2, 1)
    use_noise: bool = True
    use_pixel_norm: bool = False
    use_instance_norm: bool = True
    use_styles: bool = True
    use_wscale: bool = True
    nonlinearity: str = "lrelu"

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array | None, noise_mode: str = "random") -> jax.Array:
        check_noise_mode(noise_mode)
        act, gain = ACTIVATIONS[self.nonlinearity]
        (height, width), k = image_size.parse(self.resolution), self.kernel_size
        if k:
            if self.up:
                x = upscale2d(x)
            init, coef = he_init(gain, x.shape[-1] * k * k, self.use_wscale, 1.0)
            weight = self.param("weight", init, (self.out_channels, x.shape[-1], k, k))
            x = conv2d_resample(x, (weight * coef).astype(x.dtype), padding=k // 2)
            if self.up:
                x = blur2d(x, self.blur_filter)
        if self.use_noise:
            noise_const = self.variable("buffers", "noise_const",
                                        lambda: jax.random.normal(self.make_rng("params"), (height, width)))
            strength = self.param("noise_strength", nn.initializers.zeros, (self.out_channels,))
            if noise_mode == "random":
                x = x + jax.random.normal(self.make_rng("noise"), (x.shape[0], height, width, 1), x.dtype) * strength
            elif noise_mode == "const":
                x = x + noise_const.value[None, :, :, None] * strength
        x = bias_act(x, self.param("bias", nn.initializers.zeros, (self.out_channels,)), act=act, gain=1.0)
        if self.use_pixel_norm:
            x = pixel_norm(x)
        if self.use_instance_norm:
            x = instance_norm(x)
        if self.use_styles:
            x = style_modulate(x, WSDense(2 * self.out_channels, gain=1.0, use_wscale=self.use_wscale,
                                          name="style")(w))
        return x
