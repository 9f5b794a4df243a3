"""StyleGAN3 against NVIDIA's own code: small config T and R pickles written by NVlabs/stylegan3, the
synthesis and mapping outputs its networks computed and the PNGs its gen_images.py wrote
(``tests/fixtures/make_stylegan3_fixtures.py``); parameter counts of full-size networks; the magnitude EMA."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax import generate
from stylegan_jax.convert import NetworkPickleError, load_network_pkl, torch_stylegan3
from stylegan_jax.images import to_uint8
from stylegan_jax.io.network_pickle import read_network_pickle
from stylegan_jax.models import get_family
from stylegan_jax.models.stylegan3 import Generator, SynthesisNetwork
from stylegan_jax.network_snapshot import load_network

FIXTURES = Path(__file__).parent.parent / "fixtures"
PICKLES = FIXTURES / "nvidia_pickles"
NAMES = ["sg3_t16", "sg3_r16"]


@pytest.mark.parametrize("name", NAMES)
def test_synthesis_and_mapping_equal_nvidias(name):
    net = load_network_pkl(PICKLES / f"{name}.pkl")
    golden = np.load(PICKLES / f"{name}.npz")
    assert net["metadata"]["model"] == "stylegan3"
    G = Generator(**net["G_kwargs"])
    img = jax.jit(lambda v, ws: G.apply(v, ws, method="synthesize"))(net["G_ema"], golden["synthesis/ws"])
    expected = golden["synthesis/img"].transpose(0, 2, 3, 1)  # with the pickled (non-identity) transform
    np.testing.assert_allclose(np.asarray(img), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    ws = G.apply(net["G_ema"], golden["mapping/z"], np.zeros((3, 0), np.float32), 0.6, method="map")
    np.testing.assert_allclose(np.asarray(ws), golden["mapping/ws"], rtol=1e-4, atol=1e-5)


def cases(name):
    """{(psi, (tx, ty), rotate): {seed: golden uint8 HWC}} from the fixture's gen_images.py keys."""
    golden = np.load(PICKLES / f"{name}.npz")
    out = {}
    for key in golden.files:
        if key.startswith("psi"):
            psi, translate, rotate, seed = key.split("/")
            tx, ty = map(float, translate[len("translate"):].split(","))
            out.setdefault((float(psi[3:]), (tx, ty), float(rotate[6:])), {})[int(seed[4:])] = golden[key]
    return out


@pytest.mark.parametrize("name", NAMES)
def test_generate_writes_nvidias_gen_images_pngs(name, tmp_path):
    import PIL.Image

    worst = 0
    for (psi, (tx, ty), rotate), images in cases(name).items():
        out = tmp_path / f"{psi}-{tx}-{ty}-{rotate}"
        args = ["--network", str(PICKLES / f"{name}.pkl"), "--seeds", ",".join(map(str, images)), "--trunc",
                str(psi), "--translate", f"{tx},{ty}", "--rotate", str(rotate), "--outdir", str(out)]
        assert generate.main(args) == 0
        for seed, expected in images.items():
            got = np.asarray(PIL.Image.open(out / f"seed{seed:04d}.png")).astype(int)
            worst = max(worst, np.abs(got - expected).max())
    assert worst <= 1, f"{name}: {worst} levels apart"


def test_filters_are_designed_and_checked_against_the_pickle():
    data = read_network_pickle(PICKLES / "sg3_t16.pkl")
    layer = data["G_ema"].state["_modules"]["synthesis"].state["_modules"]["L2_36_16"]
    up = layer.state["_buffers"]["up_filter"]
    layer.state["_buffers"]["up_filter"] = up * 1.01
    with pytest.raises(NetworkPickleError, match="L2_36_16.up_filter differs from the filter designed"):
        torch_stylegan3.convert_torch3(data)


def count(module, *args):
    template = jax.eval_shape(lambda: module.init(jax.random.key(0), *args))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(template["params"]))


@pytest.mark.parametrize("cfg", ["stylegan3-t", "stylegan3-r"])
@pytest.mark.parametrize("res", [256, 1024])
def test_parameter_counts_equal_nvidias(cfg, res):
    from stylegan_jax.training.config import load_experiment

    expected = json.loads((FIXTURES / "nvidia_param_counts_stylegan3.json").read_text())[f"{cfg}-{res}/G"]
    c = load_experiment(cfg.replace("-", "_"))
    c.resolution = res
    G, _ = get_family("stylegan3").build(c, 0)
    assert count(G, jnp.zeros((1, 512)), jnp.zeros((1, 0))) == expected


