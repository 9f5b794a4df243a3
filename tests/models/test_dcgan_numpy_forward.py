"""DCGAN (Radford et al. 2016, class-conditional) forward passes against an independent NumPy float64 reference:
a tiny conditional G (nearest + 3x3 conv and transposed-conv upsampling, batch norm in training and inference
mode, and without normalisation) and D (projection and concatenated labels, batch norm and layer norm), 16x16,
every parameter and running average randomised.

The reference is written from the architecture the module docstring states, not from the module: G is
[z, embed(c)] -> dense to 4x4 (HWC order) -> BN -> ReLU -> per doubling (nearest x2 + 3x3 'same' conv, or a
4x4 stride-2 fractionally strided conv) -> BN -> ReLU, the last layer biased and tanh; batch norm eps 1e-5,
batch statistics over N, H, W with the biased variance in training (running averages updated with momentum
0.9, the variance's unbiased as PyTorch's), the running averages at inference; biases only where no
normalisation follows. D is 4x4 stride-2 convs (padding 1), batch statistics from the second on (D always
normalises with the batch it sees), leaky ReLU 0.2, a dense logit on the HWC-flattened 4x4 features plus
<embed(c), features> (projection) or c as constant input channels (concat). Flax weight layouts: dense
[in, out], conv [kh, kw, in, out]."""

import jax
import numpy as np
import pytest

from stylegan_jax.models.dcgan import Discriminator, Generator
from tests.models.numpy_layers import assert_close, f64, randomized

RES, CH, Z, C_DIM, EMBED, N = 16, 2, 8, 3, 4, 2
SMALL = dict(channel_base=64, channel_max=16)  # 16 channels at 4x4, 8 at 8x8
BN_EPS, BN_MOMENTUM = 1e-5, 0.9
LN_EPS = 1e-6  # flax's LayerNorm default (WGAN-GP's critic option)
D_SLOPE = 0.2


def correlate(x, kernel, stride=1, pad=(1, 1)):
    """Correlation of x [N, H, W, in] with kernel [kh, kw, in, out]: zero padding ``pad`` (before, after) on both
    axes, every ``stride``-th output."""
    x = np.pad(x, ((0, 0), pad, pad, (0, 0)))
    kh, kw = kernel.shape[:2]
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    y = np.zeros((x.shape[0], oh, ow, kernel.shape[-1]))
    for a in range(kh):
        for b in range(kw):
            y += x[:, a : a + oh, b : b + ow] @ kernel[a, b]
    return y[:, ::stride, ::stride]


def upsample(x, layer, mode):
    """'nearest': each pixel repeated 2x2, then a 3x3 conv ('same'); 'transposed': zeros inserted between the
    pixels, padding 2 (torch's ConvTranspose2d(4, stride 2, padding 1)) and a correlation with the 4x4 kernel as
    stored (flax's ConvTranspose layout: torch's kernel flipped)."""
    if mode == "nearest":
        return correlate(np.repeat(np.repeat(x, 2, axis=1), 2, axis=2), layer["kernel"])
    n, h, w, c = x.shape
    u = np.zeros((n, 2 * h - 1, 2 * w - 1, c))
    u[:, ::2, ::2] = x
    return correlate(u, layer["kernel"], pad=(2, 2))


def batch_norm(x, layer, stats=None):
    """Batch statistics over N, H, W (biased variance) unless ``stats`` (running mean, var) are given."""
    mean, var = (x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))) if stats is None else stats
    return (x - mean) / np.sqrt(var + BN_EPS) * layer["scale"] + layer["bias"]


def g_reference(p, buffers, z, c, upsample_mode, norm, train):
    """Returns the image and, for batch norm in training, the running averages after the update."""
    updated = {}

    def normalise(x, name):
        if norm == "none":
            return x
        stats = None if train else (buffers[name]["mean"], buffers[name]["var"])
        if train:
            mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2), ddof=1)  # PyTorch's running variance
            updated[name] = {"mean": BN_MOMENTUM * buffers[name]["mean"] + (1 - BN_MOMENTUM) * mean,
                             "var": BN_MOMENTUM * buffers[name]["var"] + (1 - BN_MOMENTUM) * var}
        return batch_norm(x, p[name], stats)

    def bias(layer):
        return layer["bias"] if "bias" in layer else 0.0

    assert ("bias" in p["fc"]) == (norm == "none")
    x = np.concatenate([z, c @ p["embed"]["kernel"]], axis=1)
    x = (x @ p["fc"]["kernel"] + bias(p["fc"])).reshape(N, 4, 4, -1)
    x = np.maximum(normalise(x, "BatchNorm_0"), 0)
    x = upsample(x, p["b8"], upsample_mode) + bias(p["b8"])
    x = np.maximum(normalise(x, "BatchNorm_1"), 0)
    return np.tanh(upsample(x, p["b16"], upsample_mode) + p["b16"]["bias"]), updated


