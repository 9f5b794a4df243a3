"""R3GAN (Huang et al. 2024, "The GAN is dead; long live the GAN! A Modern GAN Baseline") as Flax modules,
built as brownvc/R3GAN's ``R3GAN/Networks.py`` builds them, with its parameter names and shapes.

G: z [N, z_dim] (with a bias-free embedding of c [N, c_dim] concatenated when c_dim > 0) -> stage 0, the
generative basis: a learned basis [C, 4, 4] times a bias-free linear map of the input, one value per channel
-> stages 1.. each: a 1x1 conv when the width changes, then 2x upsampling -> each stage's residual blocks ->
a 1x1 aggregation conv to ``img_channels``. D mirrors it: a 1x1 extraction conv from ``img_channels`` -> each
stage's residual blocks, then 2x downsampling and a 1x1 conv when the width changes; the last stage ends in
the discriminative basis (a 4x4 depthwise conv without padding, then a bias-free linear map) to one logit,
or, when c_dim > 0, to ``condition_embedding_dim`` features whose dot product with an embedding of c is the
logit (projection conditioning).

A residual block is an inverted bottleneck, x + conv1x1(act(gconv(act(conv1x1(x))))): expand by
``expansion_factor``, a k x k conv in ``cardinality`` groups, back to the input width; ``act`` is leaky
ReLU 0.2 after a learned bias, gain 1. No layer has a bias except these activations. Resampling is FIR with
the interpolation kernel of ``resampling_filter`` (R3GAN's [1, 2, 1] convolved with [1, 1]: the separable
[1, 3, 3, 1], normalised), NVIDIA's ``upsample2d`` / ``downsample2d`` conventions.

Initialisation (R3GAN's fix-up): every weight N(0, gain^2 / fan_in), fan_in = weight.shape[1] * kh * kw,
gain 1 except the first two convs of a residual block, ``sqrt(2 / (1 + 0.2^2)) * L^(-1/4)`` with L the
network's total number of residual blocks, and the last conv of a block, gain 0 (zero); activation biases 0;
the generative basis N(0, 1); D's label embedding gain ``1 / sqrt(condition_embedding_dim)``.

Parameters (``params`` only; the resampling kernel is a constant): the torch state dict keys with '.' as tree
levels, e.g. ``MainLayers.0.Layers.0.Basis`` [C, 4, 4], ``MainLayers.0.Layers.0.LinearLayer.weight`` [C, in],
``MainLayers.1.Layers.0.LinearLayer.Layer.weight`` [out, in, 1, 1], ``MainLayers.i.Layers.j.LinearLayer2.Layer
.weight`` [E, E / cardinality, k, k], ``MainLayers.i.Layers.j.NonLinearity1.Bias`` [E], ``AggregationLayer.Layer
.weight``, D's ``ExtractionLayer.Layer.weight``, ``MainLayers.<last>.Layers.<blocks>.Basis.weight`` [C, 1, 4, 4],
``EmbeddingLayer.weight`` [embed, c_dim]: torch's layouts ([out, in / groups, kh, kw], [out, in]).

Stage lists are ordered from G's input (4x4) up and from D's input (the image) down, so a D's lists are its
G's reversed (R3GAN's train.py). ``fp16_stages`` are stage indices (negative from the end) that compute in
bfloat16 (R3GAN's FP16Stages, which it runs in bfloat16), unless ``force_fp32``; parameters stay float32 and
both networks return float32. Images NHWC.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from stylegan_jax.errors import ConfigError
from stylegan_jax.image_size import is_power_of_two
from stylegan_jax.models.registry import Family, register
from stylegan_jax.ops import bias_act, downsample2d, setup_filter, upsample2d
from stylegan_jax.ops.conv2d_resample import conv2d

#: The stages in ``fp16_stages`` compute in this type (R3GAN's choice as well).
REDUCED_PRECISION = jnp.bfloat16

#: R3GAN's BiasedActivation.Gain: the variance-preserving gain of leaky ReLU 0.2.
LRELU_GAIN = math.sqrt(2 / (1 + 0.2**2))


def msr_init(gain: float) -> Callable[..., jax.Array]:
    """R3GAN's MSRInitializer for a torch-layout weight [out, in, *kernel]: N(0, gain^2 / (in * prod(kernel)))."""

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        return jax.random.normal(key, shape, dtype) * (gain / np.sqrt(np.prod(shape[1:])))

    return init


