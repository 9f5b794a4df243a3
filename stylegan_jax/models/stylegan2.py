"""StyleGAN2 generator and discriminator (Karras et al. 2020) as Flax modules, with the argument names,
defaults, parameter names and shapes of NVIDIA's stylegan2-ada-pytorch ``training/networks.py``.

Variables: ``params`` (trainable) and ``buffers`` (``mapping/w_avg`` and each synthesis layer's
``noise_const``). Layers that NVIDIA runs in float16 (the ``num_fp16_res`` highest resolutions, with
``conv_clamp``) compute in bfloat16 here; parameters stay float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np
from ml_collections import config_dict

from stylegan_jax import image_size
from stylegan_jax.models.registry import Family, register
from stylegan_jax.nn.discriminator import DiscriminatorBlock, DiscriminatorEpilogue
from stylegan_jax.nn.mapping import MappingNetwork
from stylegan_jax.nn.resolution import (
    Resolution,
    block_canvas,
    channels_per_resolution,
    log2_resolution,
    nominal_resolution,
)
from stylegan_jax.nn.synthesis import SynthesisBlock


def fp16_resolution(img_resolution: int, num_fp16_res: int) -> int:
    """The lowest resolution that runs in reduced precision (NVIDIA: never below 8)."""
    return max(2 ** (int(np.log2(img_resolution)) + 1 - num_fp16_res), 8)


def synthesis_num_ws(img_resolution: Resolution, architecture: str = "skip") -> int:
    """Number of ws the synthesis network consumes: one per conv, plus the last block's ToRGB."""
    return 2 * (log2_resolution(nominal_resolution(img_resolution), name="img_resolution") - 2) + 1 + 1


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, H, W, img_channels] float32: H = W = ``img_resolution``, or
    ``img_resolution`` = (H, W) for non-square images (the blocks of the square network of
    `nominal_resolution`, each on its (h, w) canvas)."""

    w_dim: int
    img_resolution: Resolution
    img_channels: int
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    architecture: str = "skip"
    conv_clamp: float | None = None
    use_noise: bool = True
    fused_modconv: bool | None = None

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(2, log2_resolution(nominal_resolution(self.img_resolution)) + 1)]

    @property
    def num_ws(self) -> int:
        return synthesis_num_ws(self.img_resolution, self.architecture)

    @nn.compact
    def __call__(self, ws: jax.Array, noise_mode: str = "random", force_fp32: bool = False) -> jax.Array:
        nominal = nominal_resolution(self.img_resolution)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {ws.shape}")
        ws = ws.astype(np.float32)
        channels = channels_per_resolution(self.block_resolutions, self.channel_base, self.channel_max)
        fp16_res = fp16_resolution(nominal, self.num_fp16_res)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                in_channels=channels[res // 2] if res > 4 else 0, out_channels=channels[res],
                resolution=block_canvas(self.img_resolution, res), img_channels=self.img_channels,
                is_last=(res == nominal),
                architecture=self.architecture, conv_clamp=self.conv_clamp, use_fp16=(res >= fp16_res),
                use_noise=self.use_noise, fused=self.fused_modconv, name=f"b{res}",
            )
            width = block.num_conv + block.num_torgb
            x, img = block(x, img, ws[:, w_idx : w_idx + width], noise_mode, force_fp32)
            w_idx += block.num_conv
        return img


class Generator(nn.Module):
    """z [N, z_dim], c [N, c_dim] -> images [N, H, W, img_channels] in [-1, 1]-ish (`SynthesisNetwork`).

    ``G.apply(variables, z, c, truncation_psi, truncation_cutoff, noise_mode, rngs={'noise': key})``;
    ``method=Generator.map`` gives ws, ``method=Generator.synthesize`` turns ws into images.
    """

    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: Resolution
    img_channels: int
    mapping_kwargs: Mapping[str, Any] = None
    synthesis_kwargs: Mapping[str, Any] = None

    def setup(self) -> None:
        self.synthesis = SynthesisNetwork(w_dim=self.w_dim, img_resolution=self.img_resolution,
                                          img_channels=self.img_channels, **(self.synthesis_kwargs or {}))
        self.mapping = MappingNetwork(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim,
                                      num_ws=self.num_ws, **(self.mapping_kwargs or {}))

    @property
    def num_ws(self) -> int:
        return synthesis_num_ws(self.img_resolution, (self.synthesis_kwargs or {}).get("architecture", "skip"))

    def map(self, z, c, truncation_psi=1.0, truncation_cutoff=None, update_emas: bool = False) -> jax.Array:
        """z, c -> ws [N, num_ws, w_dim]."""
        return self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas)

    def synthesize(self, ws, noise_mode: str = "random", force_fp32: bool = False) -> jax.Array:
        """ws [N, num_ws, w_dim] -> images."""
        return self.synthesis(ws, noise_mode, force_fp32)

    def __call__(self, z, c, truncation_psi=1.0, truncation_cutoff=None, noise_mode: str = "random",
                 update_emas: bool = False, force_fp32: bool = False) -> jax.Array:
        ws = self.map(z, c, truncation_psi, truncation_cutoff, update_emas)
        return self.synthesize(ws, noise_mode, force_fp32)


class Discriminator(nn.Module):
    """images [N, H, W, img_channels], c [N, c_dim] -> logits [N, 1] float32; H = W = ``img_resolution``, or
    ``img_resolution`` = (H, W) (the blocks of the square D of `nominal_resolution` on (h, w) canvases, the
    epilogue on the base's h0 x w0)."""

    c_dim: int
    img_resolution: Resolution
    img_channels: int
    architecture: str = "resnet"
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    cmap_dim: int | None = None
    block_kwargs: Mapping[str, Any] = None
    mapping_kwargs: Mapping[str, Any] = None
    epilogue_kwargs: Mapping[str, Any] = None

    @nn.compact
    def __call__(self, img: jax.Array, c: jax.Array | None, force_fp32: bool = False) -> jax.Array:
        nominal = nominal_resolution(self.img_resolution)
        log2_img = log2_resolution(nominal)
        expected = (*image_size.parse(self.img_resolution), self.img_channels)
        if img.ndim != 4 or img.shape[1:] != expected:
            raise ValueError(f"D expects images [N, {', '.join(map(str, expected))}], got {img.shape}")
        block_resolutions = [2**i for i in range(log2_img, 2, -1)]
        channels = channels_per_resolution(block_resolutions + [4], self.channel_base, self.channel_max)
        fp16_res = fp16_resolution(nominal, self.num_fp16_res)
        cmap_dim = (channels[4] if self.cmap_dim is None else self.cmap_dim) if self.c_dim else 0
        common = dict(img_channels=self.img_channels, architecture=self.architecture, conv_clamp=self.conv_clamp)
        x = None
        for res in block_resolutions:
            block = DiscriminatorBlock(
                in_channels=channels[res] if res < nominal else 0, tmp_channels=channels[res],
                out_channels=channels[res // 2], resolution=block_canvas(self.img_resolution, res),
                use_fp16=(res >= fp16_res), name=f"b{res}", **(self.block_kwargs or {}), **common,
            )
            x, img = block(x, img, force_fp32)
        cmap = None
        if self.c_dim > 0:
            cmap = MappingNetwork(z_dim=0, c_dim=self.c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                  name="mapping", **(self.mapping_kwargs or {}))(None, c)
        epilogue = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=block_canvas(
                                         self.img_resolution, 4), name="b4",
                                         **(self.epilogue_kwargs or {}), **common)
        return epilogue(x, img, cmap)


def config_defaults() -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """G and D sections as stylegan2-ada-pytorch's ``train.py`` sets them (its ``stylegan2`` config), flat.

    ``network_kwargs`` sorts each key into NVIDIA's nesting: the mapping's (``mapping_layers`` ->
    ``num_layers``, ``mapping_lr_multiplier`` -> ``lr_multiplier``, ``w_avg_beta``), the synthesis's (widths,
    ``architecture``, ``num_fp16_res``, ``conv_clamp``, ``use_noise``, ``fused_modconv``: None lets the
    backend choose) and D's epilogue's (``mbstd_*``); ``cmap_dim`` None is D's 4x4 width.
    """
    G = ml_collections.ConfigDict(dict(
        z_dim=512, w_dim=512, mapping_layers=8, mapping_lr_multiplier=0.01, w_avg_beta=0.995, channel_base=32768,
        channel_max=512, architecture="skip", num_fp16_res=4, conv_clamp=config_dict.placeholder(int),
        use_noise=True, fused_modconv=config_dict.placeholder(bool),
    ))
    G.conv_clamp = 256
    D = ml_collections.ConfigDict(dict(
        architecture="resnet", channel_base=32768, channel_max=512, num_fp16_res=4,
        conv_clamp=config_dict.placeholder(int), cmap_dim=config_dict.placeholder(int), mbstd_group_size=4,
        mbstd_num_channels=1,
    ))
    D.conv_clamp = 256
    return G, D


def network_kwargs(cfg: ml_collections.ConfigDict, c_dim: int) -> tuple[dict, dict]:
    """(G kwargs, D kwargs) in NVIDIA's nesting from the flat ``cfg.G`` / ``cfg.D``, plus ``c_dim``,
    ``img_resolution``, ``img_channels`` (JSON-able): the mapping keys go to ``mapping_kwargs``, every other G
    key to ``synthesis_kwargs``; the ``mbstd_*`` keys to D's ``epilogue_kwargs``, every other D key to D."""
    g = cfg.G.to_dict()
    mapping = dict(num_layers=g.pop("mapping_layers"), lr_multiplier=g.pop("mapping_lr_multiplier"),
                   w_avg_beta=g.pop("w_avg_beta"))
    G_kwargs = dict(z_dim=g.pop("z_dim"), c_dim=c_dim, w_dim=g.pop("w_dim"),
                    img_resolution=image_size.network_resolution(cfg.resolution), img_channels=cfg.img_channels,
                    mapping_kwargs=mapping, synthesis_kwargs=g)
    return G_kwargs, discriminator_kwargs(cfg, c_dim)


def discriminator_kwargs(cfg: ml_collections.ConfigDict, c_dim: int) -> dict:
    """D's kwargs from the flat ``cfg.D``: the ``mbstd_*`` keys go to ``epilogue_kwargs``, the rest to D."""
    d = cfg.D.to_dict()
    epilogue = dict(mbstd_group_size=d.pop("mbstd_group_size"), mbstd_num_channels=d.pop("mbstd_num_channels"))
    return dict(c_dim=c_dim, img_resolution=image_size.network_resolution(cfg.resolution),
                img_channels=cfg.img_channels, **d,
                epilogue_kwargs=epilogue)


def discriminator_layers(d_params: dict) -> list[str]:
    """D's layers as NVIDIA's ``freeze_layers`` counts them: the blocks from the highest resolution down, each
    block's fromrgb, conv0, conv1 and skip in that order; the 4x4 epilogue (``b4``) is never frozen."""
    blocks = sorted((name for name in d_params if name.startswith("b") and name != "b4"), key=lambda b: -int(b[1:]))
    return [f"{block}/{layer}" for block in blocks for layer in ("fromrgb", "conv0", "conv1", "skip")
            if layer in d_params[block]]


FAMILY = register(Family("stylegan2", Generator, Discriminator, config_defaults, network_kwargs, has_mapping=True,
                         d_layers=discriminator_layers, non_square=True))
