import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.models.stylegan2 import Discriminator, Generator


def count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


def build(res, z_dim=512, c_dim=0, mapping=8, channel_base=16384, channel_max=512, channels=3, g_arch="skip",
          d_arch="resnet"):
    G = Generator(z_dim=z_dim, c_dim=c_dim, w_dim=z_dim, img_resolution=res, img_channels=channels,
                  mapping_kwargs=dict(num_layers=mapping),
                  synthesis_kwargs=dict(channel_base=channel_base, channel_max=channel_max, architecture=g_arch))
    D = Discriminator(c_dim=c_dim, img_resolution=res, img_channels=channels, architecture=d_arch,
                      channel_base=channel_base, channel_max=channel_max)
    return G, D


def shapes(G, D, n=2):
    z = jnp.zeros((n, G.z_dim))
    c = jnp.zeros((n, G.c_dim))
    g_vars = jax.eval_shape(lambda: G.init(jax.random.key(0), z, c))
    img = jax.eval_shape(lambda v: G.apply(v, z, c, rngs={"noise": jax.random.key(1)}), g_vars)
    d_vars = jax.eval_shape(lambda: D.init(jax.random.key(0), jnp.zeros(img.shape), c))
    logits = jax.eval_shape(lambda v: D.apply(v, jnp.zeros(img.shape), c), d_vars)
    return g_vars, d_vars, img, logits


# Counted with NVIDIA's stylegan2-ada-pytorch (trainable parameters; G skip, D resnet unless said).
PARAM_COUNTS = {
    "paper256": (dict(res=256), 24_767_458, 2_101_248, 24_001_089),
    "config-f 1024": (dict(res=1024, channel_base=32768), 30_370_060, 2_101_248, 29_012_513),
    "config-f 256": (dict(res=256, channel_base=32768), 30_034_338, 2_101_248, 28_864_129),
    "cifar": (dict(res=32, c_dim=10, channel_base=32768, mapping=2, d_arch="orig"), 20_215_315, 793_088, 23_089_664),
    "tiny": (dict(res=32, z_dim=64, mapping=2, channel_base=1024, channel_max=64, channels=1), 263_531, 8_320, 288_929),
}


@pytest.mark.parametrize("name", list(PARAM_COUNTS))
def test_parameter_counts_equal_nvidias(name):
    kwargs, g_total, g_mapping, d_total = PARAM_COUNTS[name]
    g_vars, d_vars, _, _ = shapes(*build(**kwargs))
    assert count(g_vars["params"]) == g_total
    assert count(g_vars["params"]["mapping"]) == g_mapping
    assert count(d_vars["params"]) == d_total


def test_tiny_parameter_tree_uses_nvidias_names_and_shapes():
    g_vars, d_vars, _, _ = shapes(*build(32, z_dim=64, mapping=2, channel_base=1024, channel_max=64, channels=1))
    g, d = g_vars["params"], d_vars["params"]
    assert len(jax.tree_util.tree_leaves(g)) == 56 and len(jax.tree_util.tree_leaves(d)) == 23
    assert g["mapping"]["fc0"]["weight"].shape == (64, 64)
    assert g["synthesis"]["b4"]["const"].shape == (64, 4, 4)
    assert g["synthesis"]["b32"]["conv1"]["affine"]["weight"].shape == (32, 64)  # (channels, w_dim)
    assert g["synthesis"]["b32"]["conv0"]["weight"].shape == (32, 64, 3, 3)
    assert g["synthesis"]["b32"]["torgb"]["weight"].shape == (1, 32, 1, 1)
    assert g["synthesis"]["b8"]["conv0"]["noise_strength"].shape == ()
    assert set(d["b32"]["skip"]) == {"weight"}  # no bias
    assert d["b4"]["conv"]["weight"].shape == (64, 65, 3, 3)  # one extra channel from minibatch stddev
    assert d["b4"]["fc"]["weight"].shape == (64, 64 * 16)
    buffers = g_vars["buffers"]
    assert buffers["mapping"]["w_avg"].shape == (64,)
    assert buffers["synthesis"]["b16"]["conv0"]["noise_const"].shape == (16, 16)


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
def test_4x4_networks_of_every_architecture(arch):
    """The one case NVIDIA's agreement fixtures (``test_nvidia_agreement.py``: every architecture at 8x8 to
    32x32, 1/3/4 channels, with and without labels, compared by value) do not reach: 4x4, where G's only block
    is its last and D has no block before the epilogue."""
    G, D = build(4, z_dim=16, c_dim=10, mapping=2, channel_base=256, channel_max=32, channels=4, g_arch=arch,
                 d_arch=arch)
    g_vars, _, img, logits = shapes(G, D, n=4)
    assert (img.shape, img.dtype, logits.shape, logits.dtype) == ((4, 4, 4, 4), jnp.float32, (4, 1), jnp.float32)
    ws = jax.eval_shape(lambda v: G.apply(v, jnp.zeros((4, 16)), jnp.zeros((4, 10)), method=Generator.map), g_vars)
    assert ws.shape == (4, 2, 16)


def test_num_ws_is_nvidias():
    # NVIDIA: the synthesis's num_conv + the last block's num_torgb = 2 log2(res) - 2 (18 at 1024).
    assert [build(res)[0].num_ws for res in (4, 8, 16, 32, 64, 1024)] == [2, 4, 6, 8, 10, 18]


