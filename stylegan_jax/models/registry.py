"""The one registry of model families: each ``stylegan_jax/models/<family>.py`` registers one `Family`, and the
training step, the CLIs, snapshots and metrics ask it (never the network classes) what the networks can do."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from stylegan_jax import image_size
from stylegan_jax.errors import ConfigError


class UnknownFamilyError(ConfigError):
    """A model name no family registered; the message lists the known ones."""


def _hashable(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Constructor kwargs with top-level lists as tuples (Flax module fields must hash; JSON has no tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def constructor_kwargs(cfg: ml_collections.ConfigDict, c_dim: int) -> tuple[dict, dict]:
    """The usual ``network_kwargs``: ``cfg.G`` and ``cfg.D`` as they are, plus ``c_dim``, ``img_resolution``
    (``cfg.resolution``) and ``img_channels``; lists become tuples (hashable, as Flax module fields must be)."""
    common = dict(c_dim=c_dim, img_resolution=image_size.network_resolution(cfg.resolution),
                  img_channels=cfg.img_channels)

    def kwargs(section: ml_collections.ConfigDict) -> dict:
        return dict(common, **_hashable(section.to_dict()))

    return kwargs(cfg.G), kwargs(cfg.D)


@dataclasses.dataclass(frozen=True)
class Family:
    """A generator/discriminator pair and what the training loop and the CLIs need to know about it.

    - ``config_defaults() -> (G, D)``: the family's ``cfg.G`` and ``cfg.D`` sections (NVIDIA's defaults).
    - ``network_kwargs(cfg, c_dim) -> (G_kwargs, D_kwargs)``: the constructor kwargs of a config (JSON-able);
      every key of ``cfg.G`` / ``cfg.D`` reaches a constructor (default `constructor_kwargs`).
    - ``has_mapping``: G has ``map(z, c, psi, cutoff) -> ws [N, num_ws, w_dim]`` and ``synthesize(ws,
      noise_mode) -> images``, a ``w_avg`` buffer (``buffers/mapping/w_avg``), and takes style mixing and
      path-length regularisation.
    - ``grows``: G and D take the training ``resolution`` and fade-in ``alpha`` (progressive growing).
    - ``batch_norm``: G keeps batch-norm running averages in ``buffers``, updated when called with
      ``train=True`` (``mutable=['buffers']``).
    - ``truncation``: the generation default (psi, cutoff) when ``--trunc`` is not given.
    - ``emas_in_d_main``: G's tracked averages (``w_avg``, StyleGAN3's magnitude EMAs) are updated in the G
      forward of the D_main phase (NVIDIA's stylegan3 loss), not in G_main (stylegan2-ada-pytorch's).
    - ``input_transform(G_variables, matrix [3, 3]) -> G_variables``: G's variables set to render the image
      transformed by the inverse of ``matrix`` (StyleGAN3's input transform; traceable): what gen_images.py's
      ``--translate``/``--rotate`` and the equivariance metrics use. None: the family cannot.
    - ``non_square``: G and D take ``img_resolution`` = (height, width) (`stylegan_jax.image_size`).
    - ``d_layers(d_params) -> [name, ...]``: D's freezable layers (top-level parameter paths such as
      ``b256/fromrgb``) from the highest resolution down, in NVIDIA's layer order; ``--config.freeze_d=N``
      freezes the first N (Freeze-D). None: the family does not support freezing.
    """

    name: str
    generator: type[nn.Module]
    discriminator: type[nn.Module]
    config_defaults: Callable[[], tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]]
    network_kwargs: Callable[[ml_collections.ConfigDict, int], tuple[dict, dict]] = constructor_kwargs
    has_mapping: bool = False
    grows: bool = False
    batch_norm: bool = False
    truncation: tuple[float, int | None] = (1.0, None)
    d_layers: Callable[[dict], list[str]] | None = None
    emas_in_d_main: bool = False
    input_transform: Callable[[dict, Any], dict] | None = None
    non_square: bool = False

    def build_generator(self, G_kwargs: dict[str, Any]) -> nn.Module:
        """G from its constructor kwargs (as saved in a snapshot's JSON: lists become tuples)."""
        return self.generator(**_hashable(G_kwargs))

    def build_discriminator(self, D_kwargs: dict[str, Any]) -> nn.Module:
        """D from its constructor kwargs (as saved in a snapshot's JSON: lists become tuples)."""
        return self.discriminator(**_hashable(D_kwargs))

    def build(self, cfg: ml_collections.ConfigDict, c_dim: int) -> tuple[nn.Module, nn.Module]:
        """G and D of a config."""
        G_kwargs, D_kwargs = self.network_kwargs(cfg, c_dim)
        return self.build_generator(G_kwargs), self.build_discriminator(D_kwargs)

    def num_ws(self, G: nn.Module) -> int | None:
        """How many ws G's synthesis takes (None for a family without a mapping network)."""
        return G.num_ws if self.has_mapping else None

    def sampler(self, G: nn.Module, class_idx: int | None = None) -> Any:
        """G as the sampling tools use it (``map`` to ws, ``synthesize`` ws): G itself with a mapping network,
        else `LatentAsW` (z is W) drawing the class ``class_idx``."""
        return G if self.has_mapping else LatentAsW(G, class_idx)


@dataclasses.dataclass(frozen=True)
class LatentAsW:
    """A generator without a mapping network (DCGAN, PGGAN, R3GAN...) behind the interface of one with it, so
    that ``generate``, its interpolations, ``--projected-w`` and the projector run on it: its only latent
    space is W, ws = z as [N, 1, z_dim] (``num_ws`` 1, ``w_dim`` = ``z_dim``).

    ``apply(variables, z, c, psi=1, cutoff=None, method='map')`` returns ``psi * z``: the truncation trick
    towards the mean latent, which is 0 here (W's ``lerp(w_avg, w, psi)``); ``apply(variables, ws,
    noise_mode='const', ..., method='synthesize', rngs=...)`` is ``G(ws[:, 0], c)`` with c one-hot
    ``class_idx`` (none for an unconditional G), the labels a mapping network would have taken.
    """

    G: nn.Module
    class_idx: int | None = None
    num_ws: int = 1

    def __getattr__(self, name: str) -> Any:  # z_dim, c_dim, img_resolution, img_channels: G's
        return getattr(self.G, name)

    @property
    def w_dim(self) -> int:
        return self.G.z_dim

    def labels(self, n: int) -> jax.Array:
        c = jnp.zeros((n, self.G.c_dim), jnp.float32)
        return c if self.class_idx is None or not self.G.c_dim else c.at[:, self.class_idx].set(1)

    def apply(self, variables: dict, *args, method: str | None = None, rngs: dict | None = None, **kwargs) -> jax.Array:
        if method == "map":
            return self._map(*args, **kwargs)
        if method == "synthesize":
            return self._synthesize(variables, *args, rngs=rngs, **kwargs)
        raise ValueError(f"LatentAsW.apply: method must be 'map' or 'synthesize', got {method!r}")

    @staticmethod
    def _map(z, c=None, truncation_psi=1.0, truncation_cutoff=None) -> jax.Array:
        del c, truncation_cutoff
        return (jnp.asarray(truncation_psi, jnp.float32) * z)[:, None, :]

    def _synthesize(self, variables, ws, noise_mode="const", force_fp32=False, rngs=None) -> jax.Array:
        del force_fp32  # the networks' own precision
        return self.G.apply(variables, ws[:, 0], self.labels(ws.shape[0]), noise_mode=noise_mode, rngs=rngs or {})


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add ``family`` under its name (once)."""
    if family.name in FAMILIES:
        raise ValueError(f"model family {family.name!r} is registered twice")
    FAMILIES[family.name] = family
    return family


def non_square_families() -> list[str]:
    """The names of the families that make W x H images."""
    import stylegan_jax.models  # noqa: F401  (registers every family)

    return sorted(name for name, family in FAMILIES.items() if family.non_square)


def get_family(name: str, flag: str = "--config.model") -> Family:
    """The registered family called ``name``; an unknown name is one error naming ``flag`` and the known ones."""
    import stylegan_jax.models  # noqa: F401  (registers every family)

    if name not in FAMILIES:
        raise UnknownFamilyError(f"{flag}: unknown model {name!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[name]
