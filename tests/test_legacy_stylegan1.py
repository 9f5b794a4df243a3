"""TF-era StyleGAN1 pickles (``tests/fixtures/make_tf_stylegan1_pickles.py``) read through the restricted
unpickler and converted to ``models/stylegan1``, checked against NVIDIA's G_style / D_basic written out here
in NumPy float64 on the raw TF variables (NCHW, TF layouts, fused transposed / strided convs as TF computes
them)."""

from pathlib import Path

import jax
import numpy as np
import pytest

from stylegan_jax.convert import load_network_pkl, tf_stylegan1
from stylegan_jax.io.network_pickle import NetworkPickleError, TFNetwork, read_network_pickle
from stylegan_jax.models import stylegan1

PICKLES = Path(__file__).parent / "fixtures" / "nvidia_pickles"
SQRT2 = np.sqrt(2)


# --- NVIDIA's TF ops in NumPy float64, NCHW --------------------------------------------------------------
def lrelu(x):
    return np.maximum(x, 0.2 * x)


def dense(x, w, gain, lrmul=1.0):
    """w [in, out], equalised lr: runtime scale gain / sqrt(fan_in) * lrmul."""
    return x.reshape(x.shape[0], -1) @ (w * gain / np.sqrt(w.shape[0]) * lrmul)


def conv(x, w, gain):
    """'SAME' correlation with w [k, k, in, out]."""
    k, (h, wd) = w.shape[0], x.shape[2:]
    w = w * gain / np.sqrt(k * k * w.shape[2])
    xp = np.pad(x, ((0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2)))
    return sum(np.einsum("nihw,io->nohw", xp[:, :, dy : dy + h, dx : dx + wd], w[dy, dx])
               for dy in range(k) for dx in range(k))


def fused_kernel(w):
    """NVIDIA's 4x4 kernel: the 3x3 one padded and summed over the four one-pixel shifts."""
    w = np.pad(w, ((1, 1), (1, 1), (0, 0), (0, 0)))
    return w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]


def fused_upscale_conv(x, w, gain):
    """upscale2d_conv2d(fused_scale=True): tf.nn.conv2d_transpose, stride 2, 'SAME', with the 4x4 kernel:
    output row 2 o + k - 1 receives input row o through tap k."""
    w = fused_kernel(w.transpose(0, 1, 3, 2) * gain / np.sqrt(9 * w.shape[2]))  # [4, 4, out, in]
    n, _, h, wd = x.shape
    out = np.zeros((n, w.shape[2], 2 * h + 2, 2 * wd + 2))
    for ky in range(4):
        for kx in range(4):
            out[:, :, ky : ky + 2 * h : 2, kx : kx + 2 * wd : 2] += np.einsum("nihw,oi->nohw", x, w[ky, kx])
    return out[:, :, 1 : 2 * h + 1, 1 : 2 * wd + 1]


def fused_conv_downscale(x, w, gain):
    """conv2d_downscale2d(fused_scale=True): stride-2 'SAME' conv with the 4x4 kernel / 4 (pad 1 each side)."""
    w = fused_kernel(w * gain / np.sqrt(9 * w.shape[2])) * 0.25
    h, wd = x.shape[2] // 2, x.shape[3] // 2
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    return sum(np.einsum("nihw,io->nohw", xp[:, :, ky : ky + 2 * h : 2, kx : kx + 2 * wd : 2], w[ky, kx])
               for ky in range(4) for kx in range(4))


def blur(x):
    f = np.outer([1, 2, 1], [1, 2, 1]) / 16
    h, wd = x.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    return sum(f[dy, dx] * xp[:, :, dy : dy + h, dx : dx + wd] for dy in range(3) for dx in range(3))


def pixel_norm(x):
    return x / np.sqrt(np.mean(x**2, axis=1, keepdims=True) + 1e-8)


def instance_norm(x):
    x = x - x.mean(axis=(2, 3), keepdims=True)
    return x / np.sqrt(np.mean(x**2, axis=(2, 3), keepdims=True) + 1e-8)