def residual_gain(total_blocks: int) -> float:
    """The init gain of a residual block's first two convs: leaky ReLU's gain times L^(-1/(2m-2)), m = 3 linear
    layers per block, L the network's number of blocks (the fix-up scaling)."""
    return LRELU_GAIN * total_blocks ** (-1 / (2 * 3 - 2))


def interpolation_filter(taps: Sequence[int]) -> np.ndarray:
    """R3GAN's interpolative resampling kernel [fh, fw]: ``taps`` convolved with [1, 1], outer product, sum 1."""
    return setup_filter(np.convolve(np.asarray(taps, np.float64), [1, 1]))


class Linear(nn.Module):
    """torch's bias-free nn.Linear: x [N, in] -> x @ weight.T, ``weight`` [features, in] (MSR init)."""

    features: int
    gain: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        weight = self.param("weight", msr_init(self.gain), (self.features, x.shape[-1]))
        return x @ weight.astype(x.dtype).T


class Conv2d(nn.Module):
    """torch's bias-free nn.Conv2d on NHWC: ``weight`` [features, in / groups, k, k] (MSR init), stride 1,
    ``padding`` on each side; computes in the input's dtype (the shared `conv2d`, under the run's gradient
    rule)."""

    features: int
    kernel_size: int
    groups: int = 1
    padding: int = 0
    gain: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        weight = self.param("weight", msr_init(self.gain), (self.features, x.shape[-1] // self.groups, k, k))
        return conv2d(x, weight, self.groups, (self.padding, self.padding))


class Convolution(nn.Module):
    """R3GAN's Convolution: a `Conv2d` (``Layer``) padded to keep the size."""

    features: int
    kernel_size: int
    groups: int = 1
    gain: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return Conv2d(self.features, self.kernel_size, self.groups, (self.kernel_size - 1) // 2, self.gain,
                      name="Layer")(x)


class BiasedActivation(nn.Module):
    """Learned bias ``Bias`` [C] (init 0), then leaky ReLU 0.2, gain 1."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        bias = self.param("Bias", nn.initializers.zeros, (x.shape[-1],))
        return bias_act(x, bias, act="lrelu", gain=1.0)


def expanded_width(channels: int, expansion_factor: float) -> int:
    """A block's inner width: ``channels * expansion_factor`` (2 inverts the bottleneck, R3GAN; below 1 it
    compresses, the roadmap's config D), which must be a whole number (`check_config` says so)."""
    return round(channels * expansion_factor)


class ResidualBlock(nn.Module):
    """x + LinearLayer3(NonLinearity2(LinearLayer2(NonLinearity1(LinearLayer1(x))))): 1x1 to C * expansion,
    k x k in ``cardinality`` groups, 1x1 back to C (initialised to zero)."""

    cardinality: int
    expansion_factor: float
    kernel_size: int
    gain: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        expanded = expanded_width(channels, self.expansion_factor)
        y = Convolution(expanded, 1, gain=self.gain, name="LinearLayer1")(x)
        y = BiasedActivation(name="NonLinearity1")(y)
        y = Convolution(expanded, self.kernel_size, self.cardinality, self.gain, name="LinearLayer2")(y)
        y = BiasedActivation(name="NonLinearity2")(y)
        return x + Convolution(channels, 1, gain=0.0, name="LinearLayer3")(y)


class UpsampleLayer(nn.Module):
    """A 1x1 conv (``LinearLayer``) when the width changes, then 2x FIR upsampling."""

    features: int
    resampling_filter: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.shape[-1] != self.features:
            x = Convolution(self.features, 1, name="LinearLayer")(x)
        return upsample2d(x, interpolation_filter(self.resampling_filter))


class DownsampleLayer(nn.Module):
    """2x FIR downsampling, then a 1x1 conv (``LinearLayer``) when the width changes."""

    features: int
    resampling_filter: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = downsample2d(x, interpolation_filter(self.resampling_filter))
        if x.shape[-1] != self.features:
            x = Convolution(self.features, 1, name="LinearLayer")(x)
        return x


class GenerativeBasis(nn.Module):
    """x [N, in] -> [N, 4, 4, features]: ``Basis`` [features, 4, 4] (init N(0, 1)) times ``LinearLayer``(x)."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        basis = self.param("Basis", nn.initializers.normal(1.0), (self.features, 4, 4))
        scale = Linear(self.features, name="LinearLayer")(x)
        return jnp.transpose(basis, (1, 2, 0)).astype(x.dtype)[None] * scale[:, None, None, :]


class DiscriminativeBasis(nn.Module):
    """x [N, 4, 4, C] -> [N, features]: a 4x4 depthwise conv without padding (``Basis``), then ``LinearLayer``."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        x = Conv2d(channels, 4, groups=channels, name="Basis")(x)
        return Linear(self.features, name="LinearLayer")(x.reshape(x.shape[0], channels))


class ModuleList(nn.Module):
    """torch's nn.ModuleList run in order: ``layers`` are constructors (e.g. ``functools.partial`` of a module
    class) called with ``name='0'``, ``'1'``, ..., so the parameter paths are torch's."""

    layers: tuple[Callable[..., nn.Module], ...]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, layer in enumerate(self.layers):
            x = layer(name=str(i))(x)
        return x


class Stage(nn.Module):
    """R3GAN's Generator/DiscriminatorStage: casts its input to ``dtype`` and runs its ``Layers``."""

    layers: tuple[Callable[..., nn.Module], ...]
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return ModuleList(self.layers, name="Layers")(x.astype(self.dtype))


def check_config(section: str, module: Generator | Discriminator) -> None:
    """One `ConfigError` line naming ``--config.<section>.<key>`` for a network R3GAN cannot build."""
    stages = len(module.width_per_stage)
    flag = f"--config.{section}"
    for key in ("cardinality_per_stage", "blocks_per_stage"):
        if len(getattr(module, key)) != stages:
            raise ConfigError(f"{flag}.{key} has {len(getattr(module, key))} entries, {flag}.width_per_stage "
                              f"{stages}: give one per stage")
    res = module.img_resolution
    if stages < 1 or 4 * 2 ** (stages - 1) != res:
        need = f"needs {res.bit_length() - 2}" if is_power_of_two(res) else "is not 4 * 2^k: no number of"
        raise ConfigError(f"{flag}.width_per_stage has {stages} stages, which make {4 * 2 ** max(stages - 1, 0)}px "
                          f"images; {res}px {need} stages (4px, doubled by each stage after the first)")
    for width, cardinality in zip(module.width_per_stage, module.cardinality_per_stage, strict=True):
        expanded = width * module.expansion_factor
        if expanded != round(expanded) or expanded < 1:
            raise ConfigError(f"{flag}.expansion_factor {module.expansion_factor} makes {expanded} channels of a "
                              f"{width}-wide stage; expected a whole number")
        if cardinality < 1 or round(expanded) % cardinality:
            raise ConfigError(f"{flag}.cardinality_per_stage: {cardinality} groups do not divide the "
                              f"{round(expanded)} expanded channels of a {width}-wide stage")
    if min(module.blocks_per_stage) < 0 or sum(module.blocks_per_stage) < 1:
        raise ConfigError(f"{flag}.blocks_per_stage must be counts >= 0 with at least one residual block, got "
                          f"{list(module.blocks_per_stage)}")
    if module.kernel_size % 2 == 0:
        raise ConfigError(f"{flag}.kernel_size must be odd, got {module.kernel_size}")
    bad = [s for s in module.fp16_stages if not -stages <= s < stages]
    if bad:
        raise ConfigError(f"{flag}.fp16_stages {bad} are not stage indices of a {stages}-stage network")
    if module.c_dim and module.condition_embedding_dim < 1:
        raise ConfigError(f"{flag}.condition_embedding_dim must be positive for a conditional network "
                          f"(c_dim {module.c_dim}), got {module.condition_embedding_dim}")


def stage_dtypes(num_stages: int, fp16_stages: Sequence[int], force_fp32: bool) -> list[jnp.dtype]:
    """Each stage's compute dtype: `REDUCED_PRECISION` for the ``fp16_stages`` unless ``force_fp32``."""
    reduced = set() if force_fp32 else {s % num_stages for s in fp16_stages}
    return [REDUCED_PRECISION if i in reduced else jnp.float32 for i in range(num_stages)]


class Generator(nn.Module):
    """z [N, z_dim], c [N, c_dim] -> images [N, img_resolution, img_resolution, img_channels] float32 (no
    output squashing, as R3GAN's). ``noise_mode`` is accepted for the common interface and does nothing (R3GAN
    has no noise inputs); ``force_fp32`` computes every stage in float32."""

    z_dim: int
    c_dim: int
    img_resolution: int
    img_channels: int
    width_per_stage: tuple[int, ...]
    cardinality_per_stage: tuple[int, ...]
    blocks_per_stage: tuple[int, ...]
    expansion_factor: float = 2.0
    condition_embedding_dim: int = 0
    kernel_size: int = 3
    resampling_filter: tuple[int, ...] = (1, 2, 1)
    fp16_stages: tuple[int, ...] = ()

    @nn.compact
    def __call__(self, z: jax.Array, c: jax.Array, *, noise_mode: str = "random",
                 force_fp32: bool = False) -> jax.Array:
        del noise_mode
        check_config("G", self)
        x = z.astype(jnp.float32)
        if self.c_dim:
            x = jnp.concatenate([x, Linear(self.condition_embedding_dim, name="EmbeddingLayer")(c)], axis=1)
        dtypes = stage_dtypes(len(self.width_per_stage), self.fp16_stages, force_fp32)
        block_gain = residual_gain(sum(self.blocks_per_stage))
        stages = []
        for i, (width, cardinality, blocks) in enumerate(
                zip(self.width_per_stage, self.cardinality_per_stage, self.blocks_per_stage, strict=True)):
            transition = (functools.partial(GenerativeBasis, width) if i == 0 else
                          functools.partial(UpsampleLayer, width, tuple(self.resampling_filter)))
            block = functools.partial(ResidualBlock, cardinality, self.expansion_factor, self.kernel_size, block_gain)
            stages.append(functools.partial(Stage, (transition, *[block] * blocks), dtypes[i]))
        x = ModuleList(tuple(stages), name="MainLayers")(x)
        return Convolution(self.img_channels, 1, name="AggregationLayer")(x).astype(jnp.float32)


class Discriminator(nn.Module):
    """images [N, img_resolution, img_resolution, img_channels], c [N, c_dim] -> logits [N, 1] float32;
    ``force_fp32`` computes every stage in float32."""

    c_dim: int
    img_resolution: int
    img_channels: int
    width_per_stage: tuple[int, ...]
    cardinality_per_stage: tuple[int, ...]
    blocks_per_stage: tuple[int, ...]
    expansion_factor: float = 2.0
    condition_embedding_dim: int = 0
    kernel_size: int = 3
    resampling_filter: tuple[int, ...] = (1, 2, 1)
    fp16_stages: tuple[int, ...] = ()

    @nn.compact
    def __call__(self, img: jax.Array, c: jax.Array, *, force_fp32: bool = False) -> jax.Array:
        check_config("D", self)
        widths = self.width_per_stage
        dtypes = stage_dtypes(len(widths), self.fp16_stages, force_fp32)
        x = Convolution(widths[0], 1, name="ExtractionLayer")(img.astype(dtypes[0]))
        block_gain = residual_gain(sum(self.blocks_per_stage))
        stages = []
        for i, (cardinality, blocks) in enumerate(zip(self.cardinality_per_stage, self.blocks_per_stage, strict=True)):
            if i + 1 < len(widths):
                transition = functools.partial(DownsampleLayer, widths[i + 1], tuple(self.resampling_filter))
            else:
                transition = functools.partial(DiscriminativeBasis, self.condition_embedding_dim if self.c_dim else 1)
            block = functools.partial(ResidualBlock, cardinality, self.expansion_factor, self.kernel_size, block_gain)
            stages.append(functools.partial(Stage, (*[block] * blocks, transition), dtypes[i]))
        x = ModuleList(tuple(stages), name="MainLayers")(x).astype(jnp.float32)
        if self.c_dim:
            dim = self.condition_embedding_dim
            embedding = Linear(dim, gain=1 / math.sqrt(dim), name="EmbeddingLayer")(c.astype(jnp.float32))
            x = jnp.sum(x * embedding, axis=1, keepdims=True)
        return x


#: R3GAN's train.py presets, G's lists (D takes them reversed): (width_per_stage, cardinality_per_stage,
#: blocks_per_stage, fp16_stages, conditional always), with z_dim 64 and expansion factor 2 throughout.
PRESETS: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], bool]] = {
    "CIFAR10": ((768,) * 4, (96,) * 4, (2,) * 4, (-1, -2, -3), False),
    "FFHQ-64": ((768,) * 4 + (384,), (96,) * 4 + (48,), (2,) * 5, (-1, -2, -3, -4), False),
    "FFHQ-256": ((768,) * 4 + (384, 192, 96), (96,) * 4 + (48, 24, 12), (2,) * 7, (-1, -2, -3, -4), False),
    "ImageNet-32": ((1536,) * 4, (96,) * 4, (2,) * 4, (-1, -2, -3), True),
    "ImageNet-64": ((1536,) * 5, (96,) * 5, (2,) * 5, (-1, -2, -3, -4), True),
}


