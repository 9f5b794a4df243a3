"""StyleGAN2, StyleGAN3, PGGAN and StyleGAN1 on W x H canvases: the (32, 24) networks and the (24, 32) ones
with every kernel, the constant, the noise buffers, StyleGAN3's Fourier frequencies and D's dense layer transposed
compute the same function of transposed images (no axis is mixed up anywhere in the ops); StyleGAN3 widens the
canvases of its square schedule; sizes the networks cannot make are one line."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.image_size import ImageSizeError
from stylegan_jax.models import pggan, stylegan1, stylegan3
from stylegan_jax.models.stylegan2 import Discriminator, Generator

G_KWARGS = dict(z_dim=8, c_dim=0, w_dim=8, img_channels=1, mapping_kwargs=dict(num_layers=1),
                synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0))
D_KWARGS = dict(c_dim=0, img_channels=1, channel_base=256, channel_max=16, num_fp16_res=0)


def _swap_flat(x, axis, base):
    """Reorder a flat NCHW feature axis (C, h0, w0) of ``x`` as (C, w0, h0)."""
    h0, w0 = base
    x = jnp.moveaxis(x, axis, -1)
    lead = x.shape[:-1]
    x = x.reshape(*lead, -1, h0, w0).swapaxes(-1, -2).reshape(*lead, -1)
    return jnp.moveaxis(x, -1, axis)


def transposed(variables, d_fc_base=None, flat_out=(), flat_in=()):
    """The variables of the same network on transposed canvases: ``flat_out`` / ``flat_in`` name the dense
    layers whose output (G's input dense) or input (D's first dense) features are NCHW (C, h0, w0)."""

    def one(path, x):
        name, leaf = jax.tree_util.keystr(path), path[-1].key
        if any(f"'{layer}'" in name for layer in flat_out) and x.ndim == 2:
            return _swap_flat(x, 0, d_fc_base)
        if any(f"'{layer}'" in name for layer in flat_in) and x.ndim == 2:
            return _swap_flat(x, 1, d_fc_base)
        if x.ndim == 4:  # conv kernels [out, in, kh, kw]
            return jnp.swapaxes(x, 2, 3)
        if leaf == "noise_const":  # [h, w]
            return x.T
        if leaf in ("const", "b4_const"):  # [C, h, w]
            return jnp.swapaxes(x, 1, 2)
        if leaf == "freqs":  # [C, 2] as (x, y)
            return x[:, ::-1]
        if d_fc_base and "'fc'" in name and leaf == "weight":  # [out, C * h0 * w0] in NCHW order
            return _swap_flat(x, 1, d_fc_base)
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


@pytest.mark.parametrize("family", ["pggan", "stylegan1"])
def test_growing_families_transpose_at_every_resolution(family):
    """PGGAN and StyleGAN1 at (32, 24), base 4x3: the transposed (24, 32) networks make the transposed images
    at every training resolution (with a fade-in), and D scores them alike."""
    module = {"pggan": pggan, "stylegan1": stylegan1}[family]
    kw = dict(z_dim=8, c_dim=0, img_channels=1, fmap_base=64, fmap_max=16)
    if family == "stylegan1":
        kw.update(w_dim=8, mapping_layers=1, mapping_fmaps=8)
    G_tall, G_wide = module.Generator(img_resolution=(32, 24), **kw), module.Generator(img_resolution=(24, 32), **kw)
    d_kw = dict(c_dim=0, img_channels=1, fmap_base=64, fmap_max=16, mbstd_group_size=2)
    D_tall, D_wide = (module.Discriminator(img_resolution=r, **d_kw) for r in ((32, 24), (24, 32)))
    z, c = jax.random.normal(jax.random.key(1), (2, 8)), jnp.zeros((2, 0))
    g_vars = G_tall.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, z, c, noise_mode="const")
    d_vars = D_tall.init(jax.random.key(2), jnp.zeros((2, 32, 24, 1)), c)
    g_wide = transposed(g_vars, (4, 3), flat_out=("b4_dense",))
    d_wide = transposed(d_vars, (4, 3), flat_in=("b4_dense0",))
    for res, height, width in ((4, 4, 3), (16, 16, 12), (32, 32, 24)):
        grow = dict(resolution=res, alpha=0.5, noise_mode="const")
        tall = G_tall.apply(g_vars, z, c, **grow)
        wide = G_wide.apply(g_wide, z, c, **grow)
        assert tall.shape == (2, height, width, 1)
        np.testing.assert_allclose(np.asarray(wide), np.asarray(tall).swapaxes(1, 2), atol=1e-5)
        np.testing.assert_allclose(np.asarray(D_wide.apply(d_wide, wide, c, alpha=0.5)),
                                   np.asarray(D_tall.apply(d_vars, tall, c, alpha=0.5)), rtol=1e-5, atol=1e-5)
