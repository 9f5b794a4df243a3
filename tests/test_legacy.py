"""NVIDIA's network pickles (real ones, made by NVIDIA's code: ``tests/fixtures/make_nvidia_pickles.py``)
read without torch and without executing anything from the file."""

import os
import pickle
from pathlib import Path

import jax
import numpy as np
import pytest

from stylegan_jax.convert import load_network_pkl, tf_stylegan2, torch_stylegan2, torch_stylegan3
from stylegan_jax.io.network_pickle import NetworkPickleError, read_network_pickle

PICKLES = Path(__file__).parent / "fixtures" / "nvidia_pickles"


def test_stylegan2_ada_pytorch_pickle_converts_with_kwargs_and_buffers():
    net = load_network_pkl(PICKLES / "ada_resnet32_cond10.pkl")
    assert net["metadata"]["format"] == "stylegan2-ada-pytorch"
    assert net["G_kwargs"]["synthesis_kwargs"]["architecture"] == "resnet"
    assert net["G_kwargs"]["mapping_kwargs"]["w_avg_beta"] == 0.995
    assert net["D_kwargs"]["epilogue_kwargs"] == {"mbstd_group_size": 2}
    raw = read_network_pickle(PICKLES / "ada_resnet32_cond10.pkl")
    w_avg = raw["G_ema"].state["_modules"]["mapping"].state["_buffers"]["w_avg"]
    np.testing.assert_array_equal(net["G_ema"]["buffers"]["mapping"]["w_avg"], w_avg)
    assert not np.array_equal(net["G"]["params"]["mapping"]["fc0"]["weight"],
                              net["G_ema"]["params"]["mapping"]["fc0"]["weight"])  # G and G_ema kept apart


def test_stylegan3_repo_stylegan2_takes_its_own_defaults():
    net = load_network_pkl(PICKLES / "sg3repo_stylegan2_8_cond3.pkl")
    assert net["metadata"]["format"] == "stylegan3"
    assert net["G_kwargs"]["mapping_kwargs"]["w_avg_beta"] == 0.998  # stylegan3's default, recorded by NVIDIA
    assert net["G_kwargs"]["synthesis_kwargs"]["channel_max"] == 8  # flat kwargs moved into synthesis_kwargs
    assert "freeze_layers" not in net["D_kwargs"]["block_kwargs"]


@pytest.mark.parametrize("name, beta", [("sg3repo_stylegan2_8_cond3", 0.998), ("ada_skip16", 0.995)])
def test_w_avg_beta_defaults_by_repository_when_not_recorded(name, beta):
    G = read_network_pickle(PICKLES / f"{name}.pkl")["G_ema"]
    del G.state["_modules"]["mapping"].state["w_avg_beta"]
    assert torch_stylegan2.generator_kwargs(G)["mapping_kwargs"]["w_avg_beta"] == beta


@pytest.mark.parametrize("name, defaults", [("sg3repo_stylegan2_8_cond3", (4, 256)), ("sg3_t16", (4, 256)),
                                           ("ada_skip16", (0, None))])
def test_fp16_and_clamp_default_by_repository_when_not_recorded(name, defaults):
    """stylegan3's train.py records neither num_fp16_res nor conv_clamp (unless --fp32): its networks_stylegan2
    defaults (4 and 256, for G's synthesis and D) apply, where stylegan2-ada-pytorch's are 0 and None."""
    data = read_network_pickle(PICKLES / f"{name}.pkl")
    for module in ("G", "G_ema", "D"):
        for key in ("num_fp16_res", "conv_clamp"):
            data[module].state["_init_kwargs"].pop(key, None)
            data[module].state["_init_kwargs"].get("synthesis_kwargs", {}).pop(key, None)
    net = (torch_stylegan3.convert_torch3 if name.startswith("sg3_") else torch_stylegan2.convert_torch)(data)
    assert (net["D_kwargs"]["num_fp16_res"], net["D_kwargs"]["conv_clamp"]) == defaults
    if not name.startswith("sg3_"):  # StyleGAN3's own G: our defaults are networks_stylegan3's (4, 256)
        synthesis = net["G_kwargs"]["synthesis_kwargs"]
        assert (synthesis["num_fp16_res"], synthesis["conv_clamp"]) == defaults


def test_tf_era_pickle_converts_as_nvidias_legacy_py():
    net = load_network_pkl(PICKLES / "tf_stylegan2.pkl")
    assert net["metadata"]["format"] == "tensorflow"
    assert net["G_kwargs"]["z_dim"] == 6 and net["G_kwargs"]["synthesis_kwargs"]["channel_base"] == 64
    tf = read_network_pickle(PICKLES / "tf_stylegan2.pkl")[2]
    dlatent_avg = dict(tf.state["variables"])["dlatent_avg"]
    np.testing.assert_array_equal(net["G_ema"]["buffers"]["mapping"]["w_avg"], dlatent_avg)


