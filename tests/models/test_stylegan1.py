"""StyleGAN1 (NVIDIA's G_style / D_basic): AdaIN against NumPy float64, style mixing at the crossover layer,
truncation's closed form, the w average, the fade-in, the ablation rungs' networks, shapes, 4-device jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from stylegan_jax.models import stylegan1
from stylegan_jax.nn.style_layers import StyleLayer

RES, CH, Z = 16, 3, 8
SMALL = dict(w_dim=Z, fmap_base=64, fmap_max=16, mapping_fmaps=8, mapping_layers=2)
RUNGS = {  # NVIDIA's train.py flag sets of Table 1 (rung A is the PGGAN model)
    "B": dict(use_styles=False, use_pixel_norm=True, use_instance_norm=False, mapping_layers=0,
              const_input_layer=False, use_noise=False),
    "C": dict(const_input_layer=False, use_noise=False),
    "D": dict(use_noise=False),
    "E": dict(),
}


def build(c_dim=0, **kwargs):
    G = stylegan1.Generator(z_dim=Z, c_dim=c_dim, img_resolution=RES, img_channels=CH, **{**SMALL, **kwargs})
    D = stylegan1.Discriminator(c_dim=c_dim, img_resolution=RES, img_channels=CH, fmap_base=64, fmap_max=16)
    return G, D


def perturbed(variables, seed=1):
    """Every variable moved away from its initialisation (biases and noise strengths are zero at init)."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda x: x + np.float32(0.3) * rng.standard_normal(x.shape, np.float32), variables)


def latents(n=4, seed=0):
    return jax.random.normal(jax.random.key(seed), (n, Z)), jnp.zeros((n, 0))


def test_adain_layer_matches_numpy_float64():
    """noise * per-channel strength, bias, lrelu, instance norm (eps 1e-8), style x * (s + 1) + b."""
    layer = StyleLayer(out_channels=4, resolution=4, kernel_size=0)
    x = jax.random.normal(jax.random.key(0), (2, 4, 4, 4)) * 2 + 1
    w = jax.random.normal(jax.random.key(1), (2, 6))
    v = perturbed(jax.jit(layer.init, static_argnums=3)(jax.random.key(2), x, w, "const"))
    got = layer.apply(v, x, w, "const")
    p, noise = jax.tree_util.tree_map(np.float64, v["params"]), np.float64(v["buffers"]["noise_const"])
    y = np.float64(x) + noise[None, :, :, None] * p["noise_strength"] + p["bias"]
    y = np.where(y >= 0, y, 0.2 * y)
    y = y - y.mean(axis=(1, 2), keepdims=True)
    y = y / np.sqrt(np.mean(y**2, axis=(1, 2), keepdims=True) + 1e-8)
    style = np.float64(w) @ (p["style"]["weight"] / np.sqrt(6)).T + p["style"]["bias"]  # gain 1
    expected = y * (style[:, None, None, :4] + 1) + style[:, None, None, 4:]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_style_mixing_swaps_styles_at_the_crossover_layer():
    G, _ = build()
    z1, c = latents(seed=1)
    z2, _ = latents(seed=2)
    v = perturbed(jax.jit(G.init)(jax.random.key(0), z1, c))
    ws1, ws2 = G.apply(v, z1, c, method="map"), G.apply(v, z2, c, method="map")
    cutoff = 3  # layers 0-2 (4x4 input, 4x4 conv, 8x8 conv0) from z1, layers 3-5 from z2
    mixed = jnp.where(jnp.arange(G.num_ws)[None, :, None] < cutoff, ws1, ws2)

    # One batch holds the mixed, the z1 and the z2 ws (synthesis treats samples independently).
    _, state = G.apply(v, jnp.concatenate([mixed, ws1, ws2]), "const", method="synthesize",
                       capture_intermediates=True)
    got, pure1, pure2 = (jax.tree_util.tree_map(lambda a, i=i: a[4 * i : 4 * i + 4],
                                                state["intermediates"]["synthesis"]) for i in range(3))
    layers = ["b4_input", "b4_conv", "b8_conv0", "b8_conv1", "b16_conv0", "b16_conv1"]
    for idx, name in enumerate(layers):
        style = got[name]["style"]["__call__"][0]
        source = pure1 if idx < cutoff else pure2
        np.testing.assert_allclose(style, source[name]["style"]["__call__"][0], rtol=1e-6, atol=1e-6)
        other = pure2 if idx < cutoff else pure1
        assert not np.allclose(style, other[name]["style"]["__call__"][0], atol=1e-3)
    # Everything before the crossover is z1's network exactly; after it, the images differ from both.
    np.testing.assert_allclose(got["b8_conv0"]["__call__"][0], pure1["b8_conv0"]["__call__"][0], rtol=1e-6,
                               atol=1e-6)
    for pure in (pure1, pure2):
        assert not np.allclose(got["__call__"][0], pure["__call__"][0], atol=1e-3)


