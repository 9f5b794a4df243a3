"""The family contract: one registry, every config key reaches a constructor, and a new family is one
module's `register` call (shown with a toy family trained by the unchanged loop)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from stylegan_jax.models import FAMILIES, get_family
from stylegan_jax.models.registry import Family, UnknownFamilyError
from stylegan_jax.training.config import lineage_defaults


def test_every_family_is_registered_once_under_its_config_name():
    assert set(FAMILIES) == {"dcgan", "pggan", "stylegan1", "stylegan2", "stylegan2_revised", "stylegan3", "r3gan",
                             "stylegan2_stripped"}
    assert all(f.name == name for name, f in FAMILIES.items())
    with pytest.raises(UnknownFamilyError, match="--config.model: unknown model 'stylegan9'"):
        get_family("stylegan9")


def _other_value(value):
    """A different value of the same type (a placeholder None takes an int, else a bool)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list | tuple):
        return type(value)([*value, 1])
    return 3


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_config_key_reaches_a_constructor(name):
    """Changing any key of cfg.G / cfg.D changes the constructor kwargs (no key is silently dropped)."""
    family = get_family(name)
    base = family.network_kwargs(lineage_defaults(name), 0)
    for net, index in (("G", 0), ("D", 1)):
        for key in lineage_defaults(name)[net].keys():
            probe = lineage_defaults(name)
            try:
                probe[net][key] = _other_value(probe[net][key])
            except TypeError:  # a bool placeholder
                probe[net][key] = True
            assert family.network_kwargs(probe, 0)[index] != base[index], f"{name}: {net}.{key} is dropped"


class ToyGenerator(nn.Module):
    """z [N, z_dim] -> images [N, r, r, C] by one dense layer and tanh."""

    z_dim: int
    c_dim: int
    img_resolution: int
    img_channels: int

    @nn.compact
    def __call__(self, z, c, noise_mode="random"):
        r, ch = self.img_resolution, self.img_channels
        return jnp.tanh(nn.Dense(r * r * ch)(z)).reshape(-1, r, r, ch)


class ToyDiscriminator(nn.Module):
    """images [N, r, r, C] -> logits [N, 1] by one dense layer."""

    c_dim: int
    img_resolution: int
    img_channels: int

    @nn.compact
    def __call__(self, img, c):
        return nn.Dense(1)(img.reshape(img.shape[0], -1))


def toy_defaults():
    return ml_collections.ConfigDict(dict(z_dim=8)), ml_collections.ConfigDict()


def test_a_new_family_is_one_register_call_and_trains(data_dir, tmp_path, monkeypatch):
    from stylegan_jax.training.loop import Trainer
    from tests.training.conftest import tiny_config

    monkeypatch.setitem(FAMILIES, "toy", Family("toy", ToyGenerator, ToyDiscriminator, toy_defaults))
    cfg = lineage_defaults("toy")
    base = tiny_config(data_dir)
    for key in ("dataset", "data_dir", "resolution", "img_channels", "batch_size", "batch_gpu"):
        cfg[key] = base[key]
    cfg.update(r1_gamma=0.0, pl_weight=0.0, style_mixing_prob=0.0, loss="hinge")
    trainer = Trainer(cfg, tmp_path)
    state = trainer.initial_state()
    before = jax.device_get(state)
    state, metrics = trainer.run_iteration(state, trainer.device_batch(next(trainer.iterator)), 0)
    assert set(metrics) == {"G_main", "D_main"}
    after = jax.device_get(state)
    for net in ("g_params", "d_params"):  # one Adam step moves every parameter of both networks
        for a, b in zip(jax.tree_util.tree_leaves(getattr(before, net)), jax.tree_util.tree_leaves(getattr(after, net)),
                        strict=True):
            assert not np.array_equal(a, b), net
