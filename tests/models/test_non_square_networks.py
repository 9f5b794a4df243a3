"""StyleGAN2 and StyleGAN3 on W x H canvases: the (32, 24) networks and the (24, 32) ones with every kernel, the
constant, the noise buffers, StyleGAN3's Fourier frequencies and D's dense layer transposed compute the same
function of transposed images (no axis is mixed up anywhere in the ops); StyleGAN3 widens the canvases of its
square schedule; sizes the networks cannot make are one line."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.image_size import ImageSizeError
from stylegan_jax.models import stylegan3
from stylegan_jax.models.stylegan2 import Discriminator, Generator

G_KWARGS = dict(z_dim=8, c_dim=0, w_dim=8, img_channels=1, mapping_kwargs=dict(num_layers=1),
                synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0))
D_KWARGS = dict(c_dim=0, img_channels=1, channel_base=256, channel_max=16, num_fp16_res=0)


def transposed(variables, d_fc_base=None):
    """The variables of the same network on transposed canvases."""

    def one(path, x):
        name = jax.tree_util.keystr(path)
        if x.ndim == 4:  # conv kernels [out, in, kh, kw]
            return jnp.swapaxes(x, 2, 3)
        if "'const'" in name:  # [C, h, w]
            return jnp.swapaxes(x, 1, 2)
        if "noise_const" in name:  # [h, w]
            return x.T
        if "'freqs'" in name:  # [C, 2] as (x, y)
            return x[:, ::-1]
        if d_fc_base and "'fc'" in name and "weight" in name:  # [out, C * h0 * w0] in NCHW order
            h0, w0 = d_fc_base
            out, features = x.shape
            return x.reshape(out, features // (h0 * w0), h0, w0).swapaxes(2, 3).reshape(out, features)
        return x

    return jax.tree_util.tree_map_with_path(one, variables)


def test_transposed_networks_compute_transposed_images():
    z, c = jax.random.normal(jax.random.key(1), (3, 8)), jnp.zeros((3, 0))
    G_tall, G_wide = Generator(img_resolution=(32, 24), **G_KWARGS), Generator(img_resolution=(24, 32), **G_KWARGS)
    g_vars = G_tall.init(jax.random.key(0), z, c, noise_mode="const")
    tall = G_tall.apply(g_vars, z, c, noise_mode="const")
    wide = G_wide.apply(transposed(g_vars), z, c, noise_mode="const")
    assert tall.shape == (3, 32, 24, 1) and wide.shape == (3, 24, 32, 1)
    np.testing.assert_allclose(np.asarray(wide), np.asarray(tall).swapaxes(1, 2), atol=1e-5)

    D_tall, D_wide = Discriminator(img_resolution=(32, 24), **D_KWARGS), Discriminator(img_resolution=(24, 32),
                                                                                      **D_KWARGS)
    d_vars = D_tall.init(jax.random.key(2), tall, c)
    assert d_vars["params"]["b4"]["fc"]["weight"].shape[1] == 16 * 4 * 3  # the 4x3 (H x W) epilogue
    np.testing.assert_allclose(np.asarray(D_wide.apply(transposed(d_vars, (4, 3)), wide, c)),
                               np.asarray(D_tall.apply(d_vars, tall, c)), rtol=1e-5, atol=1e-6)


def test_a_ratio_outside_the_bases_is_refused():
    with pytest.raises(ImageSizeError, match="resolution 72x32 is not a small base doubled"):
        Generator(img_resolution=(32, 72), **G_KWARGS).init(jax.random.key(0), jnp.zeros((1, 8)), jnp.zeros((1, 0)))


SG3_KWARGS = dict(z_dim=8, c_dim=0, w_dim=8, img_channels=1, synthesis_kwargs=dict(
    channel_base=256, channel_max=16, num_layers=4, num_critical=1, num_fp16_res=0))


def test_stylegan3_widens_the_canvases_of_its_square_schedule():
    """(32, 48): the 32x32 network's layers (names, widths, filters, padding) on canvases widened 3/2 along x,
    and the transposed network makes the transposed images (the input's affine starts as the identity, so
    transposing needs no change of the learned rotation)."""
    z, c = jax.random.normal(jax.random.key(1), (2, 8)), jnp.zeros((2, 0))
    square, wide, tall = (stylegan3.Generator(img_resolution=r, **SG3_KWARGS) for r in (32, (32, 48), (48, 32)))
    (_, square_specs), (first, wide_specs) = (stylegan3.SynthesisNetwork(
        w_dim=8, img_resolution=G.img_resolution, img_channels=1, **SG3_KWARGS["synthesis_kwargs"]).schedule
        for G in (square, wide))
    assert first[1] == (36, 44)  # 32 + 2 * 2 margin high; 32 * 3/2 + 4 wide
    for a, b in zip(square_specs, wide_specs, strict=True):
        assert (a.name, a.in_channels, a.out_channels, a.padding) == (b.name, b.in_channels, b.out_channels,
                                                                       b.padding)
        np.testing.assert_array_equal(a.down_filter if a.down_filter is not None else 0,
                                      b.down_filter if b.down_filter is not None else 0)
    assert wide_specs[-1].out_shape == (32, 48) and wide_specs[2].out_shape == (52, 68)
    g_vars = wide.init(jax.random.key(0), z, c)
    wide_images = wide.apply(g_vars, z, c)
    tall_images = tall.apply(transposed(g_vars), z, c)
    assert wide_images.shape == (2, 32, 48, 1)
    np.testing.assert_allclose(np.asarray(tall_images), np.asarray(wide_images).swapaxes(1, 2), atol=1e-5)
    with pytest.raises(ImageSizeError, match="StyleGAN3 at 24x32: the short side must be a power of two"):
        stylegan3.Generator(img_resolution=(32, 24), **SG3_KWARGS).init(jax.random.key(0), z, c)
