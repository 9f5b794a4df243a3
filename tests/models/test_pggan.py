"""PGGAN (NVIDIA's G_paper / D_paper): pixel norm and the fade-in blends against NumPy float64, shapes while
growing, NVIDIA's parameter count, a jitted apply sharded over 4 devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from stylegan_jax.models import pggan
from stylegan_jax.nn.progressive import pixel_norm

RES, CH, Z, C_DIM = 16, 3, 8, 3
SMALL = dict(fmap_base=64, fmap_max=16)


def build(c_dim=C_DIM):
    G = pggan.Generator(z_dim=Z, c_dim=c_dim, img_resolution=RES, img_channels=CH, **SMALL)
    D = pggan.Discriminator(c_dim=c_dim, img_resolution=RES, img_channels=CH, **SMALL)
    return G, D


def inputs(n=4, seed=0):
    kz, kc = jax.random.split(jax.random.key(seed))
    return jax.random.normal(kz, (n, Z)), jax.nn.one_hot(jax.random.randint(kc, (n,), 0, C_DIM), C_DIM)


def count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


def perturbed(variables, seed=1):
    """Every parameter moved away from its initialisation (biases are zero at init)."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda x: x + np.float32(0.3) * rng.standard_normal(x.shape, np.float32), variables)


def test_pixel_norm_matches_numpy_float64():
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 5)) * 3
    expected = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-8)
    np.testing.assert_allclose(pixel_norm(jnp.asarray(x, jnp.float32)), expected, rtol=1e-5, atol=1e-6)
    y = np.zeros((1, 2), np.float32)  # eps keeps zero vectors at zero (not 0/0)
    np.testing.assert_array_equal(pixel_norm(jnp.asarray(y)), y)


def test_generator_fade_in_blends_torgb_outputs_as_numpy():
    G, _ = build()
    z, c = inputs()
    v = perturbed(jax.jit(G.init)(jax.random.key(0), z, c))
    new = np.float64(G.apply(v, z, c, resolution=8))  # toRGB_8(block_8(x)): alpha 1
    old = np.float64(G.apply(v, z, c, resolution=4))  # toRGB_4(x)
    alpha = 0.3
    expected = alpha * new + (1 - alpha) * old.repeat(2, axis=1).repeat(2, axis=2)
    got = G.apply(v, z, c, resolution=8, alpha=jnp.float32(alpha))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, new, atol=1e-3)


def lrelu(x):
    return np.where(x >= 0, x, 0.2 * x)


def test_discriminator_fade_in_blends_features_as_numpy():
    _, D = build()
    img = jax.random.normal(jax.random.key(2), (4, 8, 8, CH))
    _, c = inputs()
    v = perturbed(jax.jit(D.init)(jax.random.key(0), jnp.zeros((4, RES, RES, CH)), c))
    alpha = 0.25
    _, state = D.apply(v, img, c, alpha=jnp.float32(alpha), capture_intermediates=True)
    inter = state["intermediates"]
    new = np.float64(inter["b8_conv1"]["__call__"][0])  # [N, 4, 4, C]: block 8's output
    # fromrgb4 on the box-downsampled image, in NumPy: lrelu(x W * sqrt(2) / sqrt(fan_in) + b)
    p = v["params"]["fromrgb4"]
    small = np.float64(img).reshape(4, 4, 2, 4, 2, CH).mean(axis=(2, 4))
    old = lrelu(small @ (np.float64(p["weight"][:, :, 0, 0]) * np.sqrt(2) / np.sqrt(CH)).T + np.float64(p["bias"]))
    blended = np.float64(inter["mbstd"]["__call__"][0])[..., :-1]  # mbstd appends one feature to its input
    np.testing.assert_allclose(blended, alpha * new + (1 - alpha) * old, rtol=1e-5, atol=1e-5)


def conv_nchw(x, w, b, gain, act=True):
    """NVIDIA's equalised-lr 'SAME' conv on NCHW float64; w [out, in, k, k]."""
    k, (h, wd) = w.shape[-1], x.shape[2:]
    w = np.float64(w) * gain / np.sqrt(w.shape[1] * k * k)
    xp = np.pad(x, ((0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2)))
    y = sum(np.einsum("nihw,oi->nohw", xp[:, :, dy : dy + h, dx : dx + wd], w[:, :, dy, dx])
            for dy in range(k) for dx in range(k))
    y = y + np.float64(b)[None, :, None, None]
    return lrelu(y) if act else y