def test_magnitude_ema_tracks_each_layers_input():
    """With update_emas each layer's EMA becomes mean(x^2) + beta * (ema - mean(x^2)) of its input x (the input
    of the same forward, which already uses the updated EMAs, as NVIDIA's)."""
    synthesis = SynthesisNetwork(w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
                                 num_layers=4, num_fp16_res=0, magnitude_ema_beta=0.9)
    ws = jax.random.normal(jax.random.key(1), (3, synthesis.num_ws, 8))
    variables = synthesis.init(jax.random.key(0), ws)
    _, updated = synthesis.apply(variables, ws, True, capture_intermediates=True,
                                 mutable=["buffers", "intermediates", "ema_stats"])
    state = updated
    inputs = [state["intermediates"]["input"]["__call__"][0]]
    _, specs = synthesis.schedule
    for spec in specs[:-1]:
        inputs.append(state["intermediates"][spec.name]["__call__"][0])
    for spec, x in zip(specs, inputs, strict=True):
        current = float(jnp.mean(jnp.square(x)))
        got = float(updated["buffers"][spec.name]["magnitude_ema"])
        assert got == pytest.approx(current + 0.9 * (1.0 - current), rel=1e-5), spec.name
        assert float(updated["ema_stats"][spec.name]["magnitude_ema"][0]) == pytest.approx(current, rel=1e-5)


def test_snapshot_round_trip_keeps_stylegan3(tmp_path):
    """Every array (the input transform and the magnitude EMAs among the buffers) and every kwarg come back."""
    from stylegan_jax.network_snapshot import save_network

    net = load_network(PICKLES / "sg3_r16.pkl")
    path = save_network(tmp_path / "snap", model="stylegan3", G_kwargs=net.G_kwargs, D_kwargs=net.D_kwargs,
                        G_ema=net.G_ema)
    back = load_network(path)
    assert back.family.name == "stylegan3" and back.generator.num_ws == 8
    assert back.G_kwargs == net.G_kwargs and back.D_kwargs == net.D_kwargs
    assert jax.tree.structure(back.G_ema) == jax.tree.structure(net.G_ema)
    for a, b in zip(jax.tree.leaves(net.G_ema), jax.tree.leaves(back.G_ema), strict=True):
        np.testing.assert_array_equal(a, b)


def test_style_mixing_mixes_stylegan3_ws_as_nvidias_tool(tmp_path):
    """Row seed r, column seed c: r's ws with the --styles layers taken from c's (NVIDIA's style_mixing.py, psi
    1), rendered with the network's own input transform (the tool sets none); the grid's cells are the PNGs."""
    import PIL.Image

    from stylegan_jax import sampling, style_mixing

    out = tmp_path / "mix"
    assert style_mixing.main(["--network", str(PICKLES / "sg3_t16.pkl"), "--rows", "1,2", "--cols", "3",
                              "--styles", "0-3", "--outdir", str(out)]) == 0
    net = load_network(PICKLES / "sg3_t16.pkl")
    G = net.generator
    z = sampling.seed_latents([1, 2, 3], G.z_dim)
    ws = np.asarray(G.apply(net.G_ema, z, np.zeros((3, 0), np.float32), method="map"))
    mixed = ws[[0, 1, 0, 1, 2]].copy()
    mixed[2:4, :4] = ws[2, :4]  # 1-3 and 2-3
    expected = np.asarray(to_uint8(G.apply(net.G_ema, mixed, "const", True, method="synthesize")))

    def png(name):
        return np.asarray(PIL.Image.open(out / name)).astype(int)

    for name, image in zip(("1-1.png", "2-2.png", "1-3.png", "2-3.png", "3-3.png"), expected, strict=True):
        assert np.abs(png(name) - image).max() <= 1, name
    assert np.abs(png("1-3.png") - png("1-1.png")).mean() > 1 and np.abs(png("1-3.png") - png("3-3.png")).mean() > 1
    grid = png("grid.png")  # NVIDIA's layout: the column seeds' images along the top, the rows' down the left
    assert grid.shape == (3 * 16, 2 * 16, 3)
    for (row, col), name in {(0, 1): "3-3.png", (1, 0): "1-1.png", (2, 0): "2-2.png", (1, 1): "1-3.png",
                             (2, 1): "2-3.png"}.items():
        np.testing.assert_array_equal(grid[16 * row : 16 * row + 16, 16 * col : 16 * col + 16], png(name))