def preset(name: str, conditional: bool = False) -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """G and D config sections of one of R3GAN's train.py presets (`PRESETS`). ``conditional``: the label
    embeddings train.py sets with ``--cond`` (G: z_dim, D: G's first width); the ImageNet presets always have
    them, and for the FFHQ ones (which R3GAN trains only unconditionally) the same rule applies. Without them
    ``condition_embedding_dim`` is 0 and the networks take no labels."""
    if name not in PRESETS:
        raise ConfigError(f"unknown R3GAN preset {name!r}; expected one of {sorted(PRESETS)}")
    widths, cardinalities, blocks, fp16, always_conditional = PRESETS[name]
    z_dim = 64
    conditional = conditional or always_conditional
    common = dict(expansion_factor=2.0, kernel_size=3, resampling_filter=[1, 2, 1])
    G = ml_collections.ConfigDict(dict(
        z_dim=z_dim, width_per_stage=list(widths), cardinality_per_stage=list(cardinalities),
        blocks_per_stage=list(blocks), fp16_stages=list(fp16), condition_embedding_dim=z_dim if conditional else 0,
        **common))
    D = ml_collections.ConfigDict(dict(
        width_per_stage=list(reversed(widths)), cardinality_per_stage=list(reversed(cardinalities)),
        blocks_per_stage=list(reversed(blocks)), fp16_stages=[s + len(fp16) for s in fp16],
        condition_embedding_dim=widths[0] if conditional else 0, **common))
    return G, D


def config_defaults() -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """G and D sections of R3GAN's FFHQ-256 preset, with label embeddings (used only when the data has labels)."""
    return preset("FFHQ-256", conditional=True)


FAMILY = register(Family("r3gan", Generator, Discriminator, config_defaults))
