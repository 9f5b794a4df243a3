"""FLOP counts for ``pct_of_peak``.

NVIDIA's count of StyleGAN2's G and D per image (multiply-adds x 2 of the convolutions and dense layers as
NVIDIA's code computes them: up-convs as stride-2 transposed convs, down-convs strided), the useful work of the
network cases, so that wasted work is not rewarded; elementwise ops and FIR filters are not counted. And
XLA's count of a jitted call's program (`xla_gflops`), for whole training steps of any family.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def xla_gflops(fn: Callable, *args) -> float:
    """GFLOP of one call ``fn(*args)`` of a jitted function, as XLA's cost analysis counts its lowered
    program (convolutions and dots as multiply-adds x 2 over the kernel taps that meet the input, not the
    padding; elementwise ops included); lowering only, nothing compiles. The optimised program's count
    differs by under 1% for StyleGAN2's training phases (docs/performance.md, "Roofline (CPU)")."""
    costs = fn.lower(*args).cost_analysis()
    return (costs[0] if isinstance(costs, list) else costs)["flops"] / 1e9


def _channels(res: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // res, channel_max)


def generator_gflops(img_resolution: int, img_channels: int = 3, z_dim: int = 512, w_dim: int = 512,
                     mapping_layers: int = 8, channel_base: int = 32768, channel_max: int = 512,
                     architecture: str = "skip") -> float:
    """GFLOP of one G forward pass for one image."""
    macs = (z_dim + (mapping_layers - 1) * w_dim) * w_dim
    top = int(np.log2(img_resolution))
    for log_res in range(2, top + 1):
        res = 2**log_res
        out_ch = _channels(res, channel_base, channel_max)
        layers = [(out_ch, res * res)]  # conv1 at full resolution
        if res > 4:
            in_ch = _channels(res // 2, channel_base, channel_max)
            layers.append((in_ch, res * res // 4))  # conv0: transposed conv, k*k MACs per input pixel
            if architecture == "resnet":
                macs += in_ch * out_ch * res * res // 4
        for in_ch, pixels in layers:
            macs += in_ch * out_ch * 9 * pixels + w_dim * in_ch  # conv + affine
        if architecture == "skip" or res == img_resolution:
            macs += out_ch * img_channels * res * res + w_dim * out_ch  # ToRGB + affine
    return 2 * macs / 1e9


def discriminator_gflops(img_resolution: int, img_channels: int = 3, channel_base: int = 32768,
                         channel_max: int = 512, architecture: str = "resnet", mbstd_num_channels: int = 1) -> float:
    """GFLOP of one D forward pass for one image."""
    macs = 0
    top = int(np.log2(img_resolution))
    for log_res in range(top, 2, -1):
        res = 2**log_res
        tmp, out = _channels(res, channel_base, channel_max), _channels(res // 2, channel_base, channel_max)
        if res == img_resolution or architecture == "skip":
            macs += img_channels * tmp * res * res  # fromrgb
        macs += tmp * tmp * 9 * res * res  # conv0
        macs += tmp * out * 9 * (res // 2) ** 2  # conv1, strided
        if architecture == "resnet":
            macs += tmp * out * (res // 2) ** 2
    ch = _channels(4, channel_base, channel_max)
    macs += (ch + mbstd_num_channels) * ch * 9 * 16 + ch * 16 * ch + ch  # conv, fc, out
    return 2 * macs / 1e9
