import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.models.dcgan import BatchNorm, Discriminator, Generator, widths


def test_the_introductory_generator_has_its_widths():
    G = Generator(z_dim=100, c_dim=0, img_resolution=32, img_channels=1)  # defaults: channel_base 1024, max 256
    variables = G.init(jax.random.key(0), jnp.zeros((2, 100)), jnp.zeros((2, 0)))
    shapes = jax.tree_util.tree_map(lambda x: x.shape, variables["params"])
    assert shapes["fc"]["kernel"] == (100, 256 * 4 * 4)
    assert [shapes[f"b{r}"]["kernel"] for r in (8, 16, 32)] == [(3, 3, 256, 128), (3, 3, 128, 64), (3, 3, 64, 1)]
    assert "bias" not in shapes["b8"] and shapes["b32"]["bias"] == (1,)  # no bias before batch norm
    img = G.apply(variables, jax.random.normal(jax.random.key(1), (2, 100)), jnp.zeros((2, 0)))
    assert img.shape == (2, 32, 32, 1) and float(jnp.max(jnp.abs(img))) < 1
    D = Discriminator(c_dim=0, img_resolution=32, img_channels=1)
    d_vars = D.init(jax.random.key(2), img, jnp.zeros((2, 0)))
    d_shapes = jax.tree_util.tree_map(lambda x: x.shape, d_vars["params"])
    assert [d_shapes[f"b{r}"]["kernel"] for r in (16, 8, 4)] == [(4, 4, 1, 64), (4, 4, 64, 128), (4, 4, 128, 256)]
    assert "buffers" not in d_vars and D.apply(d_vars, img, jnp.zeros((2, 0))).shape == (2, 1)
    with pytest.raises(ValueError, match="power of two"):
        widths(24, 1024, 256)


def test_batch_norm_against_numpy_and_its_running_averages():
    x = np.random.default_rng(0).standard_normal((6, 3, 3, 4)) * 2 + 1
    bn = BatchNorm()
    variables = bn.init(jax.random.key(0), jnp.zeros((1, 3, 3, 4)), train=False)
    out, new = bn.apply(variables, jnp.asarray(x, jnp.float32), train=True, mutable=["buffers"])
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(new["buffers"]["mean"], 0.1 * mean, rtol=1e-5)
    unbiased = x.var(axis=(0, 1, 2), ddof=1)  # PyTorch's BatchNorm2d averages the unbiased variance
    np.testing.assert_allclose(new["buffers"]["var"], 0.9 + 0.1 * unbiased, rtol=1e-5)
    evaluated = bn.apply({**variables, **new}, jnp.asarray(x, jnp.float32), train=False)
    np.testing.assert_allclose(evaluated, (x - 0.1 * mean) / np.sqrt(0.9 + 0.1 * unbiased + 1e-5), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_labels_change_both_networks(conditioning):
    G = Generator(z_dim=8, c_dim=3, img_resolution=8, img_channels=1, channel_base=64, channel_max=8,
                  upsample="transposed")
    D = Discriminator(c_dim=3, img_resolution=8, img_channels=1, channel_base=64, channel_max=8,
                      conditioning=conditioning, norm="layer")
    z, c0, c1 = jnp.ones((2, 8)), jnp.eye(3)[np.array([0, 0])], jnp.eye(3)[np.array([1, 2])]
    g_vars = G.init(jax.random.key(0), z, c0)
    d_vars = D.init(jax.random.key(1), jnp.zeros((2, 8, 8, 1)), c0)
    img0, img1 = G.apply(g_vars, z, c0), G.apply(g_vars, z, c1)
    assert img0.shape == (2, 8, 8, 1) and not np.allclose(img0, img1)
    assert not np.allclose(D.apply(d_vars, img0, c0), D.apply(d_vars, img0, c1))
