"""The StyleGAN2 paper's configs B-D networks (G_synthesis_stylegan_revised, D_stylegan): which w each layer
reads, the FIR fade-in against NumPy float64, NVIDIA's parameter counts, shapes, 4-device jit."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from stylegan_jax.models import stylegan2_revised as revised

RES, CH, Z = 16, 3, 8
SMALL = dict(fmap_base=64, fmap_max=16)


def build(c_dim=0, **kwargs):
    G = revised.Generator(z_dim=Z, c_dim=c_dim, w_dim=Z, img_resolution=RES, img_channels=CH, mapping_layers=2,
                          mapping_fmaps=8, **SMALL, **kwargs)
    D = revised.Discriminator(c_dim=c_dim, img_resolution=RES, img_channels=CH, **SMALL)
    return G, D


def perturbed(variables, seed=1):
    """Every variable moved away from its initialisation (noise strengths and biases are zero at init)."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda x: x + np.float32(0.3) * rng.standard_normal(x.shape, np.float32), variables)


def setup_g(n=4):
    G, _ = build()
    z, c = jax.random.normal(jax.random.key(0), (n, Z)), jnp.zeros((n, 0))
    v = perturbed(jax.jit(G.init)(jax.random.key(0), z, c))
    return G, v, G.apply(v, z, c, method="map")


def test_each_layer_and_torgb_reads_nvidias_w_index():
    """Up to 8x8 the layers read ws 0-2 and toRGB_8 reads ws 3 (= 2 log2(8) - 3); ws 4, 5 are unused."""
    G, v, ws = setup_g()
    synth = jax.jit(lambda ws: G.apply(v, ws, "const", resolution=8, method="synthesize"))
    base = synth(ws)
    for idx, used in [(0, True), (2, True), (3, True), (4, False), (5, False)]:
        changed = synth(ws.at[:, idx].add(1.0))
        assert np.allclose(changed, base, atol=1e-6) != used, idx


def test_generator_fade_in_nearest_upsamples_the_lower_torgb():
    """NVIDIA's G_synthesis_stylegan_revised fades in ``upsample_2d(images_out)`` without a kernel: its default
    ``k = [1] * factor`` is nearest-neighbour (each pixel repeated 2x2), not the [1, 3, 3, 1] FIR."""
    G, v, ws = setup_g()
    synth = jax.jit(lambda ws, alpha: G.apply(v, ws, "const", resolution=16, alpha=alpha, method="synthesize"))
    new = np.float64(synth(ws, 1.0))
    old = np.float64(G.apply(v, ws, "const", resolution=8, method="synthesize"))
    expected = 0.7 * new + 0.3 * np.repeat(np.repeat(old, 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(synth(ws, jnp.float32(0.7)), expected, rtol=1e-5, atol=1e-5)


def test_parameter_counts_equal_nvidias_formula():
    """G_mapping + G_synthesis_stylegan_revised and D_stylegan, counted from NVIDIA's layer list."""
    G, D = build(c_dim=3)
    z, c = jnp.zeros((4, Z)), jnp.zeros((4, 3))
    g = jax.eval_shape(lambda: G.init(jax.random.key(0), z, c))["params"]
    d = jax.eval_shape(lambda: D.init(jax.random.key(0), jnp.zeros((4, RES, RES, CH)), c))["params"]

    def nf(stage):
        return int(np.clip(int(64 / 2.0**stage), 1, 16))

    def modconv(cin, cout, k, noise=True):  # affine (w -> cin, bias), weight, bias, noise strength
        return Z * cin + cin + cout * cin * k * k + cout + (1 if noise else 0)

    synthesis = nf(1) * 16 + modconv(nf(1), nf(1), 3) + modconv(nf(1), CH, 1, noise=False)
    for r in (3, 4):
        synthesis += modconv(nf(r - 2), nf(r - 1), 3) + modconv(nf(r - 1), nf(r - 1), 3)
        synthesis += modconv(nf(r - 1), CH, 1, noise=False)
    mapping = (3 * Z + Z) + (2 * Z * 8 + 8) + (8 * Z + Z)  # embed, fc0 on [z, embed], fc1
    discriminator = (nf(1) + 1) * nf(1) * 9 + nf(1) + 16 * nf(1) * nf(0) + nf(0) + nf(0) * 3 + 3
    for r in (2, 3, 4):
        discriminator += CH * nf(r - 1) + nf(r - 1)
    for r in (3, 4):
        discriminator += 9 * nf(r - 1) ** 2 + nf(r - 1) + 9 * nf(r - 1) * nf(r - 2) + nf(r - 2)
    count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))  # noqa: E731
    assert count(g["synthesis"]) == synthesis
    assert count(g["mapping"]) == mapping
    assert count(d) == discriminator


def test_jitted_apply_sharded_over_four_devices_at_every_resolution():
    G, D = build()
    z, c = jax.random.normal(jax.random.key(0), (8, Z)), jnp.zeros((8, 0))
    mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    batch = NamedSharding(mesh, PartitionSpec("data"))
    g_vars = jax.jit(G.init)(jax.random.key(0), z, c)
    d_vars = jax.jit(D.init)(jax.random.key(0), jnp.zeros((8, RES, RES, CH)), c)
    for res in (4, 8):
        img = jax.eval_shape(lambda v, r=res: G.apply(v, z, c, resolution=r, rngs={"noise": jax.random.key(0)}),
                             g_vars)
        assert img.shape == (8, res, res, CH)
        assert jax.eval_shape(lambda v, i=img: D.apply(v, jnp.zeros(i.shape), c, alpha=0.5), d_vars).shape == (8, 1)

    @jax.jit
    def run(g_vars, d_vars, z, c, alpha, key):
        img = G.apply(g_vars, z, c, resolution=16, alpha=alpha, rngs={"noise": key})
        return img, D.apply(d_vars, img, c, alpha=alpha)

    one_device = run(g_vars, d_vars, z, c, jnp.float32(0.5), jax.random.key(3))
    img, logits = run(g_vars, d_vars, jax.device_put(z, batch), jax.device_put(c, batch), jnp.float32(0.5),
                      jax.random.key(3))
    assert img.shape == (8, RES, RES, CH) and logits.shape == (8, 1) and len(logits.sharding.device_set) == 4
    for a, b in zip((img, logits), one_device, strict=True):  # the same numbers (and noise) as unsharded
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
