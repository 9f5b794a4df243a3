"""Stripped StyleGAN2 (R3GAN's roadmap, Config B) forward passes against an independent NumPy float64
reference: a tiny conditional G (skip and resnet) and D (resnet and skip), 16x16, every parameter randomised.

The reference is written from the module docstring's definition of Config B and stylegan2-ada-pytorch's
layer list, not from the module: plain layers (weights used as stored, no equalised-lr scale), leaky ReLU 0.2
without a runtime gain, the generative basis const * fc(z), output skips with [1, 3, 3, 1] FIR upsampling,
resnet merges with sqrt(0.5) on both branches, no minibatch stddev, and the projection <out, embed(c)> /
sqrt(cmap_dim)."""

import jax
import numpy as np
import pytest

from stylegan_jax.models.stylegan2_stripped import Discriminator, Generator
from tests.models.numpy_layers import (
    assert_close,
    conv,
    downsample_fir,
    f64,
    flatten_nchw,
    lrelu,
    randomized,
    upsample_fir,
)

RES, CH, Z, C_DIM, EMBED, N = 16, 2, 8, 3, 4, 2
SMALL = dict(channel_base=64, channel_max=16)  # widths 16 (4x4), 8 (8x8), 4 (16x16)
SLOPE = 0.2  # leaky ReLU slope, no runtime gain (MSR init instead)
RESNET_GAIN = np.sqrt(0.5)  # each branch of a resnet merge


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N, Z)).astype(np.float32)
    c = np.eye(C_DIM, dtype=np.float32)[[0, 2]]
    return z, c


def act(x, b):
    return lrelu(x + b, SLOPE)


def g_reference(p, z, c, architecture):
    """G: [z, c @ embed.T] -> basis const * (latent @ fc.T) -> per resolution conv0 (up) / conv1 (lrelu), skip or
    resnet, toRGBs (1x1, linear) summed over FIR-upsampled images (skip) or only at the end."""
    s = p["synthesis"]
    latent = np.concatenate([z, c @ p["embed"]["weight"].T], axis=1)
    scale = latent @ s["b4"]["fc"]["weight"].T  # [N, C], no bias
    x = np.transpose(s["b4"]["const"], (1, 2, 0))[None] * scale[:, None, None, :]
    x = act(conv(x, s["b4"]["conv1"]["weight"]), s["b4"]["conv1"]["bias"])
    img = None
    for res in (4, 8, 16):
        b = s[f"b{res}"]
        if res > 4:
            h = act(conv(x, b["conv0"]["weight"], up=2), b["conv0"]["bias"])
            h = act(conv(h, b["conv1"]["weight"]), b["conv1"]["bias"])
            if architecture == "resnet":
                h = RESNET_GAIN * conv(x, b["skip"]["weight"], up=2) + RESNET_GAIN * h
            x = h
            img = None if img is None else upsample_fir(img)
        if architecture == "skip" or res == RES:
            y = conv(x, b["torgb"]["weight"]) + b["torgb"]["bias"]
            img = y if img is None else img + y
    return img


def d_reference(p, img, c, architecture):
    """D: fromrgb (1x1, lrelu) at 16x16 (every resolution and the epilogue for skip, the image FIR-downsampled),
    blocks conv0 (3x3) and conv1 (3x3, FIR down), resnet skips (1x1 FIR down, no bias); the 4x4 epilogue without
    mbstd: conv, fc on the NCHW flattening, out [cmap_dim], projection onto embed(c)."""
    x = None
    for res in (16, 8):
        b = p[f"b{res}"]
        if x is None or architecture == "skip":
            y = act(conv(img, b["fromrgb"]["weight"]), b["fromrgb"]["bias"])
            x = y if x is None else x + y
            img = downsample_fir(img)
        h = act(conv(x, b["conv0"]["weight"]), b["conv0"]["bias"])
        h = act(conv(h, b["conv1"]["weight"], down=2), b["conv1"]["bias"])
        if architecture == "resnet":
            h = RESNET_GAIN * conv(x, b["skip"]["weight"], down=2) + RESNET_GAIN * h
        x = h
    e = p["b4"]
    if architecture == "skip":
        x = x + act(conv(img, e["fromrgb"]["weight"]), e["fromrgb"]["bias"])
    x = act(conv(x, e["conv"]["weight"]), e["conv"]["bias"])
    x = act(flatten_nchw(x) @ e["fc"]["weight"].T, e["fc"]["bias"])
    out = x @ e["out"]["weight"].T + e["out"]["bias"]
    cmap = c @ p["embed"]["weight"].T
    return np.sum(out * cmap, axis=1, keepdims=True) / np.sqrt(cmap.shape[1])


@pytest.mark.parametrize("architecture", ["skip", "resnet"])
def test_generator_matches_numpy(architecture):
    G = Generator(z_dim=Z, c_dim=C_DIM, img_resolution=RES, img_channels=CH, architecture=architecture,
                  embed_dim=EMBED, **SMALL)
    z, c = inputs()
    variables = randomized(jax.jit(G.init)(jax.random.key(0), z, c), seed=1)
    assert set(variables) == {"params"}
    out = jax.jit(G.apply)(variables, z, c)
    assert_close(out, g_reference(f64(variables["params"]), np.float64(z), np.float64(c), architecture))


@pytest.mark.parametrize("architecture", ["resnet", "skip"])
def test_discriminator_matches_numpy(architecture):
    D = Discriminator(c_dim=C_DIM, img_resolution=RES, img_channels=CH, architecture=architecture, **SMALL)
    _, c = inputs()
    img = np.random.default_rng(2).standard_normal((N, RES, RES, CH)).astype(np.float32)
    variables = randomized(jax.jit(D.init)(jax.random.key(0), img, c), seed=3)
    out = jax.jit(D.apply)(variables, img, c)
    assert_close(out, d_reference(f64(variables["params"]), np.float64(img), np.float64(c), architecture))
