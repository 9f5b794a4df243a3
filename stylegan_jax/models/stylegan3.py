"""StyleGAN3 (Karras et al. 2021, "Alias-Free Generative Adversarial Networks") generator as Flax modules, with
the argument names, defaults, parameter and buffer names and shapes of NVIDIA's stylegan3
``training/networks_stylegan3.py``; the discriminator is StyleGAN2's (as NVIDIA trains StyleGAN3).

Variables: ``params`` (trainable) and ``buffers``: ``mapping/w_avg``, ``synthesis/input/{transform, freqs,
phases}`` and each layer's ``magnitude_ema``. The Fourier features' frequencies and phases are random buffers,
drawn at init as NVIDIA draws them (uniform in a disc of radius ``bandwidth``, with NVIDIA's radial density;
phases uniform in [-0.5, 0.5)) and imported from a pickle. The up/down filters are designs, not variables:
each layer recomputes them from the schedule (`layer_specs`), and the pickle importer checks that they equal
the pickle's buffers. Layers NVIDIA runs in float16 compute in bfloat16 here unless ``force_fp32``.

Layout NHWC; a layer ``L{idx}_{size}_{channels}`` maps [N, in_size, in_size, in_channels] to
[N, out_size, out_size, out_channels]; ``synthesis/input`` makes the first [N, size0, size0, channels0] from
Fourier features; ws [N, num_layers + 2, w_dim] (one for the input, one per layer, the last for ToRGB).

W x H images (``img_resolution`` = (H, W), `stylegan_jax.image_size`; our extension, NVIDIA's networks are
square): the schedule (cutoffs, sampling rates, widths, fp16 layers, layer names) is the square network's of
the short side S, which must be a power of two; the canvases are widened along the long side L, to
``round(sampling_rate * L / S) + 2 * margin`` pixels (the last two layers: L), so each layer samples the same
frequencies over a wider field of view.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from ml_collections import config_dict

from stylegan_jax import image_size
from stylegan_jax.models.registry import Family, register
from stylegan_jax.models.stylegan2 import Discriminator, discriminator_kwargs, discriminator_layers
from stylegan_jax.models.stylegan2 import config_defaults as stylegan2_defaults
from stylegan_jax.nn.layers import FullyConnected, normal_init
from stylegan_jax.nn.mapping import MappingNetwork
from stylegan_jax.ops.filtered_lrelu import design_lowpass_filter, filtered_lrelu
from stylegan_jax.ops.modulated_conv2d import modulated_conv2d

#: The generator's float16 layers compute in this type here (parameters stay float32).
REDUCED_PRECISION = jnp.bfloat16


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One synthesis layer's place in NVIDIA's schedule (sizes in pixels, frequencies in cycles per unit).

    ``in_size``/``out_size`` are NVIDIA's (the canvas side of a square network; the short side's for W x H);
    ``in_shape``/``out_shape`` the canvases (height, width)."""

    name: str
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]
    in_shape: tuple[int, int]
    out_shape: tuple[int, int]

    @property
    def up_filter(self) -> np.ndarray | None:
        """The upsampling filter (separable Kaiser low-pass at the input cutoff), or None."""
        return _design(self.up_taps, self.in_cutoff, self.in_half_width * 2, self.tmp_sampling_rate, False)

    @property
    def down_filter(self) -> np.ndarray | None:
        """The downsampling filter (separable, or radial for config R's non-critical layers), or None."""
        return _design(self.down_taps, self.out_cutoff, self.out_half_width * 2, self.tmp_sampling_rate,
                       self.down_radial)

    @property
    def tmp_sampling_rate(self) -> int:
        return self.in_sampling_rate * self.up_factor


@functools.lru_cache(maxsize=256)
def _design(numtaps: int, cutoff: float, width: float, fs: float, radial: bool) -> np.ndarray | None:
    f = design_lowpass_filter(numtaps, cutoff, width, fs, radial)
    if f is not None:
        f.setflags(write=False)
    return f