def tf_variables(net, prefix=""):
    out = {prefix + k: np.float64(v) for k, v in net.state["variables"]}
    for name, component in net.state["components"].items():
        out.update(tf_variables(component, f"{prefix}{name}/"))
    return out


def g_style(net, z, c, psi=None, cutoff=None):
    """NVIDIA's G_style at lod 0 with randomize_noise=False -> images NCHW."""
    s, p = net.state["static_kwargs"], tf_variables(net)
    fused = s.get("fused_scale", "auto")
    styles, noise = s.get("use_styles", True), s.get("use_noise", True)
    x = z
    if s["label_size"]:
        x = np.concatenate([z, c @ p["mapping/LabelConcat/weight"]], axis=1)
    x = pixel_norm(x)
    for i in range(s["mapping_layers"]):
        x = lrelu(dense(x, p[f"mapping/Dense{i}/weight"], SQRT2, 0.01) + p[f"mapping/Dense{i}/bias"] * 0.01)
    res_log2 = int(np.log2(s["resolution"]))
    num_styles = 2 * res_log2 - 2 if styles else 1
    dl = np.repeat(x[:, None], num_styles, axis=1)
    if psi is not None and cutoff is not None:
        coefs = np.where(np.arange(num_styles)[None, :, None] < cutoff, psi, 1.0)
        dl = p["dlatent_avg"] + (dl - p["dlatent_avg"]) * coefs

    def epilogue(x, scope, idx):
        scope = "synthesis/" + scope
        if noise:
            x = x + p[f"synthesis/noise{idx}"] * p[f"{scope}/Noise/weight"][None, :, None, None]
        x = lrelu(x + p[f"{scope}/bias"][None, :, None, None])
        x = pixel_norm(x) if s.get("use_pixel_norm", False) else x
        x = instance_norm(x) if s.get("use_instance_norm", True) else x
        if styles:
            style = dense(dl[:, idx], p[f"{scope}/StyleMod/weight"], 1.0) + p[f"{scope}/StyleMod/bias"]
            ch = x.shape[1]
            x = x * (style[:, :ch, None, None] + 1) + style[:, ch:, None, None]
        return x

    if s.get("const_input_layer", True):
        x = epilogue(np.repeat(p["synthesis/4x4/Const/const"], len(z), axis=0), "4x4/Const", 0)
    else:
        x = dense(dl[:, 0], p["synthesis/4x4/Dense/weight"], SQRT2 / 4)
        x = epilogue(x.reshape(len(z), -1, 4, 4), "4x4/Dense", 0)
    x = epilogue(conv(x, p["synthesis/4x4/Conv/weight"], SQRT2), "4x4/Conv", 1)
    for r in range(3, res_log2 + 1):
        w = p[f"synthesis/{2**r}x{2**r}/Conv0_up/weight"]
        use_fused = fused is True or (fused == "auto" and 2**r >= 128)
        x = fused_upscale_conv(x, w, SQRT2) if use_fused else conv(x.repeat(2, 2).repeat(2, 3), w, SQRT2)
        x = epilogue(blur(x), f"{2**r}x{2**r}/Conv0_up", 2 * r - 4)
        x = epilogue(conv(x, p[f"synthesis/{2**r}x{2**r}/Conv1/weight"], SQRT2), f"{2**r}x{2**r}/Conv1", 2 * r - 3)
    return conv(x, p["synthesis/ToRGB_lod0/weight"], 1.0) + p["synthesis/ToRGB_lod0/bias"][None, :, None, None]


