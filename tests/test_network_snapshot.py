"""Orbax network snapshots: save_network/load_network round trip, atomic replacement, clear errors."""

from pathlib import Path

import jax
import numpy as np
import pytest

from stylegan_jax import generate
from stylegan_jax.network_snapshot import NetworkLoadError, load_network, save_network

PICKLE = Path(__file__).parent / "fixtures" / "nvidia_pickles" / "ada_skip16.pkl"


def test_converted_pickle_round_trips_and_generates_the_same_images(tmp_path):
    net = load_network(PICKLE)
    path = save_network(tmp_path / "snap", G_kwargs=net.G_kwargs, D_kwargs=net.D_kwargs, G=net.G, G_ema=net.G_ema,
                        D=net.D, metadata={"step": 7})
    back = load_network(path)
    assert back.G_kwargs == net.G_kwargs and back.D_kwargs == net.D_kwargs and back.metadata == {"step": 7}
    for a, b in ((net.G_ema, back.G_ema), (net.G, back.G), (net.D, back.D)):
        assert jax.tree.structure(a) == jax.tree.structure(b)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(x, y)
    generate.generate(net, [0, 1], str(tmp_path / "a"))
    generate.generate(back, [0, 1], str(tmp_path / "b"))
    for name in ("seed0000.png", "seed0001.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_existing_directory_needs_overwrite_and_is_replaced_whole(tmp_path):
    tree = {"params": {"w": np.ones(3, np.float32)}}
    save_network(tmp_path / "s", G_kwargs={"z_dim": 1}, D_kwargs=None, G_ema=tree)
    with pytest.raises(FileExistsError):
        save_network(tmp_path / "s", G_kwargs={"z_dim": 2}, D_kwargs=None, G_ema=tree)
    save_network(tmp_path / "s", G_kwargs={"z_dim": 2}, D_kwargs=None, G_ema=tree, overwrite=True)
    assert load_network(tmp_path / "s").G_kwargs == {"z_dim": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary or old copies left


def test_relative_paths_save_and_load(tmp_path, monkeypatch):
    """What users type (``generate --network runs/quickstart/network-snapshot-000008``): Orbax itself takes only
    absolute paths."""
    monkeypatch.chdir(tmp_path)
    tree = {"params": {"w": np.arange(3, dtype=np.float32)}}
    save_network(Path("runs") / "snap", G_kwargs={"z_dim": 1}, D_kwargs=None, G_ema=tree)
    np.testing.assert_array_equal(load_network("runs/snap").G_ema["params"]["w"], tree["params"]["w"])


def test_directory_that_is_not_a_snapshot_is_one_line(tmp_path):
    with pytest.raises(NetworkLoadError, match="no readable network.json") as info:
        load_network(tmp_path)
    assert "\n" not in str(info.value)