def test_tf_kwargs_that_shape_nothing_are_ignored_as_stylegan3s_legacy_py_ignores_them():
    """``fused_modconv`` (G) and ``conditioning`` (G and D) of later TF StyleGAN2 pickles change no array:
    the network converts as without them; an unknown kwarg is still refused, naming it."""
    nets = read_network_pickle(PICKLES / "tf_stylegan2.pkl")
    plain = tf_stylegan2.convert_tf_stylegan2(nets)
    for net in nets:
        net.state["static_kwargs"]["conditioning"] = False
    nets[2].state["static_kwargs"]["fused_modconv"] = True
    nets[0].state["static_kwargs"]["fused_modconv"] = False
    converted = tf_stylegan2.convert_tf_stylegan2(nets)
    assert converted["G_kwargs"] == plain["G_kwargs"] and converted["D_kwargs"] == plain["D_kwargs"]
    for a, b in zip(jax.tree.leaves(converted), jax.tree.leaves(plain), strict=True):
        np.testing.assert_array_equal(a, b)
    nets[1].state["static_kwargs"]["fmap_min"] = 1
    with pytest.raises(NetworkPickleError, match="TF-era D: unknown kwarg 'fmap_min'"):
        tf_stylegan2.convert_tf_stylegan2(nets)


def test_stylegan3_pickle_converts_to_the_stylegan3_family():
    """A 3-layer StyleGAN3 snapshot (its buffers, transform included, perturbed) loads as NVIDIA's stylegan3
    code built it (outputs: tests/models/test_stylegan3.py)."""
    net = load_network_pkl(PICKLES / "sg3_alias_free.pkl")
    assert net["metadata"]["model"] == "stylegan3" and net["G_kwargs"]["synthesis_kwargs"]["num_layers"] == 3
    raw = read_network_pickle(PICKLES / "sg3_alias_free.pkl")
    for name in ("G", "G_ema"):
        layers = raw[name].state["_modules"]["synthesis"].state["_modules"]
        converted = net[name]["buffers"]["synthesis"]
        assert sorted(converted) == sorted(layers)
        for layer, module in layers.items():
            for buffer, value in converted[layer].items():  # the input's transform, frequencies and phases; the
                np.testing.assert_array_equal(value, module.state["_buffers"][buffer])  # layers' magnitude EMAs
    assert not np.array_equal(net["G_ema"]["buffers"]["synthesis"]["input"]["transform"], np.eye(3))


class Payload:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_pickle_calling_os_system_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Payload(f"touch {marker}")}))
    with pytest.raises(NetworkPickleError, match=r"evil\.pkl: refused to load global '(posix|os)\.system'"):
        load_network_pkl(path)
    assert not marker.exists()


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (None, "truncated"),
    (b"\x89PNG\r\n\x1a\n not a pickle at all", "not a readable pickle"),
    (pickle.dumps({"weights": [1.0, 2.0]}), "not G/D/G_ema"),
])
def test_bad_files_are_one_clear_line(tmp_path, content, reason):
    path = tmp_path / "network.pkl"
    path.write_bytes((PICKLES / "ada_skip16.pkl").read_bytes()[:5000] if content is None else content)
    with pytest.raises(NetworkPickleError) as info:
        load_network_pkl(path)
    message = str(info.value)
    assert message.startswith(str(path)) and reason in message and "\n" not in message
    assert "expected an NVIDIA network pickle" in message


@pytest.mark.parametrize("error", [RecursionError("maximum recursion depth exceeded"), AttributeError("'list' "
                                   "object has no attribute 'items'"), TypeError("'<' not supported")])
def test_a_network_tree_the_converter_cannot_read_is_one_clear_line(monkeypatch, error):
    """What a hostile or damaged tree raises deep in a converter (a module that is its own submodule, a list
    where a dict belongs) names the file in one line, as every other refusal does."""
    def damaged(data):
        raise error

    monkeypatch.setattr(torch_stylegan2, "convert_torch", damaged)
    with pytest.raises(NetworkPickleError) as e:
        load_network_pkl(PICKLES / "ada_skip16.pkl")
    assert str(e.value).startswith(f"{PICKLES / 'ada_skip16.pkl'}: a damaged network ({type(error).__name__}: ")
    assert "\n" not in str(e.value)


def test_a_pickle_cannot_change_the_stand_ins_that_later_loads_use(tmp_path):
    """BUILD on a global sets its attributes: a hostile pickle setting EasyDict's ``__setitem__`` emptied the
    kwargs of every network loaded after it in the process. Each load now gets its own stand-ins, and a
    function's attributes are not to be set."""
    before = load_network_pkl(PICKLES / "ada_skip16.pkl")["G_kwargs"]
    hostile = tmp_path / "hostile.pkl"
    hostile.write_bytes(b"\x80\x04cdnnlib.util\nEasyDict\nN}\x8c\x0b__setitem__ctorch._utils\n_rebuild_parameter\n"
                        b"s\x86b0N.")  # setattr(EasyDict, "__setitem__", _rebuild_parameter)
    read_network_pickle(hostile)
    assert load_network_pkl(PICKLES / "ada_skip16.pkl")["G_kwargs"] == before
    hostile.write_bytes(b"\x80\x04ctorch._utils\n_rebuild_parameter\nN}\x8c\x0c__defaults__)s\x86b0N.")
    with pytest.raises(NetworkPickleError, match="refused to set the state of the allowed global _rebuild_parameter"):
        read_network_pickle(hostile)