def _short_side(img_resolution: int | tuple[int, int]) -> tuple[int, int, int]:
    """(height, width, short side) of ``img_resolution``; a short side that is not a power of two is an
    `image_size.ImageSizeError` (the sampling rates are powers of two)."""
    h, w = image_size.parse(img_resolution)
    short = min(h, w)
    if not image_size.is_power_of_two(short):
        raise image_size.ImageSizeError(f"StyleGAN3 at {image_size.text(h, w)}: the short side must be a power of "
                                        "two (the sampling rates are), e.g. 256, 512x256 or 768x512")
    return h, w, short


def _canvas(height: int, width: int, short: int, size: int, rate: float, last: bool) -> tuple[int, int]:
    """A layer's canvas (height, width): NVIDIA's ``size`` along the short side, the long side widened by
    L / S (the image itself in the last two layers)."""
    if last:
        return height, width
    margin = size - rate  # NVIDIA's 2 * margin_size
    long = int(round(rate * max(height, width) / short)) + margin
    return (size, int(long)) if height == short else (int(long), size)


def _padding(in_size: int, out_size: int, kernel: int, up: int, down: int, up_taps: int, down_taps: int
             ) -> tuple[int, int]:
    """NVIDIA's padding along one axis, including the symmetric interpretation of odd totals (the paper's
    appendix C.3)."""
    pad_total = (out_size - 1) * down + 1 - (in_size + kernel - 1) * up + up_taps + down_taps - 2
    pad_lo = (pad_total + up) // 2
    return pad_lo, pad_total - pad_lo


@functools.lru_cache(maxsize=64)
def _schedule(img_resolution: int | tuple[int, int], img_channels: int, channel_base: int, channel_max: int,
              num_layers: int, num_critical: int, first_cutoff: float, first_stopband: float,
              last_stopband_rel: float, margin_size: int, num_fp16_res: int, conv_kernel: int, filter_size: int,
              lrelu_upsampling: int, use_radial_filters: bool
              ) -> tuple[tuple[int, tuple[int, int], float, float], tuple[LayerSpec, ...]]:
    height, width, img_resolution = _short_side(img_resolution)
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    specs = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        is_torgb = idx == num_layers
        is_critical = idx >= num_layers - num_critical
        in_rate, out_rate = int(sampling_rates[prev]), int(sampling_rates[idx])
        in_size, out_size = int(sizes[prev]), int(sizes[idx])
        kernel = 1 if is_torgb else conv_kernel
        tmp_rate = max(in_rate, out_rate) * (1 if is_torgb else lrelu_upsampling)
        up, down = int(np.rint(tmp_rate / in_rate)), int(np.rint(tmp_rate / out_rate))
        up_taps = filter_size * up if up > 1 and not is_torgb else 1
        down_taps = filter_size * down if down > 1 and not is_torgb else 1
        in_shape = _canvas(height, width, img_resolution, in_size, in_rate, prev >= num_layers - 1)
        out_shape = _canvas(height, width, img_resolution, out_size, out_rate, idx >= num_layers - 1)
        taps = (kernel, up, down, up_taps, down_taps)
        padding = (*_padding(in_shape[1], out_shape[1], *taps), *_padding(in_shape[0], out_shape[0], *taps))
        out_channels = int(channels[idx])
        specs.append(LayerSpec(
            name=f"L{idx}_{out_size}_{out_channels}", is_torgb=is_torgb, is_critically_sampled=is_critical,
            use_fp16=bool(sampling_rates[idx] * (2**num_fp16_res) > img_resolution),
            in_channels=int(channels[prev]), out_channels=out_channels, in_size=in_size, out_size=out_size,
            in_sampling_rate=in_rate, out_sampling_rate=out_rate, in_cutoff=float(cutoffs[prev]),
            out_cutoff=float(cutoffs[idx]), in_half_width=float(half_widths[prev]),
            out_half_width=float(half_widths[idx]), conv_kernel=kernel, up_factor=up, down_factor=down,
            up_taps=up_taps, down_taps=down_taps, down_radial=use_radial_filters and not is_critical,
            padding=padding, in_shape=in_shape, out_shape=out_shape))
    first = (_canvas(height, width, img_resolution, int(sizes[0]), float(sampling_rates[0]), False),
             float(sampling_rates[0]), float(cutoffs[0]))
    return (int(channels[0]), *first), tuple(specs)