@pytest.fixture(scope="module")
def tiny():
    G = Generator(z_dim=16, c_dim=3, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=128, channel_max=16, num_fp16_res=2, conv_clamp=256))
    D = Discriminator(c_dim=3, img_resolution=16, img_channels=3, channel_base=128, channel_max=16, num_fp16_res=2,
                      conv_clamp=256)
    z = jax.random.normal(jax.random.key(1), (4, 16))
    c = jax.nn.one_hot(jnp.arange(4) % 3, 3)
    g_vars = jax.jit(G.init)(jax.random.key(0), z, c)
    g_vars = jax.tree_util.tree_map(lambda p: p + 0.1, g_vars)  # non-zero noise strengths
    d_vars = jax.jit(D.init)(jax.random.key(0), jnp.zeros((4, 16, 16, 3)), c)
    return G, D, g_vars, d_vars, z, c


def test_deterministic_given_inputs_and_rngs(tiny):
    G, D, g_vars, d_vars, z, c = tiny
    gen = jax.jit(lambda v, z, c, key: G.apply(v, z, c, rngs={"noise": key}))
    a, b = gen(g_vars, z, c, jax.random.key(5)), gen(g_vars, z, c, jax.random.key(5))
    other = gen(g_vars, z, c, jax.random.key(6))
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(other))  # random noise does depend on the key
    disc = jax.jit(D.apply)
    assert np.array_equal(np.asarray(disc(d_vars, a, c)), np.asarray(disc(d_vars, b, c)))
    const = jax.jit(lambda v, z, c: G.apply(v, z, c, noise_mode="const"))
    assert np.array_equal(np.asarray(const(g_vars, z, c)), np.asarray(const(g_vars, z, c)))


def test_mixed_precision_blocks_stay_close_to_float32(tiny):
    G, D, g_vars, d_vars, z, c = tiny
    low = jax.jit(lambda v: G.apply(v, z, c, noise_mode="const"))(g_vars)
    full = jax.jit(lambda v: G.apply(v, z, c, noise_mode="const", force_fp32=True))(g_vars)
    assert low.dtype == jnp.float32
    assert 0 < np.abs(np.asarray(low) - np.asarray(full)).max() < 0.05 * np.abs(np.asarray(full)).max()


def test_the_num_fp16_res_highest_blocks_compute_in_bfloat16(tiny):
    """NVIDIA's fp16 blocks: resolutions from max(2 ** (log2(res) + 1 - num_fp16_res), 8) up, so b16 and b8 of a
    16x16 net with num_fp16_res 2 (bfloat16 here: NVIDIA's float16), b4 float32; force_fp32 makes all float32;
    G's images stay float32."""
    G, D, g_vars, d_vars, z, c = tiny

    def dtypes(module, variables, *inputs, **kwargs):
        _, inter = module.apply(variables, *inputs, capture_intermediates=True, mutable=["intermediates"], **kwargs)
        blocks = inter["intermediates"].get("synthesis", inter["intermediates"])
        outputs = {name: jax.tree.leaves(blocks[name]["__call__"]) for name in ("b4", "b8", "b16")}
        return {name: str(leaves[0].dtype) for name, leaves in outputs.items()}, outputs

    bf16, f32 = "bfloat16", "float32"
    g_dtypes, g_out = dtypes(G, g_vars, z, c, noise_mode="const")
    assert g_dtypes == {"b4": f32, "b8": bf16, "b16": bf16}
    assert all(str(leaves[1].dtype) == f32 for leaves in g_out.values())  # the skip images
    assert dtypes(G, g_vars, z, c, noise_mode="const", force_fp32=True)[0] == {"b4": f32, "b8": f32, "b16": f32}
    assert dtypes(D, d_vars, jnp.zeros((4, 16, 16, 3)), c)[0] == {"b4": f32, "b8": bf16, "b16": bf16}


def test_truncation_and_w_avg_update(tiny):
    G, _, g_vars, _, z, c = tiny
    ws, state = G.apply(g_vars, z, c, update_emas=True, mutable=["buffers"], method=Generator.map)
    w_avg = g_vars["buffers"]["mapping"]["w_avg"]
    expected = np.asarray(ws[:, 0]).mean(0) + 0.995 * (np.asarray(w_avg) - np.asarray(ws[:, 0]).mean(0))
    np.testing.assert_allclose(np.asarray(state["buffers"]["mapping"]["w_avg"]), expected, rtol=1e-5, atol=1e-6)
    truncated = G.apply(g_vars, z, c, 0.5, 3, method=Generator.map)
    np.testing.assert_allclose(np.asarray(truncated[:, :3]), np.asarray(w_avg + 0.5 * (ws[:, :3] - w_avg)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(truncated[:, 3:]), np.asarray(ws[:, 3:]))


def test_jit_compiles_once_per_shape(tiny, caplog):
    G, D, g_vars, d_vars, z, c = tiny

    @jax.jit
    def step(g_vars, d_vars, z, c, key):
        return D.apply(d_vars, G.apply(g_vars, z, c, rngs={"noise": key}), c)

    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        for i in range(3):
            step(g_vars, d_vars, z + i, c, jax.random.key(i)).block_until_ready()
    compiles = [r for r in caplog.records if "Compiling" in r.getMessage() and "step" in r.getMessage()]
    assert len(compiles) == 1
