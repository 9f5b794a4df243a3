import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from stylegan_jax.errors import ConfigError
from stylegan_jax.models import get_family
from stylegan_jax.models.stylegan2_stripped import Discriminator, Generator
from stylegan_jax.nn.layers import Conv2d, FullyConnected

LRELU_GAIN = np.sqrt(2 / (1 + 0.2**2))  # R3GAN's MSR gain of leaky ReLU 0.2


def count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


def paths(tree):
    return ["/".join(str(k.key) for k in path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def build(cfg_resolution=256, img_channels=3, c_dim=0, **overrides):
    family = get_family("stylegan2_stripped")
    G_cfg, D_cfg = family.config_defaults()
    G_cfg.update({k: v for k, v in overrides.items() if k in G_cfg})
    D_cfg.update({k: v for k, v in overrides.items() if k in D_cfg and k != "z_dim"})
    cfg = ml_collections.ConfigDict(dict(G=G_cfg, D=D_cfg, resolution=cfg_resolution, img_channels=img_channels))
    return family.build(cfg, c_dim)


def tiny(c_dim=0, **kw):
    return build(16, 1, c_dim, z_dim=8, channel_base=64, channel_max=16, embed_dim=4, **kw)


def test_parameter_counts_are_table_2s_config_b():
    G, D = build()
    z, c = jnp.zeros((2, 64)), jnp.zeros((2, 0))
    g_vars = jax.eval_shape(lambda: G.init(jax.random.key(0), z, c))
    d_vars = jax.eval_shape(lambda: D.init(jax.random.key(0), jnp.zeros((2, 256, 256, 3)), c))
    assert set(g_vars) == {"params"} and set(d_vars) == {"params"}  # no buffers (no noise, no w_avg)
    g, d = count(g_vars["params"]), count(d_vars["params"])
    assert (round(g / 1e6, 3), round(d / 1e6, 3)) == (18.890, 23.996)  # R3GAN's Table 2, Config B
    assert (g, d) == (18_890_453, 23_996_481)
    # D is stylegan2-ada-pytorch's paper256 D (24,001,089) less the mbstd channel of b4/conv (512 * 3 * 3).
    assert d == 24_001_089 - 512 * 9
    b4 = g_vars["params"]["synthesis"]["b4"]
    assert b4["const"].shape == (512, 4, 4) and b4["fc"]["weight"].shape == (512, 64) and "bias" not in b4["fc"]


@pytest.mark.parametrize("g_arch, d_arch", [("skip", "resnet"), ("orig", "skip"), ("resnet", "orig")])
def test_tiny_forward_shapes_and_names(g_arch, d_arch):
    G, D = build(16, 1, 0, z_dim=8, channel_base=64, channel_max=16, architecture=g_arch)
    D = D.clone(architecture=d_arch)
    z, c = jax.random.normal(jax.random.key(1), (3, 8)), jnp.zeros((3, 0))
    g_vars = jax.eval_shape(lambda: G.init(jax.random.key(0), z, c))
    img = jax.eval_shape(lambda v: G.apply(v, z, c, noise_mode="const"), g_vars)
    assert img.shape == (3, 16, 16, 1) and img.dtype == jnp.float32
    d_vars = jax.eval_shape(lambda: D.init(jax.random.key(2), jnp.zeros(img.shape), c))
    logits = jax.eval_shape(lambda v: D.apply(v, jnp.zeros(img.shape), c), d_vars)
    assert logits.shape == (3, 1) and logits.dtype == jnp.float32
    g = g_vars["params"]["synthesis"]
    assert g["b8"]["conv0"]["weight"].shape == (8, 16, 3, 3) and g["b16"]["conv1"]["weight"].shape == (4, 4, 3, 3)
    assert ("torgb" in g["b8"]) == (g_arch == "skip") and g["b16"]["torgb"]["weight"].shape == (1, 4, 1, 1)
    assert ("skip" in g["b8"]) == (g_arch == "resnet")
    d = d_vars["params"]
    assert d["b16"]["fromrgb"]["weight"].shape == (4, 1, 1, 1) and d["b4"]["conv"]["weight"].shape == (16, 16, 3, 3)
    assert ("skip" in d["b16"]) == (d_arch == "resnet") and ("fromrgb" in d["b8"]) == (d_arch == "skip")


@pytest.fixture(scope="module")
def conditional():
    """A tiny conditional G and D (16x16, 1 channel, widths 16-4, 3 classes) and their variables."""
    G, D = tiny(c_dim=3)
    z, c = jnp.ones((2, 8)), jnp.eye(3)[np.array([0, 0])]
    g_vars = jax.jit(G.init)(jax.random.key(0), z, c)
    return G, D, g_vars, jax.jit(D.init)(jax.random.key(1), jnp.zeros((2, 16, 16, 1)), c)


def test_nothing_of_stylegans_tricks_is_left(conditional):
    G, D, g_vars, d_vars = conditional
    for name in paths(g_vars):
        assert not any(word in name for word in ("mapping", "affine", "noise", "w_avg")), name
    assert not any("mbstd" in name for name in paths(d_vars))
    assert d_vars["params"]["b4"]["conv"]["weight"].shape[1] == 16  # no stddev channel
    # The output is a deterministic function of (z, c): noise modes and truncation change nothing.
    z, c = jax.random.normal(jax.random.key(2), (2, 8)), jnp.eye(3)[np.array([0, 2])]
    outs = [jax.jit(functools.partial(G.apply, noise_mode=m, truncation_psi=0.5))(g_vars, z, c,
                                                                                   rngs={"noise": jax.random.key(k)})
            for k, m in enumerate(["random", "const", "none"])]
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


def test_labels_change_both_networks(conditional):
    G, D, g_vars, d_vars = conditional
    z, c0, c1 = jnp.ones((2, 8)), jnp.eye(3)[np.array([0, 0])], jnp.eye(3)[np.array([1, 2])]
    assert g_vars["params"]["embed"]["weight"].shape == (4, 3)  # [embed_dim, c_dim], concatenated to z
    assert g_vars["params"]["synthesis"]["b4"]["fc"]["weight"].shape == (16, 8 + 4)
    assert d_vars["params"]["embed"]["weight"].shape == (16, 3)  # the projection's cmap, D's 4x4 width
    assert d_vars["params"]["b4"]["out"]["weight"].shape == (16, 16)
    g_apply, d_apply = jax.jit(G.apply), jax.jit(D.apply)
    img0, img1 = g_apply(g_vars, z, c0), g_apply(g_vars, z, c1)
    assert not np.allclose(img0, img1)
    assert not np.allclose(d_apply(d_vars, img0, c0), d_apply(d_vars, img0, c1))


def test_init_statistics_are_msr():
    G, D = build(16, 3, 0, channel_base=1024, channel_max=128)
    z = jax.random.normal(jax.random.key(1), (8, 64))
    c = jnp.zeros((8, 0))
    g_vars = jax.jit(G.init)(jax.random.key(0), z, c)
    d_vars = jax.jit(D.init)(jax.random.key(2), jnp.zeros((1, 16, 16, 3)), c[:1])
    g, d = g_vars["params"]["synthesis"], d_vars["params"]

    def check(weight, gain):
        fan_in = int(np.prod(weight.shape[1:]))
        # four standard errors of a sample std: 0.7% at b8's 147k weights, under the 2% between the MSR gain
        # and sqrt(2)
        np.testing.assert_allclose(np.std(weight), gain / np.sqrt(fan_in), rtol=4 / np.sqrt(2 * weight.size))
        assert abs(float(np.mean(weight))) < 5 * gain / np.sqrt(fan_in * weight.size)

    check(g["b4"]["fc"]["weight"], 1.0)
    check(g["b8"]["conv0"]["weight"], LRELU_GAIN)
    check(g["b16"]["conv1"]["weight"], LRELU_GAIN)
    check(g["b8"]["torgb"]["weight"], 1.0)
    check(d["b16"]["conv0"]["weight"], LRELU_GAIN)
    check(d["b8"]["skip"]["weight"], 1.0)
    check(d["b4"]["fc"]["weight"], LRELU_GAIN)
    check(d["b4"]["out"]["weight"], 1.0)
    np.testing.assert_allclose(np.std(g["b4"]["const"]), 1.0, rtol=0.1)
    biases = [x for p, x in zip(paths(g_vars), jax.tree_util.tree_leaves(g_vars), strict=True) if p.endswith("bias")]
    assert biases and all(not np.any(b) for b in biases)
    # Variance preserving: the image and the logits come out at unit-ish scale.
    img = jax.jit(G.apply)(g_vars, z, c)
    assert 0.2 < float(jnp.std(img)) < 5
    assert 0.05 < float(jnp.std(jax.jit(D.apply)(d_vars, img, c))) < 20


def test_plain_layers_use_their_weights_as_stored():
    x = jax.random.normal(jax.random.key(0), (2, 3, 3, 5))
    conv = Conv2d(4, kernel_size=1, activation="lrelu", equalized_lr=False)
    v = conv.init(jax.random.key(1), x)
    v = jax.tree_util.tree_map(lambda a: a + 0.1, v)
    w, b = v["params"]["weight"][:, :, 0, 0], v["params"]["bias"]
    np.testing.assert_allclose(conv.apply(v, x), jax.nn.leaky_relu(x @ w.T + b, 0.2), rtol=1e-5, atol=1e-5)
    fc = FullyConnected(3, activation="lrelu", equalized_lr=False)
    v = fc.init(jax.random.key(2), x[:, 0, 0])
    v = jax.tree_util.tree_map(lambda a: a + 0.1, v)
    expected = jax.nn.leaky_relu(x[:, 0, 0] @ v["params"]["weight"].T + v["params"]["bias"], 0.2)
    np.testing.assert_allclose(fc.apply(v, x[:, 0, 0]), expected, rtol=1e-5, atol=1e-5)


def test_family_and_bad_configs():
    family = get_family("stylegan2_stripped")
    assert not family.has_mapping and not family.grows and not family.batch_norm
    G, D = tiny()
    d_vars = jax.eval_shape(lambda: D.init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)), jnp.zeros((1, 0))))
    assert family.d_layers(d_vars["params"])[:3] == ["b16/fromrgb", "b16/conv0", "b16/conv1"]
    z, c = jnp.zeros((1, 8)), jnp.zeros((1, 0))
    with pytest.raises(ConfigError, match=r"--config.G.architecture: expected one of \('orig', 'skip', 'resnet'\)"):
        G.clone(architecture="unet").init(jax.random.key(0), z, c)
    with pytest.raises(ConfigError, match="--config.D.architecture: expected one of"):
        D.clone(architecture="unet").init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)), c)
    with pytest.raises(ConfigError, match="power of two"):
        Generator(z_dim=8, c_dim=0, img_resolution=24, img_channels=1).init(jax.random.key(0), z, c)
    with pytest.raises(ConfigError, match="power of two"):
        Discriminator(c_dim=0, img_resolution=24, img_channels=1).init(jax.random.key(0), jnp.zeros((1, 24, 24, 1)), c)
    with pytest.raises(ValueError, match="z must be"):
        G.init(jax.random.key(0), jnp.zeros((1, 9)), c)
