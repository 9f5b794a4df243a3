"""Resolution bookkeeping shared by every family: the power-of-two check and NVIDIA's two width rules (the
TF code's ``nf`` per stage, the PyTorch code's per-resolution ``min(channel_base // res, channel_max)``)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def log2_resolution(resolution: int, minimum: int = 4, name: str = "resolution") -> int:
    """log2 of ``resolution``, a power of two >= ``minimum``; else a ValueError naming ``name``."""
    if resolution < minimum or resolution & (resolution - 1):
        raise ValueError(f"{name} must be a power of two >= {minimum}, got {resolution}")
    return int(np.log2(resolution))


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