def d_reference(p, img, c, norm, conditioning):
    x = img
    if conditioning == "concat":
        x = np.concatenate([x, np.broadcast_to(c[:, None, None, :], (*x.shape[:3], C_DIM))], axis=3)
    x = correlate(x, p["b8"]["kernel"], stride=2) + p["b8"]["bias"]  # the first conv: biased, not normalised
    x = np.where(x >= 0, x, D_SLOPE * x)
    x = correlate(x, p["b4"]["kernel"], stride=2)
    assert "bias" not in p["b4"]
    if norm == "batch":
        x = batch_norm(x, p["BatchNorm_0"])
    else:
        ln = p["LayerNorm_0"]
        mean, var = x.mean(axis=(1, 2, 3), keepdims=True), x.var(axis=(1, 2, 3), keepdims=True)
        x = (x - mean) / np.sqrt(var + LN_EPS) * ln["scale"] + ln["bias"]
    x = np.where(x >= 0, x, D_SLOPE * x)
    features = x.reshape(N, -1)  # HWC order
    logits = features @ p["out"]["kernel"] + p["out"]["bias"]
    if conditioning == "projection":
        logits = logits + np.sum((c @ p["embed"]["kernel"]) * features, axis=1, keepdims=True)
    return logits


def inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, Z)).astype(np.float32), np.eye(C_DIM, dtype=np.float32)[[0, 2]]


@pytest.mark.parametrize("upsample_mode, norm, train", [("nearest", "batch", True), ("nearest", "batch", False),
                                                        ("transposed", "batch", True), ("transposed", "none", False)])
def test_generator_matches_numpy(upsample_mode, norm, train):
    G = Generator(z_dim=Z, c_dim=C_DIM, img_resolution=RES, img_channels=CH, upsample=upsample_mode, norm=norm,
                  embed_dim=EMBED, **SMALL)
    z, c = inputs()
    variables = jax.jit(G.init)(jax.random.key(0), z, c)
    params = randomized(variables["params"], seed=1)
    rng = np.random.default_rng(2)  # running averages: any means, positive variances
    buffers = jax.tree_util.tree_map(lambda x: rng.uniform(0.5, 2.0, x.shape).astype(np.float32),
                                     variables.get("buffers", {}))
    buffers = {k: {**v, "mean": v["mean"] - 1.25} for k, v in buffers.items()}
    apply = jax.jit(lambda v: G.apply(v, z, c, train=train, mutable=["buffers"]))
    out, new = apply({"params": params, "buffers": buffers})
    expected, updated = g_reference(f64(params), f64(buffers), np.float64(z), np.float64(c), upsample_mode, norm,
                                    train)
    assert_close(out, expected)
    assert float(np.std(expected)) > 0.03 and float(np.max(np.abs(expected))) < 0.999  # tanh not saturated
    for name, stats in (updated if train else f64(buffers)).items():  # inference leaves the buffers as they are
        for key in ("mean", "var"):
            np.testing.assert_allclose(new["buffers"][name][key], stats[key], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("norm, conditioning", [("batch", "projection"), ("batch", "concat"),
                                                ("layer", "projection")])
def test_discriminator_matches_numpy(norm, conditioning):
    D = Discriminator(c_dim=C_DIM, img_resolution=RES, img_channels=CH, norm=norm, conditioning=conditioning,
                      **SMALL)
    _, c = inputs()
    img = np.random.default_rng(3).standard_normal((N, RES, RES, CH)).astype(np.float32)
    variables = randomized(jax.jit(D.init)(jax.random.key(0), img, c), seed=4)
    assert set(variables) == {"params"}
    out = jax.jit(D.apply)(variables, img, c)
    assert_close(out, d_reference(f64(variables["params"]), np.float64(img), np.float64(c), norm, conditioning))
