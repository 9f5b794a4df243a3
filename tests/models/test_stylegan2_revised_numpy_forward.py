"""The StyleGAN2 paper's configs B-D networks (G_mapping + G_synthesis_stylegan_revised, D_stylegan) forward
passes against an independent NumPy float64 reference: a tiny conditional G (mapping, and the synthesis with a
distinct w per layer, at 8x8 and 16x16) and D (16x16 and 8x8, with and without fade-in), every parameter and
noise input randomised.

The reference is written from NVIDIA's TF ``training/networks_stylegan2.py`` (NVlabs/stylegan2), not from the
module: equalised-lr weights (gain 1 / sqrt(fan_in), mapping lrmul 0.01 on weights and biases), 2nd-moment
normalisation (eps 1e-8), modulation s = affine(w) (the stored affine bias is NVIDIA's mod_bias + 1, as
stylegan2-ada-pytorch's legacy.py imports it), demodulation rsqrt(sum w'^2 + 1e-8), noise * strength, bias,
lrelu 0.2 with gain sqrt(2), toRGB reading w[2 log2(r) - 3] without demodulation, D's box-downsampled fade-in,
minibatch stddev (eps 1e-8) and the per-class output. Departure kept from the module: labels are embedded as
stylegan2-ada-pytorch does (``embed``, normalised separately), not TF's LabelConcat."""

import jax
import numpy as np
import pytest

from stylegan_jax.models import stylegan2_revised as revised
from tests.models.numpy_layers import assert_close, box_down, conv, f64, flatten_nchw, lrelu, randomized

RES, CH, Z, W_DIM, FMAPS, C_DIM = 16, 2, 8, 6, 5, 3
SMALL = dict(fmap_base=64, fmap_max=16)  # nf(1) = 16 (4x4), nf(2) = 16 (8x8), nf(3) = 8 (16x16)
LRELU_GAIN, SLOPE = np.sqrt(2), 0.2
MAPPING_LRMUL = 0.01
EPS = 1e-8  # latent normalisation, demodulation and minibatch stddev


def act(x, b, lrmul=1.0):
    """NVIDIA's apply_bias_act(act='lrelu'): lrelu(x + b * lrmul, 0.2) * sqrt(2)."""
    return lrelu(x + b * lrmul, SLOPE) * LRELU_GAIN


def dense(x, layer, lrmul=1.0):
    """NVIDIA's dense_layer with equalised lr: x @ (W * lrmul / sqrt(fan_in)).T (torch layout [out, in])."""
    return x @ (layer["weight"] * lrmul / np.sqrt(x.shape[1])).T


def normalize(x):
    return x / np.sqrt(np.mean(x**2, axis=1, keepdims=True) + EPS)


def build(c_dim=C_DIM, mbstd_group_size=2):
    G = revised.Generator(z_dim=Z, c_dim=c_dim, w_dim=W_DIM, img_resolution=RES, img_channels=CH,
                          mapping_layers=2, mapping_fmaps=FMAPS, **SMALL)
    D = revised.Discriminator(c_dim=c_dim, img_resolution=RES, img_channels=CH, mbstd_group_size=mbstd_group_size,
                              **SMALL)
    return G, D


def mapping_reference(p, z, c):
    """z and embed(c) (a biased equalised-lr layer) each normalised, concatenated, 2 lrelu layers at lrmul 0.01."""
    x = np.concatenate([normalize(z), normalize(dense(c, p["embed"]) + p["embed"]["bias"])], axis=1)
    for name in ("fc0", "fc1"):
        x = act(dense(x, p[name], MAPPING_LRMUL), p[name]["bias"], MAPPING_LRMUL)
    return x


def modconv(x, w, layer, demodulate=True, up=1):
    """NVIDIA's modulated_conv2d_layer for each sample: styles from the affine (gain 1, lr 1), weight scaled by
    1 / sqrt(fan_in) and by the styles over its inputs, demodulated over (in, kh, kw)."""
    weight = layer["weight"]
    styles = dense(w, layer["affine"]) + layer["affine"]["bias"]  # [N, in]
    ww = weight[None] / np.sqrt(np.prod(weight.shape[1:])) * styles[:, None, :, None, None]
    if demodulate:
        ww = ww / np.sqrt(np.sum(ww**2, axis=(2, 3, 4), keepdims=True) + EPS)
    return np.concatenate([conv(x[i : i + 1], ww[i], up=up) for i in range(x.shape[0])])


def synthesis_layer(x, w, layer, noise, up=1):
    x = modconv(x, w, layer, up=up) + noise[None, :, :, None] * layer["noise_strength"]
    return act(x, layer["bias"])


def synthesis_reference(p, buffers, ws, res):
    """const -> 4x4 conv (ws 0) -> per resolution 2**s conv0 up (ws 2s - 5), conv1 (ws 2s - 4) -> toRGB of the last
    resolution (ws 2s - 3, no demodulation, linear bias)."""
    x = np.broadcast_to(np.transpose(p["b4"]["const"], (1, 2, 0))[None], (ws.shape[0], 4, 4, p["b4"]["const"].shape[0]))
    x = synthesis_layer(x, ws[:, 0], p["b4"]["conv1"], buffers["b4"]["conv1"]["noise_const"])
    s_last = int(np.log2(res))
    for s in range(3, s_last + 1):
        b, noise = p[f"b{2**s}"], buffers[f"b{2**s}"]
        x = synthesis_layer(x, ws[:, 2 * s - 5], b["conv0"], noise["conv0"]["noise_const"], up=2)
        x = synthesis_layer(x, ws[:, 2 * s - 4], b["conv1"], noise["conv1"]["noise_const"])
    torgb = p[f"torgb{res}"]
    return modconv(x, ws[:, 2 * s_last - 3], torgb, demodulate=False) + torgb["bias"]