def pn_nchw(x):
    return x / np.sqrt(np.mean(x**2, axis=1, keepdims=True) + 1e-8)


def test_full_resolution_networks_match_g_paper_and_d_paper_in_numpy():
    """NVIDIA's G_paper / D_paper (fused_scale=True: D activates after the box downsampling) in float64."""
    G, D = build()
    z, c = inputs()
    g = jax.tree_util.tree_map(np.float64, perturbed(jax.jit(G.init)(jax.random.key(0), z, c))["params"])
    x = pn_nchw(np.concatenate([np.float64(z), np.float64(c)], axis=1))
    x = x @ (g["b4_dense"]["weight"].T * (np.sqrt(2) / 4) / np.sqrt(x.shape[1]))
    x = pn_nchw(lrelu(x.reshape(4, 16, 4, 4) + g["b4_bias"][None, :, None, None]))
    x = pn_nchw(conv_nchw(x, g["b4_conv"]["weight"], g["b4_conv"]["bias"], np.sqrt(2)))
    for r in (8, 16):
        x = x.repeat(2, axis=2).repeat(2, axis=3)
        for name in ("conv0", "conv1"):
            x = pn_nchw(conv_nchw(x, g[f"b{r}_{name}"]["weight"], g[f"b{r}_{name}"]["bias"], np.sqrt(2)))
    img = conv_nchw(x, g["torgb16"]["weight"], g["torgb16"]["bias"], 1.0, act=False)
    got = G.apply({"params": jax.tree_util.tree_map(np.float32, g)}, z, c)
    np.testing.assert_allclose(got, img.transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4 * np.abs(img).max())

    d = jax.tree_util.tree_map(np.float64, perturbed(jax.jit(D.init)(jax.random.key(0), got, c), seed=2)["params"])
    x = conv_nchw(np.float64(got).transpose(0, 3, 1, 2), d["fromrgb16"]["weight"], d["fromrgb16"]["bias"], np.sqrt(2))
    for r in (16, 8):
        x = conv_nchw(x, d[f"b{r}_conv0"]["weight"], d[f"b{r}_conv0"]["bias"], np.sqrt(2))
        y = conv_nchw(x, d[f"b{r}_conv1"]["weight"], 0 * d[f"b{r}_conv1"]["bias"], np.sqrt(2), act=False)
        y = y.reshape(4, y.shape[1], r // 2, 2, r // 2, 2).mean(axis=(3, 5))
        x = lrelu(y + d[f"b{r}_conv1"]["bias"][None, :, None, None])
    std = np.sqrt(np.mean((x.reshape(4, 1, 16, 4, 4) - x.reshape(4, 1, 16, 4, 4).mean(axis=0)) ** 2, axis=0) + 1e-8)
    x = np.concatenate([x, np.broadcast_to(std.mean(axis=(1, 2, 3))[:, None, None, None], (4, 1, 4, 4))], axis=1)
    x = conv_nchw(x, d["b4_conv"]["weight"], d["b4_conv"]["bias"], np.sqrt(2)).reshape(4, -1)
    x = lrelu(x @ (d["b4_dense0"]["weight"].T * np.sqrt(2) / np.sqrt(x.shape[1])) + d["b4_dense0"]["bias"])
    x = x @ (d["b4_dense1"]["weight"].T / np.sqrt(x.shape[1])) + d["b4_dense1"]["bias"]
    expected = np.sum(x * np.float64(c), axis=1, keepdims=True)  # the given class's score
    np.testing.assert_allclose(D.apply({"params": jax.tree_util.tree_map(np.float32, d)}, got, c), expected,
                               rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("res", [4, 8, 16])
def test_shapes_at_every_resolution(res):
    G, D = build()
    z, c = inputs(n=2)
    g_vars = jax.eval_shape(lambda: G.init(jax.random.key(0), z, c))
    img = jax.eval_shape(lambda v: G.apply(v, z, c, resolution=res, alpha=0.5), g_vars)
    assert img.shape == (2, res, res, CH) and img.dtype == jnp.float32
    d_vars = jax.eval_shape(lambda: D.init(jax.random.key(0), jnp.zeros((2, RES, RES, CH)), c))
    logits = jax.eval_shape(lambda v: D.apply(v, jnp.zeros(img.shape), c, alpha=0.5), d_vars)
    assert logits.shape == (2, 1)


def test_wrong_resolution_is_a_clear_error():
    G, D = build()
    z, c = inputs(n=2)
    g_vars = jax.eval_shape(lambda: G.init(jax.random.key(0), z, c))
    with pytest.raises(ValueError, match="outside"):
        jax.eval_shape(lambda v: G.apply(v, z, c, resolution=32), g_vars)
    with pytest.raises(ValueError, match="power of two"):
        jax.eval_shape(lambda v: G.apply(v, z, c, resolution=12), g_vars)


def nvidia_parameter_counts(res_log2, z_dim, c_dim, channels, nf):
    """G_paper / D_paper trainable parameters (D_paper's output has 1 + label_size units; ours
    max(label_size, 1))."""
    g = (z_dim + c_dim) * nf(1) * 16 + nf(1) + 9 * nf(1) ** 2 + nf(1)
    d = (nf(1) + 1) * nf(1) * 9 + nf(1) + 16 * nf(1) * nf(0) + nf(0) + nf(0) * max(c_dim, 1) + max(c_dim, 1)
    for r in range(2, res_log2 + 1):
        g += nf(r - 1) * channels + channels  # toRGB
        d += channels * nf(r - 1) + nf(r - 1)  # fromRGB
    for r in range(3, res_log2 + 1):
        g += 9 * nf(r - 2) * nf(r - 1) + nf(r - 1) + 9 * nf(r - 1) ** 2 + nf(r - 1)
        d += 9 * nf(r - 1) ** 2 + nf(r - 1) + 9 * nf(r - 1) * nf(r - 2) + nf(r - 2)
    return g, d


@pytest.mark.parametrize("fmap_base, fmap_max, res", [(64, 16, 16), (8192, 512, 32)])
def test_parameter_count_equals_nvidias_formula(fmap_base, fmap_max, res):
    G = pggan.Generator(z_dim=512, c_dim=C_DIM, img_resolution=res, img_channels=CH, fmap_base=fmap_base,
                        fmap_max=fmap_max)
    D = pggan.Discriminator(c_dim=C_DIM, img_resolution=res, img_channels=CH, fmap_base=fmap_base, fmap_max=fmap_max)
    z, c = jnp.zeros((4, 512)), jnp.zeros((4, C_DIM))
    g_vars = jax.eval_shape(lambda: G.init(jax.random.key(0), z, c))
    d_vars = jax.eval_shape(lambda: D.init(jax.random.key(0), jnp.zeros((4, res, res, CH)), c))

    def nf(stage):
        return min(int(fmap_base / 2.0**stage), fmap_max)

    assert (count(g_vars), count(d_vars)) == nvidia_parameter_counts(int(np.log2(res)), 512, C_DIM, CH, nf)


def test_jitted_apply_sharded_over_four_devices():
    G, D = build()
    z, c = inputs(n=8)
    mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    batch = NamedSharding(mesh, PartitionSpec("data"))
    g_vars = jax.jit(G.init)(jax.random.key(0), z, c)
    d_vars = jax.jit(D.init)(jax.random.key(0), jnp.zeros((8, RES, RES, CH)), c)

    @jax.jit
    def run(g_vars, d_vars, z, c, alpha):
        img = G.apply(g_vars, z, c, resolution=8, alpha=alpha)
        return img, D.apply(d_vars, img, c, alpha=alpha)

    one_device = run(g_vars, d_vars, z, c, jnp.float32(0.5))
    img, logits = run(g_vars, d_vars, jax.device_put(z, batch), jax.device_put(c, batch), jnp.float32(0.5))
    assert img.shape == (8, 8, 8, CH) and logits.shape == (8, 1) and len(logits.sharding.device_set) == 4
    for a, b in zip((img, logits), one_device, strict=True):  # the same numbers as unsharded
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