def d_basic(net, img, c):
    """NVIDIA's D_basic at lod 0, img NCHW -> scores [N, 1]."""
    s, p = net.state["static_kwargs"], tf_variables(net)
    fused = s.get("fused_scale", "auto")
    x = lrelu(conv(img, p["FromRGB_lod0/weight"], SQRT2) + p["FromRGB_lod0/bias"][None, :, None, None])
    for r in range(int(np.log2(s["resolution"])), 2, -1):
        scope = f"{2**r}x{2**r}"
        x = lrelu(conv(x, p[f"{scope}/Conv0/weight"], SQRT2) + p[f"{scope}/Conv0/bias"][None, :, None, None])
        w = p[f"{scope}/Conv1_down/weight"]
        if fused is True or (fused == "auto" and 2**r >= 128):
            x = fused_conv_downscale(blur(x), w, SQRT2)
        else:
            y = conv(blur(x), w, SQRT2)
            x = y.reshape(*y.shape[:2], y.shape[2] // 2, 2, y.shape[3] // 2, 2).mean(axis=(3, 5))
        x = lrelu(x + p[f"{scope}/Conv1_down/bias"][None, :, None, None])
    group = min(s.get("mbstd_group_size", 4), len(x))
    y = x.reshape(group, -1, 1, x.shape[1], 4, 4)
    y = np.sqrt(np.mean((y - y.mean(axis=0)) ** 2, axis=0) + 1e-8).mean(axis=(2, 3, 4))  # [M, 1]
    x = np.concatenate([x, np.tile(y, (group, 1))[:, :, None, None] * np.ones((1, 1, 4, 4))], axis=1)
    x = lrelu(conv(x, p["4x4/Conv/weight"], SQRT2) + p["4x4/Conv/bias"][None, :, None, None])
    x = lrelu(dense(x, p["4x4/Dense0/weight"], SQRT2) + p["4x4/Dense0/bias"])
    x = dense(x, p["4x4/Dense1/weight"], 1.0) + p["4x4/Dense1/bias"]
    return np.sum(x * c, axis=1, keepdims=True) if s["label_size"] else x


# --- tests ---------------------------------------------------------------------------------------------
CASES = [("tf_stylegan1", None, None), ("tf_stylegan1", *stylegan1.FAMILY.truncation),
         ("tf_stylegan1_tuned_baseline", None, None), ("tf_stylegan1_rung_c", None, None),
         ("tf_stylegan1_rung_d", *stylegan1.FAMILY.truncation)]


@pytest.mark.parametrize("name, psi, cutoff", CASES)
def test_generator_matches_nvidias_g_style_in_numpy(name, psi, cutoff):
    net = load_network_pkl(PICKLES / f"{name}.pkl")
    assert net["metadata"]["model"] == "stylegan1"
    tf_G, _, tf_Gs = read_network_pickle(PICKLES / f"{name}.pkl")
    rng = np.random.default_rng(0)
    kw = net["G_kwargs"]
    z = rng.standard_normal((4, kw["z_dim"]))
    c = np.eye(2)[[0, 1, 1, 0]][:, : kw["c_dim"]]
    G = stylegan1.Generator(**kw)
    trunc = {} if psi is None else dict(truncation_psi=psi, truncation_cutoff=cutoff)
    for variables, tf_net in ((net["G_ema"], tf_Gs), (net["G"], tf_G)):
        got = jax.jit(lambda v, z, c: G.apply(v, z, c, noise_mode="const", **trunc))(variables, np.float32(z),
                                                                                       np.float32(c))
        expected = g_style(tf_net, z, c, psi, cutoff).transpose(0, 2, 3, 1)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("name", ["tf_stylegan1", "tf_stylegan1_tuned_baseline", "tf_stylegan1_rung_c"])
def test_discriminator_matches_nvidias_d_basic_in_numpy(name):
    net = load_network_pkl(PICKLES / f"{name}.pkl")
    tf_D = read_network_pickle(PICKLES / f"{name}.pkl")[1]
    kw = net["D_kwargs"]
    rng = np.random.default_rng(1)
    img = rng.standard_normal((4, kw["img_resolution"], kw["img_resolution"], kw["img_channels"]))
    c = np.eye(2)[[1, 0, 1, 1]][:, : kw["c_dim"]]
    got = stylegan1.Discriminator(**kw).apply(net["D"], np.float32(img), np.float32(c))
    expected = d_basic(tf_D, img.transpose(0, 3, 1, 2), c)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_kwargs_and_buffers_come_from_the_pickle():
    net = load_network_pkl(PICKLES / "tf_stylegan1.pkl")
    Gs = read_network_pickle(PICKLES / "tf_stylegan1.pkl")[2]
    assert net["G_kwargs"]["c_dim"] == 2 and net["G_kwargs"]["mapping_layers"] == 2
    assert net["D_kwargs"]["mbstd_group_size"] == 2
    w_avg = dict(Gs.state["variables"])["dlatent_avg"]
    np.testing.assert_array_equal(net["G_ema"]["buffers"]["mapping"]["w_avg"], w_avg)
    noise = dict(Gs.state["components"]["synthesis"].state["variables"])["noise3"]
    np.testing.assert_array_equal(net["G_ema"]["buffers"]["synthesis"]["b8_conv1"]["noise_const"], noise[0, 0])


def test_a_snapshot_written_while_growing_generates_at_its_lod():
    """NVIDIA's Gs carries the lod it was trained to: 1.5 of this 16x16 network is 8x8 half faded in, the
    images enlarged to 16x16; a lod past the 4x4 base is one line."""
    nets = read_network_pickle(PICKLES / "tf_stylegan1.pkl")
    synthesis = nets[2].state["components"]["synthesis"].state
    synthesis["variables"] = [(n, np.float32(1.5) if n == "lod" else v) for n, v in synthesis["variables"]]
    net = tf_stylegan1.convert_tf_stylegan1(nets)
    assert (net["G_kwargs"]["grown_resolution"], net["G_kwargs"]["grown_alpha"]) == (8, 0.5)
    G = stylegan1.Generator(**net["G_kwargs"])
    z, c = np.random.default_rng(0).standard_normal((2, G.z_dim)), np.eye(2)[[0, 1]]
    grown = G.apply(net["G_ema"], z, c, noise_mode="const")
    at_8 = G.apply(net["G_ema"], z, c, noise_mode="const", resolution=8, alpha=0.5)
    np.testing.assert_array_equal(grown, np.asarray(at_8).repeat(2, axis=1).repeat(2, axis=2))
    synthesis["variables"] = [(n, np.float32(2.5) if n == "lod" else v) for n, v in synthesis["variables"]]
    with pytest.raises(NetworkPickleError, match=r"synthesis/lod 2.5: lod 2.5 is outside \[0, 2\]"):
        tf_stylegan1.convert_tf_stylegan1(nets)


def test_unsupported_static_kwarg_and_foreign_network_are_one_clear_line(tmp_path):
    nets = read_network_pickle(PICKLES / "tf_stylegan1.pkl")
    nets[2].state["static_kwargs"]["use_leakyrelu"] = False
    with pytest.raises(NetworkPickleError, match="Gs: unsupported kwarg use_leakyrelu=False"):
        tf_stylegan1.convert_tf_stylegan1(nets)
    pggan = TFNetwork()
    pggan.state = {"build_func_name": "G_paper", "static_kwargs": {}, "variables": [], "components": {}}
    with pytest.raises(NetworkPickleError, match="built by 'G_paper', expected 'D_basic'"):
        tf_stylegan1.convert_network(pggan, "D")


def test_a_synthesis_nonlinearity_other_than_the_mappings_default_is_refused():
    """NVIDIA's G_mapping takes mapping_nonlinearity (default lrelu), never G_synthesis's nonlinearity; our G has
    one for both, so a relu synthesis without a relu mapping is refused rather than mapped with relu."""
    nets = read_network_pickle(PICKLES / "tf_stylegan1.pkl")
    static = nets[2].state["static_kwargs"]
    static["nonlinearity"] = "relu"
    with pytest.raises(NetworkPickleError, match="mapping and synthesis nonlinearities differ"):
        tf_stylegan1.convert_network(nets[2], "Gs")
    static["mapping_nonlinearity"] = "relu"
    assert tf_stylegan1.convert_network(nets[2], "Gs")[0]["nonlinearity"] == "relu"
