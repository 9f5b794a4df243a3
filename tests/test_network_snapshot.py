"""Orbax network snapshots: save_network/load_network round trip, atomic replacement, clear errors."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from stylegan_jax import generate
from stylegan_jax.network_snapshot import NetworkLoadError, load_network, save_network
from tests.cli.usage import assert_one_error_line

PICKLE = Path(__file__).parent / "fixtures" / "nvidia_pickles" / "ada_skip16.pkl"


def test_converted_pickle_round_trips_and_generates_the_same_images(tmp_path):
    net = load_network(PICKLE)
    path = save_network(tmp_path / "snap", model="stylegan2", G_kwargs=net.G_kwargs, D_kwargs=net.D_kwargs, G=net.G,
                        G_ema=net.G_ema, D=net.D, metadata={"step": 7})
    back = load_network(path)
    assert back.G_kwargs == net.G_kwargs and back.D_kwargs == net.D_kwargs
    assert back.metadata == {"step": 7, "model": "stylegan2"}
    for a, b in ((net.G_ema, back.G_ema), (net.G, back.G), (net.D, back.D)):
        assert jax.tree.structure(a) == jax.tree.structure(b)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(x, y)
    generate.generate(net, [0, 1], str(tmp_path / "a"))
    generate.generate(back, [0, 1], str(tmp_path / "b"))
    for name in ("seed0000.png", "seed0001.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_existing_directory_needs_overwrite_and_is_replaced_whole(tmp_path):
    net = load_network(PICKLE)

    def save(version, **kwargs):
        save_network(tmp_path / "s", model="stylegan2", G_kwargs=net.G_kwargs, D_kwargs=None, G_ema=net.G_ema,
                     metadata={"v": version}, **kwargs)

    save(1)
    with pytest.raises(FileExistsError):
        save(2)
    save(2, overwrite=True)
    assert load_network(tmp_path / "s").metadata == {"v": 2, "model": "stylegan2"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary or old copies left


def test_relative_paths_save_and_load(tmp_path, monkeypatch):
    """What users type (``generate --network runs/quickstart/network-snapshot-000008``): Orbax itself takes only
    absolute paths."""
    net = load_network(PICKLE)
    monkeypatch.chdir(tmp_path)
    save_network(Path("runs") / "snap", model="stylegan2", G_kwargs=net.G_kwargs, D_kwargs=None, G_ema=net.G_ema)
    for a, b in zip(jax.tree.leaves(load_network("runs/snap").G_ema), jax.tree.leaves(net.G_ema), strict=True):
        np.testing.assert_array_equal(a, b)


def test_directory_that_is_not_a_snapshot_is_one_line(tmp_path):
    with pytest.raises(NetworkLoadError, match="no readable network.json") as info:
        load_network(tmp_path)
    assert "\n" not in str(info.value)


def test_a_training_run_directory_given_as_a_network_names_its_newest_snapshot(tmp_path):
    """By kimg, not by name: network-snapshot-1000000 (a 7-digit tag) is newer than network-snapshot-999999."""
    net = load_network(PICKLE)
    for tag in ("000004", "999999", "1000000"):
        save_network(tmp_path / f"network-snapshot-{tag}", model="stylegan2", G_kwargs=net.G_kwargs, D_kwargs=None,
                     G_ema=net.G_ema)
    with pytest.raises(NetworkLoadError, match=(
            rf"^{tmp_path} is a training run directory, not a network snapshot: give one of its 3 snapshots, e.g. "
            rf"the newest, {tmp_path}/network-snapshot-1000000$")):
        load_network(tmp_path)


@pytest.mark.parametrize("change", ["z_dim", "unknown kwarg", "array dropped"])
def test_kwargs_and_arrays_of_different_networks_are_one_line(tmp_path, change):
    """A snapshot whose network.json does not build the network of its arrays is refused when loaded, naming
    the snapshot and the first array that differs, not as a Flax shape error in the middle of a tool."""
    net = load_network(PICKLE)
    kwargs, tree = dict(net.G_kwargs), jax.tree.map(np.asarray, net.G_ema)
    if change == "z_dim":
        kwargs["z_dim"] = net.G_kwargs["z_dim"] * 2
    elif change == "unknown kwarg":
        kwargs["no_such_kwarg"] = 1
    else:
        del tree["params"]["mapping"]["fc0"]
    path = save_network(tmp_path / "s", model="stylegan2", G_kwargs=kwargs, D_kwargs=None, G_ema=tree)
    expected = {"z_dim": "G_ema's params/mapping/fc0/weight is shape", "unknown kwarg": "build no stylegan2 generator",
                "array dropped": "G_ema's params/mapping/fc0/bias is missing"}[change]
    with pytest.raises(NetworkLoadError, match=expected) as info:
        load_network(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.slow
def test_a_truncated_snapshot_is_one_line_from_the_tool(tmp_path):
    """generate on a snapshot whose array files were cut short: one error line, run after run. (Orbax's reads
    still in flight when the restore fails report 'Event loop is closed' from other threads; unfiltered, those
    were dozens of tracebacks around the line in most runs.)"""
    net = load_network(PICKLE)
    path = save_network(tmp_path / "snap", model="stylegan2", G_kwargs=net.G_kwargs, D_kwargs=net.D_kwargs, G=net.G,
                        G_ema=net.G_ema, D=net.D)
    for f in (Path(path) / "variables").glob("ocdbt.process_*/d/*"):  # the arrays' data files, not the index
        f.write_bytes(f.read_bytes()[:10])
    for attempt in range(3):
        proc = subprocess.run([sys.executable, "-m", "stylegan_jax.generate", "--network", str(path), "--seeds", "0",
                               "--outdir", str(tmp_path / f"out{attempt}")], capture_output=True, text=True,
                              timeout=300)
        assert_one_error_line("generate", proc.returncode, proc.stdout, proc.stderr, "cannot restore variables/")
        assert "tensorstore_spec" not in proc.stderr and len(proc.stderr) < 1000  # not TensorStore's 2 KB of spec


FAMILY_PICKLES = [PICKLE.parent / "sg3_t16.pkl", PICKLE.parent / "tf_stylegan1.pkl",
                  PICKLE.parent.parent / "r3gan_pickles" / "uncond16.pkl"]


@pytest.mark.parametrize("pickle", FAMILY_PICKLES, ids=lambda path: path.stem)
def test_every_family_saved_as_the_readme_shows_loads_back_as_itself(tmp_path, pickle):
    """README's ``save_network(..., model=net.model, ...)`` of a StyleGAN3, StyleGAN1 or R3GAN network: the
    snapshot records its family (a snapshot without one was read as StyleGAN2 and could not be loaded)."""
    net = load_network(pickle)
    path = save_network(tmp_path / "snap", model=net.model, G_kwargs=net.G_kwargs, D_kwargs=net.D_kwargs, G=net.G,
                        G_ema=net.G_ema, D=net.D)
    back = load_network(path)
    assert back.model == net.model != "stylegan2"
    class_idx = 0 if net.generator.c_dim else None
    generate.generate(net, [0], str(tmp_path / "a"), class_idx=class_idx)
    generate.generate(back, [0], str(tmp_path / "b"), class_idx=class_idx)
    assert (tmp_path / "a" / "seed0000.png").read_bytes() == (tmp_path / "b" / "seed0000.png").read_bytes()


def test_a_model_that_is_not_a_family_or_disagrees_with_the_metadata_is_refused_before_writing(tmp_path):
    net = load_network(PICKLE)
    with pytest.raises(ValueError, match="unknown model 'stylegan9'"):
        save_network(tmp_path / "a", model="stylegan9", G_kwargs=net.G_kwargs, D_kwargs=None, G_ema=net.G_ema)
    with pytest.raises(ValueError, match="model 'stylegan2' but metadata names 'stylegan3'"):
        save_network(tmp_path / "b", model="stylegan2", G_kwargs=net.G_kwargs, D_kwargs=None, G_ema=net.G_ema,
                     metadata={"model": "stylegan3"})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage, message", [
    (lambda index: [index], "network.json holds a JSON list, expected an object of format 'stylegan_jax.network/1'"),
    (lambda index: {k: v for k, v in index.items() if k != "G_kwargs"}, "network.json's G_kwargs is null, expected "
                                                                        "an object"),
    (lambda index: {**index, "G_kwargs": "ada"}, "network.json's G_kwargs is \"ada\", expected an object"),
    (lambda index: {**index, "D_kwargs": 3}, "network.json's D_kwargs is 3, expected an object or null"),
    (lambda index: {**index, "metadata": None}, "network.json's metadata is null, expected an object"),
    (lambda index: {**index, "trees": ["G", "G_ema"]}, r"variables/ holds \['D', 'G_ema'\] where network.json "
                                                       r"lists \['G', 'G_ema'\]"),
    (lambda index: {**index, "metadata": {"model": "stylegan9"}}, "the network's metadata: unknown model "
                                                                  "'stylegan9'"),
], ids=["list", "no G_kwargs", "G_kwargs a string", "D_kwargs a number", "metadata null", "trees", "model"])
def test_a_network_json_of_the_wrong_structure_is_one_line_naming_the_snapshot(tmp_path, damage, message):
    net = load_network(PICKLE)
    path = Path(save_network(tmp_path / "snap", model="stylegan2", G_kwargs=net.G_kwargs, D_kwargs=net.D_kwargs,
                             G_ema=net.G_ema, D=net.D))
    index = json.loads((path / "network.json").read_text())
    (path / "network.json").write_text(json.dumps(damage(index)))
    with pytest.raises(NetworkLoadError, match=message) as info:
        load_network(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_a_snapshot_without_a_generator_is_one_line(tmp_path):
    """Arrays of D alone (network.json listing them so) load no network for the tools to sample."""
    net = load_network(PICKLE)
    path = Path(save_network(tmp_path / "snap", model="stylegan2", G_kwargs=net.G_kwargs, D_kwargs=net.D_kwargs,
                             G_ema=net.G_ema, D=net.D))
    shutil.rmtree(path / "variables")
    with ocp.PyTreeCheckpointer() as checkpointer:
        checkpointer.save(path / "variables", {"D": net.D})
    index = json.loads((path / "network.json").read_text())
    (path / "network.json").write_text(json.dumps({**index, "trees": ["D"]}))
    with pytest.raises(NetworkLoadError, match=r"variables/ holds \['D'\] where network.json lists \['D'\]; a "
                                               r"snapshot holds G_ema or G"):
        load_network(path)