def fourier_frequencies(key: jax.Array, channels: int, bandwidth: float) -> jax.Array:
    """NVIDIA's random Fourier frequencies [channels, 2]: 2-D normal draws, each scaled by
    1 / (r * exp(r^2)^(1/4)) and by ``bandwidth`` (so they fill the disc of radius ``bandwidth``)."""
    freqs = jax.random.normal(key, (channels, 2))
    radii = jnp.sqrt(jnp.sum(jnp.square(freqs), axis=1, keepdims=True))
    return freqs / (radii * jnp.exp(jnp.square(radii)) ** 0.25) * bandwidth


class SynthesisInput(nn.Module):
    """w [N, w_dim] -> Fourier features [N, H, W, channels] (``size`` (H, W)), rotated and translated by a
    learned affine of w and by the user's ``transform`` buffer (the inverse transform of the output image)."""

    w_dim: int
    channels: int
    size: tuple[int, int]
    sampling_rate: float
    bandwidth: float

    @nn.compact
    def __call__(self, w: jax.Array) -> jax.Array:
        c = self.channels
        weight = self.param("weight", normal_init(), (c, c))
        transform = self.variable("buffers", "transform", lambda: jnp.eye(3, dtype=jnp.float32))
        freqs0 = self.variable("buffers", "freqs", lambda: fourier_frequencies(
            self.make_rng("params"), c, self.bandwidth)).value
        phases0 = self.variable("buffers", "phases", lambda: jax.random.uniform(
            self.make_rng("params"), (c,)) - 0.5).value  # uniform in [-0.5, 0.5)
        t = FullyConnected(4, weight_init=0.0, bias_init=(1.0, 0.0, 0.0, 0.0), name="affine")(w)
        t = t / jnp.linalg.norm(t[:, :2], axis=1, keepdims=True)  # (cos, sin, tx, ty) of the learned motion
        n = w.shape[0]
        zero, one = jnp.zeros(n), jnp.ones(n)
        m_r = jnp.stack([jnp.stack([t[:, 0], -t[:, 1], zero], 1), jnp.stack([t[:, 1], t[:, 0], zero], 1),
                         jnp.stack([zero, zero, one], 1)], 1)
        m_t = jnp.stack([jnp.stack([one, zero, -t[:, 2]], 1), jnp.stack([zero, one, -t[:, 3]], 1),
                         jnp.stack([zero, zero, one], 1)], 1)
        transforms = m_r @ m_t @ transform.value[None]  # rotate the image, then translate, then the user's
        phases = phases0[None] + (freqs0[None] @ transforms[:, :2, 2:])[..., 0]  # [N, C]
        freqs = freqs0[None] @ transforms[:, :2, :2]  # [N, C, 2]
        amplitudes = jnp.clip(1 - (jnp.linalg.norm(freqs, axis=2) - self.bandwidth)
                              / (self.sampling_rate / 2 - self.bandwidth), 0, 1)
        # Sample positions of torch's affine_grid (align_corners=False) scaled to 0.5 * size / sampling_rate.
        ys, xs = ((jnp.arange(n, dtype=jnp.float32) + 0.5 - n / 2) / self.sampling_rate for n in self.size)
        x = (xs[None, None, :, None] * freqs[:, None, None, :, 0]
             + ys[None, :, None, None] * freqs[:, None, None, :, 1])  # [N, H, W, C]
        x = jnp.sin((x + phases[:, None, None, :]) * (2 * np.pi)) * amplitudes[:, None, None, :]
        return x @ (weight / np.sqrt(c)).T