def fromrgb(p, img, res):
    layer = p[f"fromrgb{res}"]
    return act(conv(img, layer["weight"] / np.sqrt(img.shape[-1])), layer["bias"])


def mbstd(x, group_size):
    """NVIDIA's minibatch_stddev_layer (one feature): sample i is in group slot i // M, statistics of i % M."""
    n = x.shape[0]
    g = min(group_size, n)
    y = x.reshape(g, n // g, *x.shape[1:])
    y = np.sqrt(np.mean((y - y.mean(axis=0)) ** 2, axis=0) + EPS).mean(axis=(1, 2, 3))  # [M]
    y = np.tile(y, g)[:, None, None, None] * np.ones((*x.shape[:3], 1))
    return np.concatenate([x, y], axis=-1)


def d_reference(p, img, c, alpha, group_size):
    """D_stylegan: fromrgb (1x1), per resolution conv0 (3x3) and conv1 (3x3, FIR down), all with bias, lrelu and
    gain sqrt(2) after the activation; fade-in from the box-downsampled image's fromrgb; mbstd, conv, dense on
    the NCHW flattening, linear output with one score per class, the given class's kept."""
    res = img.shape[1]
    x = fromrgb(p, img, res)
    for s in range(int(np.log2(res)), 2, -1):
        w0, w1 = p[f"b{2**s}_conv0"], p[f"b{2**s}_conv1"]
        x = act(conv(x, w0["weight"] / np.sqrt(9 * x.shape[-1])), w0["bias"])
        x = act(conv(x, w1["weight"] / np.sqrt(9 * x.shape[-1]), down=2), w1["bias"])
        if 2**s == res and alpha != 1:
            x = alpha * x + (1 - alpha) * fromrgb(p, box_down(img), res // 2)
    x = mbstd(x, group_size)
    x = act(conv(x, p["b4_conv"]["weight"] / np.sqrt(9 * x.shape[-1])), p["b4_conv"]["bias"])
    x = act(dense(flatten_nchw(x), p["b4_fc"]), p["b4_fc"]["bias"])
    out = dense(x, p["b4_out"]) + p["b4_out"]["bias"]
    return np.sum(out * c, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def generator():
    G, _ = build()
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, Z)).astype(np.float32)
    c = np.eye(C_DIM, dtype=np.float32)[[1, 2]]
    variables = randomized(jax.jit(G.init)(jax.random.key(0), z, c), seed=1)
    return G, variables, z, c


def test_mapping_matches_numpy(generator):
    G, variables, z, c = generator
    ws = jax.jit(lambda v: G.apply(v, z, c, method="map"))(variables)
    w = mapping_reference(f64(variables["params"]["mapping"]), np.float64(z), np.float64(c))
    assert_close(ws, np.broadcast_to(w[:, None], (2, 6, W_DIM)))


@pytest.mark.parametrize("res", [8, 16])
def test_synthesis_matches_numpy_with_a_w_per_layer(generator, res):
    G, variables, _, _ = generator
    ws = np.random.default_rng(2).standard_normal((2, 6, W_DIM)).astype(np.float32)
    out = jax.jit(lambda v, ws: G.apply(v, ws, "const", resolution=res, method="synthesize"))(variables, ws)
    expected = synthesis_reference(f64(variables["params"]["synthesis"]), f64(variables["buffers"]["synthesis"]),
                                   np.float64(ws), res)
    assert_close(out, expected)


def test_generator_end_to_end_matches_numpy(generator):
    G, variables, z, c = generator
    out = jax.jit(lambda v: G.apply(v, z, c, noise_mode="const"))(variables)
    p, buffers = f64(variables["params"]), f64(variables["buffers"])
    w = mapping_reference(p["mapping"], np.float64(z), np.float64(c))
    assert_close(out, synthesis_reference(p["synthesis"], buffers["synthesis"], np.repeat(w[:, None], 6, 1), RES))


@pytest.mark.parametrize("res, alpha", [(16, 1.0), (16, 0.3), (8, 0.6)])
def test_discriminator_matches_numpy(res, alpha):
    _, D = build()
    rng = np.random.default_rng(3)
    img = rng.standard_normal((4, res, res, CH)).astype(np.float32)
    c = np.eye(C_DIM, dtype=np.float32)[[0, 2, 1, 2]]
    variables = randomized(jax.jit(D.init)(jax.random.key(0), np.zeros((4, RES, RES, CH), np.float32), c), seed=4)
    out = jax.jit(lambda v, img, a: D.apply(v, img, c, alpha=a))(variables, img, np.float32(alpha))
    assert_close(out, d_reference(f64(variables["params"]), np.float64(img), np.float64(c), alpha, group_size=2))
