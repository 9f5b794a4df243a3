"""R3GAN's training snapshots (``tests/fixtures/r3gan_pickles``, written by R3GAN's own classes and pickled as its
training loop does; ``tests/fixtures/make_r3gan_pickles.py``) load into our r3gan family: kwargs read off the
module tree, G_ema and D computing what R3GAN's forward computed, ``generate`` writing the PNGs R3GAN's outputs
make; a snapshot-looking pickle that names anything else is refused before anything runs."""

import os
import pickle
import sys
import types
from pathlib import Path

import jax
import ml_dtypes
import numpy as np
import PIL.Image
import pytest

from stylegan_jax import generate, sampling
from stylegan_jax.convert import load_network_pkl, torch_r3gan
from stylegan_jax.images import to_uint8
from stylegan_jax.io.network_pickle import NetworkPickleError, read_network_pickle
from stylegan_jax.network_snapshot import load_network

PICKLES = Path(__file__).parent.parent / "fixtures" / "r3gan_pickles"
NETS = ["uncond16", "cond16_bf16"]
#: Our kwargs of the fixture networks (make_r3gan_pickles.NETWORKS as R3GAN builds them).
SHARED = dict(img_resolution=16, img_channels=3, kernel_size=3, resampling_filter=[1, 2, 1])
EXPECTED = {
    "uncond16": (
        dict(z_dim=8, c_dim=0, width_per_stage=[8, 8, 4], cardinality_per_stage=[2, 2, 4], blocks_per_stage=[1, 2, 1],
             expansion_factor=2.0, condition_embedding_dim=0, fp16_stages=[], **SHARED),
        dict(c_dim=0, width_per_stage=[4, 8, 8], cardinality_per_stage=[4, 2, 2], blocks_per_stage=[1, 2, 1],
             expansion_factor=2.0, condition_embedding_dim=0, fp16_stages=[], **SHARED)),
    "cond16_bf16": (
        dict(z_dim=6, c_dim=3, width_per_stage=[8, 6, 4], cardinality_per_stage=[2, 3, 2], blocks_per_stage=[1, 1, 1],
             expansion_factor=3.0, condition_embedding_dim=5, fp16_stages=[2], **SHARED),
        dict(c_dim=3, width_per_stage=[4, 6, 8], cardinality_per_stage=[2, 3, 2], blocks_per_stage=[1, 1, 1],
             expansion_factor=3.0, condition_embedding_dim=8, fp16_stages=[0], **SHARED)),
}
#: Relative to the largest output: float32 as tests/models/test_r3gan.py; a bfloat16 stage rounds to 2^-8.
RTOL = {"uncond16": 1e-5, "cond16_bf16": 1e-2}
#: uint8 levels between our PNGs and R3GAN's outputs (a bfloat16 ulp near 4 is 0.03 = 4 levels).
LEVELS = {"uncond16": 1, "cond16_bf16": 4}


def golden(net: str):
    return np.load(PICKLES / f"{net}.npz")


@pytest.mark.parametrize("net", NETS)
def test_kwargs_are_read_off_the_module_tree(net):
    data = load_network_pkl(PICKLES / f"{net}.pkl")
    G_kwargs, D_kwargs = EXPECTED[net]
    assert data["G_kwargs"] == G_kwargs and data["D_kwargs"] == D_kwargs
    assert data["metadata"] == {"format": "r3gan", "model": "r3gan", "source": str(PICKLES / f"{net}.pkl")}
    g, g_ema = (jax.tree_util.tree_leaves(data[k]) for k in ("G", "G_ema"))  # G and G_ema are drawn apart
    assert [a.shape for a in g] == [a.shape for a in g_ema]
    assert not all(np.array_equal(a, b) for a, b in zip(g, g_ema, strict=True))


@pytest.mark.parametrize("net", NETS)
def test_g_ema_and_d_compute_r3gans_outputs(net):
    network, ref = load_network(PICKLES / f"{net}.pkl"), golden(net)
    assert network.model == "r3gan"
    g_out = network.generator.apply(network.G_ema, ref["z"], ref["c"], noise_mode="const")
    d_out = network.discriminator.apply(network.D, ref["img"], ref["c"])[:, 0]
    for ours, expected in ((g_out, ref["G_out"]), (d_out, ref["D_out"])):
        assert ours.dtype == np.float32 and ours.shape == expected.shape
        np.testing.assert_allclose(np.asarray(ours), expected, rtol=RTOL[net], atol=RTOL[net] * np.abs(expected).max())


@pytest.mark.parametrize("net", NETS)
def test_generate_writes_the_images_of_r3gans_outputs(net, tmp_path):
    """``generate --seeds 0-1`` (``--class 1`` when conditional, as the fixture's gen_images.py-style seeds):
    the PNGs are our G_ema's images exactly and R3GAN's within `LEVELS`."""
    path = str(PICKLES / f"{net}.pkl")
    network = load_network(path)
    G = network.generator
    cls = ["--class", "1"] if G.c_dim else []
    assert generate.main(["--network", path, "--seeds", "0-1", "--outdir", str(tmp_path), *cls]) == 0
    c = sampling.class_labels(G.c_dim, 1, 2) if G.c_dim else np.zeros((2, 0), np.float32)
    ours = np.asarray(to_uint8(G.apply(network.G_ema, sampling.seed_latents([0, 1], G.z_dim), c, noise_mode="const")))
    r3gans = np.asarray(to_uint8(golden(net)["seed_out"])).astype(int)
    for seed in (0, 1):
        got = np.asarray(PIL.Image.open(tmp_path / f"seed{seed:04d}.png"))
        np.testing.assert_array_equal(got, ours[seed])
        assert np.abs(got.astype(int) - r3gans[seed]).max() <= LEVELS[net]