class SynthesisLayer(nn.Module):
    """One layer of `LayerSpec` ``spec``: modulated conv (weights and styles pre-normalised, demodulated except
    in ToRGB, inputs scaled by the magnitude EMA's rsqrt), then `filtered_lrelu` with the layer's filters.

    Parameters ``affine`` (w -> styles, bias init 1), ``weight`` [out, in, k, k], ``bias``; buffer
    ``magnitude_ema`` (the mean square of the inputs, tracked with decay ``magnitude_ema_beta`` when called with
    ``update_emas`` under ``mutable=['buffers']``; the mean square is also sown as ``ema_stats``).
    """

    w_dim: int
    spec: LayerSpec
    conv_clamp: float | None = 256
    magnitude_ema_beta: float = 0.999

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array, update_emas: bool = False, force_fp32: bool = False) -> jax.Array:
        s = self.spec
        expected = (*s.in_shape, s.in_channels)
        if x.shape[1:] != expected:
            raise ValueError(f"{s.name} expects [N, {', '.join(map(str, expected))}], got {x.shape}")
        ema = self.variable("buffers", "magnitude_ema", lambda: jnp.ones((), jnp.float32))
        if update_emas:
            current = jnp.mean(jnp.square(jax.lax.stop_gradient(x).astype(jnp.float32)))
            ema.value = current + self.magnitude_ema_beta * (ema.value - current)
            self.sow("ema_stats", "magnitude_ema", current)  # for a training step that averages its minibatches
        input_gain = jax.lax.rsqrt(ema.value)
        styles = FullyConnected(s.in_channels, bias_init=1.0, name="affine")(w)
        k = s.conv_kernel
        weight = self.param("weight", normal_init(), (s.out_channels, s.in_channels, k, k))
        bias = self.param("bias", nn.initializers.zeros, (s.out_channels,))
        if s.is_torgb:
            styles = styles * (1 / np.sqrt(s.in_channels * k * k))
        else:  # NVIDIA's pre-normalisation: each output filter to unit mean square, the styles over the batch
            weight = weight * jax.lax.rsqrt(jnp.mean(jnp.square(weight), axis=(1, 2, 3), keepdims=True))
            styles = styles * jax.lax.rsqrt(jnp.mean(jnp.square(styles)))
        dtype = REDUCED_PRECISION if s.use_fp16 and not force_fp32 else jnp.float32
        x = (x.astype(jnp.float32) * input_gain).astype(dtype)  # input_gain is a scalar: scaling x scales the weights
        x = modulated_conv2d(x, weight, styles, demodulate=not s.is_torgb, padding=k - 1)
        gain, slope = (1.0, 1.0) if s.is_torgb else (float(np.sqrt(2)), 0.2)
        return filtered_lrelu(x, s.up_filter, s.down_filter, bias, s.up_factor, s.down_factor, s.padding,
                              gain=gain, slope=slope, clamp=self.conv_clamp)


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, H, W, img_channels] float32 (H = W = ``img_resolution``, or
    ``img_resolution`` = (H, W): the module docstring), with NVIDIA's ``SynthesisNetwork`` arguments (and its
    ``SynthesisLayer`` ones: ``conv_kernel``, ``filter_size``, ``lrelu_upsampling``, ``use_radial_filters``,
    ``conv_clamp``, ``magnitude_ema_beta``)."""

    w_dim: int
    img_resolution: int | tuple[int, int]
    img_channels: int
    channel_base: int = 32768
    channel_max: int = 512
    num_layers: int = 14
    num_critical: int = 2
    first_cutoff: float = 2
    first_stopband: float = 2**2.1
    last_stopband_rel: float = 2**0.3
    margin_size: int = 10
    output_scale: float = 0.25
    num_fp16_res: int = 4
    conv_kernel: int = 3
    filter_size: int = 6
    lrelu_upsampling: int = 2
    use_radial_filters: bool = False
    conv_clamp: float | None = 256
    magnitude_ema_beta: float = 0.999

    @property
    def num_ws(self) -> int:
        return self.num_layers + 2

    @property
    def schedule(self) -> tuple[tuple[int, tuple[int, int], float, float], tuple[LayerSpec, ...]]:
        """((input channels, input canvas (H, W), input sampling rate, input bandwidth), the layers'
        `LayerSpec`s)."""
        return _schedule(self.img_resolution, self.img_channels, self.channel_base, self.channel_max,
                         self.num_layers, self.num_critical, float(self.first_cutoff), float(self.first_stopband),
                         float(self.last_stopband_rel), self.margin_size, self.num_fp16_res, self.conv_kernel,
                         self.filter_size, self.lrelu_upsampling, self.use_radial_filters)

    @nn.compact
    def __call__(self, ws: jax.Array, update_emas: bool = False, force_fp32: bool = False) -> jax.Array:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {ws.shape}")
        (channels, size, sampling_rate, bandwidth), specs = self.schedule
        ws = ws.astype(jnp.float32)
        x = SynthesisInput(self.w_dim, channels, size, sampling_rate, bandwidth, name="input")(ws[:, 0])
        for i, spec in enumerate(specs):
            x = SynthesisLayer(self.w_dim, spec, self.conv_clamp, self.magnitude_ema_beta, name=spec.name)(
                x, ws[:, i + 1], update_emas, force_fp32)
        return (x * self.output_scale).astype(jnp.float32)


class Generator(nn.Module):
    """z [N, z_dim], c [N, c_dim] -> images [N, H, W, img_channels] in [-1, 1]-ish (`SynthesisNetwork`).

    ``G.apply(variables, z, c, truncation_psi, truncation_cutoff, noise_mode)`` (StyleGAN3 has no noise inputs:
    ``noise_mode`` is accepted and ignored, as NVIDIA's); ``method=Generator.map`` gives ws,
    ``method=Generator.synthesize`` turns ws into images. ``update_emas`` (under ``mutable=['buffers']``)
    updates ``w_avg`` and the magnitude EMAs.
    """

    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: int | tuple[int, int]
    img_channels: int
    mapping_kwargs: Mapping[str, Any] = None
    synthesis_kwargs: Mapping[str, Any] = None

    def setup(self) -> None:
        self.synthesis = SynthesisNetwork(w_dim=self.w_dim, img_resolution=self.img_resolution,
                                          img_channels=self.img_channels, **(self.synthesis_kwargs or {}))
        mapping = {"num_layers": 2, "w_avg_beta": 0.998, **(self.mapping_kwargs or {})}
        self.mapping = MappingNetwork(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws,
                                      **mapping)

    @property
    def num_ws(self) -> int:
        return (self.synthesis_kwargs or {}).get("num_layers", SynthesisNetwork.num_layers) + 2

    def map(self, z, c, truncation_psi=1.0, truncation_cutoff=None, update_emas: bool = False) -> jax.Array:
        """z, c -> ws [N, num_ws, w_dim]."""
        return self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas)

    def synthesize(self, ws, noise_mode: str = "random", force_fp32: bool = False,
                   update_emas: bool = False) -> jax.Array:
        """ws [N, num_ws, w_dim] -> images (``noise_mode`` ignored: there are no noise inputs)."""
        del noise_mode
        return self.synthesis(ws, update_emas, force_fp32)

    def __call__(self, z, c, truncation_psi=1.0, truncation_cutoff=None, noise_mode: str = "random",
                 update_emas: bool = False, force_fp32: bool = False) -> jax.Array:
        ws = self.map(z, c, truncation_psi, truncation_cutoff, update_emas)
        return self.synthesize(ws, noise_mode, force_fp32, update_emas)


def with_input_transform(variables: dict, matrix: jax.Array | np.ndarray) -> dict:
    """``variables`` with ``synthesis/input/transform`` set to ``matrix`` [3, 3]: the inverse of the transform
    the output image shows (NVIDIA's buffer; traceable)."""
    buffers = dict(variables["buffers"])
    synthesis = dict(buffers["synthesis"])
    synthesis["input"] = {**synthesis["input"], "transform": jnp.asarray(matrix, jnp.float32)}
    buffers["synthesis"] = synthesis
    return {**variables, "buffers": buffers}


#: The G config keys that configure the mapping network, and the Generator's own.
MAPPING_KEYS = {"mapping_layers": "num_layers", "mapping_lr_multiplier": "lr_multiplier", "w_avg_beta": "w_avg_beta"}


def config_defaults() -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """G and D sections as NVIDIA's stylegan3 ``train.py`` sets them for ``--cfg=stylegan3-t``, flat: G's
    mapping (2 layers, ``w_avg_beta`` 0.998), its synthesis's schedule and layer arguments (NVIDIA's defaults;
    ``magnitude_ema_beta`` None is NVIDIA's ``0.5 ** (batch / 20000)``); D is StyleGAN2's at the same widths.
    Config R (`stylegan3_r_overrides`) doubles the widths, takes 1x1 convolutions and radial filters."""
    G = ml_collections.ConfigDict(dict(
        z_dim=512, w_dim=512, mapping_layers=2, mapping_lr_multiplier=0.01, w_avg_beta=0.998, channel_base=32768,
        channel_max=512, num_layers=14, num_critical=2, first_cutoff=2.0, first_stopband=2**2.1,
        last_stopband_rel=2**0.3, margin_size=10, output_scale=0.25, num_fp16_res=4, conv_kernel=3, filter_size=6,
        lrelu_upsampling=2, use_radial_filters=False, conv_clamp=config_dict.placeholder(float),
        magnitude_ema_beta=config_dict.placeholder(float),
    ))
    G.conv_clamp = 256
    _, D = stylegan2_defaults()
    return G, D


def stylegan3_r_overrides(cfg: ml_collections.ConfigDict) -> None:
    """NVIDIA's ``--cfg=stylegan3-r`` changes to G: 1x1 convolutions, twice the widths, radial down filters."""
    cfg.G.conv_kernel = 1
    cfg.G.channel_base *= 2
    cfg.G.channel_max *= 2
    cfg.G.use_radial_filters = True


def network_kwargs(cfg: ml_collections.ConfigDict, c_dim: int) -> tuple[dict, dict]:
    """(G kwargs, D kwargs) in NVIDIA's nesting from the flat ``cfg.G`` / ``cfg.D`` (D as StyleGAN2's): the
    mapping keys go to ``mapping_kwargs``, every other G key to ``synthesis_kwargs``; ``magnitude_ema_beta``
    None becomes ``0.5 ** (cfg.batch_size / 20000)``."""
    g = cfg.G.to_dict()
    mapping = {ours: g.pop(key) for key, ours in MAPPING_KEYS.items()}
    if g["magnitude_ema_beta"] is None:
        g["magnitude_ema_beta"] = 0.5 ** (cfg.batch_size / 20000)
    G_kwargs = dict(z_dim=g.pop("z_dim"), c_dim=c_dim, w_dim=g.pop("w_dim"),
                    img_resolution=image_size.network_resolution(cfg.resolution), img_channels=cfg.img_channels,
                    mapping_kwargs=mapping, synthesis_kwargs=g)
    return G_kwargs, discriminator_kwargs(cfg, c_dim)


FAMILY = register(Family("stylegan3", Generator, Discriminator, config_defaults, network_kwargs, has_mapping=True,
                         d_layers=discriminator_layers, emas_in_d_main=True, input_transform=with_input_transform,
                         non_square=True))
