"""Resolution bookkeeping shared by every family: the power-of-two check, the blocks of W x H networks
(`stylegan_jax.image_size`) and NVIDIA's two width rules (the TF code's ``nf`` per stage, the PyTorch code's
per-resolution ``min(channel_base // res, channel_max)``)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from stylegan_jax import image_size
from stylegan_jax.errors import ConfigError

Resolution = int | tuple[int, int]  # img_resolution: N (square, NVIDIA's) or (height, width): image_size


def log2_resolution(resolution: int, minimum: int = 4, name: str = "resolution") -> int:
    """log2 of ``resolution``, a power of two >= ``minimum``; else a `ConfigError` naming ``name`` (a network
    asked for an image size it cannot make is the config's error: ``--config.resolution``)."""
    if not image_size.is_power_of_two(resolution, minimum):
        raise ConfigError(f"{name} must be a power of two >= {minimum}, got {resolution} (--config.resolution)")
    return int(np.log2(resolution))


def nominal_resolution(img_resolution: Resolution) -> int:
    """The square resolution whose blocks a network of ``img_resolution`` has (`image_size.nominal`); an
    unsupported size is a `ConfigError` naming it."""
    h, w = image_size.parse(img_resolution)
    if h != w:
        return image_size.nominal(h, w)
    log2_resolution(h, name="img_resolution")
    return h


def block_canvas(img_resolution: Resolution, res: int) -> Resolution:
    """The ``resolution`` of the block the square network calls ``res``: ``res`` itself for a square image,
    else its (height, width) (`image_size.block_shape`)."""
    h, w = image_size.parse(img_resolution)
    return res if h == w else image_size.block_shape(h, w, res)


def block_shape(img_resolution: Resolution, res: int) -> tuple[int, int]:
    """(height, width) of the block the square network calls ``res`` (`block_canvas` as a pair)."""
    return image_size.parse(block_canvas(img_resolution, res))


def nf(stage: int, fmap_base: int, fmap_decay: float = 1.0, fmap_max: int = 512, fmap_min: int = 1) -> int:
    """NVIDIA's TF width rule, the feature maps of a stage: clip(int(fmap_base / 2 ** (stage * fmap_decay)),
    fmap_min, fmap_max).

    Stage ``log2(res) - 1`` is the width of resolution ``res``'s convolutions; stage 0 that of the
    discriminators' dense layer.
    """
    return int(np.clip(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_min, fmap_max))


def channels_per_resolution(resolutions: Iterable[int], channel_base: int, channel_max: int) -> dict[int, int]:
    """NVIDIA's PyTorch width rule, {res: min(channel_base // res, channel_max)} (``nf`` with fmap_base =
    channel_base / 2, fmap_decay 1 and no lower clip)."""
    return {res: min(channel_base // res, channel_max) for res in resolutions}