def test_a_stage_type_we_cannot_map_is_one_line():
    data = read_network_pickle(PICKLES / "uncond16.pkl", torch_r3gan.PICKLE_GLOBALS)
    stages = [data[k].state["_modules"]["Model"].state["_modules"]["MainLayers"].state["_modules"]["1"]
              for k in ("G", "G_ema")]
    for stage in stages:
        stage.state["DataType"] = np.dtype(np.float16)
    with pytest.raises(NetworkPickleError, match=r"^G_ema\.MainLayers\.1: unsupported stage DataType") as e:
        torch_r3gan.convert_r3gan(data)
    assert "\n" not in str(e.value)
    for stage in stages:
        stage.state["DataType"] = np.dtype(ml_dtypes.bfloat16)
    assert torch_r3gan.convert_r3gan(data)["G_kwargs"]["fp16_stages"] == [1]


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_r3gan_snapshot_smuggling_a_global_is_refused_and_runs_nothing(tmp_path, monkeypatch):
    """A snapshot pickled from classes named as R3GAN's (G_ema: training.networks.Generator holding an
    R3GAN.Networks.Generator) whose state calls os.system: refused at that global, nothing executed."""
    classes = {}
    for module, name in (("training.networks", "Generator"), ("R3GAN.Networks", "Generator")):
        cls = classes[f"{module}.{name}"] = type(name, (), {"__module__": module, "__qualname__": name})
        for parent in (module.split(".")[0], module):
            monkeypatch.setitem(sys.modules, parent, sys.modules.get(parent) or types.ModuleType(parent))
        setattr(sys.modules[module], name, cls)
    model, wrapper = classes["R3GAN.Networks.Generator"](), classes["training.networks.Generator"]()
    model.__dict__.update(_parameters={}, _modules={}, training=False, hook=Payload(tmp_path / "executed"))
    wrapper.__dict__.update(_parameters={}, _modules={"Model": model}, z_dim=8, c_dim=0, img_resolution=16)
    path = tmp_path / "snapshot.pkl"
    path.write_bytes(pickle.dumps(dict(G_ema=wrapper, cur_nimg=0)))
    with pytest.raises(NetworkPickleError, match=r"snapshot\.pkl: refused to load global '(posix|os)\.system'"):
        load_network_pkl(path)
    assert not (tmp_path / "executed").exists()


class Calls:
    """Pickles as a call of ``cls(*args)`` (REDUCE), which no snapshot does."""

    def __init__(self, cls, *args):
        self.cls, self.args = cls, args

    def __reduce__(self):
        return self.cls, self.args


def test_a_pickle_calling_a_stand_in_is_refused(tmp_path, monkeypatch):
    """REDUCE of an allow-listed class (to choose its name or a state that is no dict) is one line."""
    module = types.ModuleType("training.networks")
    monkeypatch.setitem(sys.modules, "training", sys.modules.get("training") or types.ModuleType("training"))
    monkeypatch.setitem(sys.modules, "training.networks", module)
    module.Generator = type("Generator", (), {"__module__": "training.networks", "__qualname__": "Generator"})
    path = tmp_path / "called.pkl"
    path.write_bytes(pickle.dumps(dict(G_ema=Calls(module.Generator, "Generator", "not a dict"))))
    with pytest.raises(NetworkPickleError, match=r"called\.pkl: a pickle calls training\.networks\.Generator"):
        load_network_pkl(path)


def test_a_malformed_module_tree_is_one_line():
    """A zero-width layer and a module listed inside itself: one line each, not a traceback."""
    data = read_network_pickle(PICKLES / "uncond16.pkl", torch_r3gan.PICKLE_GLOBALS)
    block = data["G_ema"].state["_modules"]["Model"].state["_modules"]["MainLayers"].state["_modules"]["0"]
    block = block.state["_modules"]["Layers"].state["_modules"]["1"]
    layer = block.state["_modules"]["LinearLayer1"].state["_modules"]["Layer"]
    layer.state["_parameters"]["weight"] = np.zeros((16, 0, 1, 1), np.float32)
    with pytest.raises(NetworkPickleError, match=r"^malformed R3GAN snapshot \(ZeroDivisionError"):
        torch_r3gan.convert_r3gan(data)
    data = read_network_pickle(PICKLES / "uncond16.pkl", torch_r3gan.PICKLE_GLOBALS)
    model = data["G_ema"].state["_modules"]["Model"]
    model.state["_modules"]["itself"] = model
    with pytest.raises(NetworkPickleError, match=r"^malformed R3GAN snapshot \(RecursionError"):
        torch_r3gan.convert_r3gan(data)