def test_truncation_closed_form_and_w_avg_update():
    G, _ = build()
    z, c = latents()
    v = perturbed(jax.jit(G.init)(jax.random.key(0), z, c))
    w_avg = np.asarray(v["buffers"]["mapping"]["w_avg"], np.float64)
    ws = np.float64(G.apply(v, z, c, method="map"))
    psi, cutoff = stylegan1.FAMILY.truncation[0], 3
    got = G.apply(v, z, c, truncation_psi=psi, truncation_cutoff=cutoff, method="map")
    expected = ws.copy()
    expected[:, :cutoff] = w_avg + psi * (ws[:, :cutoff] - w_avg)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    _, new = G.apply(v, z, c, update_emas=True, mutable=["buffers"], method="map")
    expected_avg = ws[:, 0].mean(axis=0) + 0.995 * (w_avg - ws[:, 0].mean(axis=0))
    np.testing.assert_allclose(new["buffers"]["mapping"]["w_avg"], expected_avg, rtol=1e-5, atol=1e-6)


def test_generator_fade_in_upsamples_the_lower_torgb_nearest():
    G, _ = build()
    z, c = latents()
    v = perturbed(jax.jit(G.init)(jax.random.key(0), z, c))
    new = np.float64(G.apply(v, z, c, resolution=16, noise_mode="const"))
    old = np.float64(G.apply(v, z, c, resolution=8, noise_mode="const"))
    got = G.apply(v, z, c, resolution=16, alpha=jnp.float32(0.6), noise_mode="const")
    np.testing.assert_allclose(got, 0.6 * new + 0.4 * old.repeat(2, axis=1).repeat(2, axis=2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rung", list(RUNGS))
def test_ablation_rungs_build_with_their_switches(rung):
    G, _ = build(**RUNGS[rung])
    z, c = latents(n=2)
    v = jax.eval_shape(lambda: G.init(jax.random.key(0), z, c))
    synthesis = v["params"]["synthesis"]
    assert ("b4_const" in synthesis) == G.const_input_layer
    assert ("b4_dense" in synthesis) != G.const_input_layer
    assert ("noise_strength" in synthesis["b8_conv1"]) == G.use_noise
    assert ("style" in synthesis["b8_conv1"]) == G.use_styles
    assert len(v["params"].get("mapping", {})) == G.mapping_layers
    assert G.num_ws == (6 if G.use_styles else 1)
    img = jax.eval_shape(lambda v: G.apply(v, z, c, resolution=8, alpha=0.5, rngs={"noise": jax.random.key(0)}), v)
    assert img.shape == (2, 8, 8, CH)


def test_conditional_mapping_concatenates_the_label_embedding():
    G, D = build(c_dim=5)
    z, _ = latents(n=2)
    c = jax.nn.one_hot(jnp.array([1, 4]), 5)
    v = jax.eval_shape(lambda: G.init(jax.random.key(0), z, c))
    assert v["params"]["mapping"]["embed"].shape == (Z, 5)
    assert v["params"]["mapping"]["fc0"]["weight"].shape == (8, 2 * Z)
    d = jax.eval_shape(lambda: D.init(jax.random.key(0), jnp.zeros((2, RES, RES, CH)), c))
    assert d["params"]["b4_dense1"]["weight"].shape == (5, 16)


def test_shapes_at_every_resolution():
    G, D = build()
    z, c = latents(n=2)
    g_vars = jax.eval_shape(lambda: G.init(jax.random.key(0), z, c))
    d_vars = jax.eval_shape(lambda: D.init(jax.random.key(0), jnp.zeros((2, RES, RES, CH)), c))
    for res in (4, 8, 16):
        img = jax.eval_shape(
            lambda v, r=res: G.apply(v, z, c, resolution=r, alpha=0.5, rngs={"noise": jax.random.key(0)}), g_vars)
        assert img.shape == (2, res, res, CH) and img.dtype == jnp.float32
        assert jax.eval_shape(lambda v, i=img: D.apply(v, jnp.zeros(i.shape), c, alpha=0.5), d_vars).shape == (2, 1)


def test_jitted_apply_sharded_over_four_devices():
    G, D = build()
    z, c = latents(n=8)
    res = 8
    mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    batch = NamedSharding(mesh, PartitionSpec("data"))
    g_vars = jax.jit(G.init)(jax.random.key(0), z, c)
    d_vars = jax.jit(D.init)(jax.random.key(0), jnp.zeros((8, RES, RES, CH)), c)

    @jax.jit
    def run(g_vars, d_vars, z, c, alpha, key):
        img = G.apply(g_vars, z, c, resolution=res, alpha=alpha, rngs={"noise": key})
        return img, D.apply(d_vars, img, c, alpha=alpha)

    one_device = run(g_vars, d_vars, z, c, jnp.float32(0.5), jax.random.key(3))
    img, logits = run(g_vars, d_vars, jax.device_put(z, batch), jax.device_put(c, batch), jnp.float32(0.5),
                      jax.random.key(3))
    assert img.shape == (8, res, res, CH) and logits.shape == (8, 1) and len(logits.sharding.device_set) == 4
    for a, b in zip((img, logits), one_device, strict=True):  # the same numbers (and noise) as unsharded
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
