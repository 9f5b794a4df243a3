"""Transfer learning: a new run's G, G_ema and D initialised from a pretrained network (NVIDIA's ``--resume``),
copying the parameters and buffers whose names and shapes match (NVIDIA's ``copy_params_and_buffers`` matches by
name and fails on another shape); D is not copied from a source of another canvas layout (`initialise_from`).
NVIDIA's names for its transfer sources (``ffhq1024``...) stand for their files (`source_path`)."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any

import flax
import jax
import ml_collections
import numpy as np
import optax

from stylegan_jax.errors import ConfigError
from stylegan_jax.network_snapshot import INDEX, Network, load_network
from stylegan_jax.nn.resolution import Resolution, block_shape
from stylegan_jax.training.reporting import format_kimg
from stylegan_jax.training.state import TrainState

#: Where NVIDIA's transfer sources are published, and the file each of its ``--resume`` names stands for
#: (stylegan2-ada-pytorch train.py's ``resume_specs``).
NVIDIA_SOURCES_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/"
NVIDIA_SOURCES = {
    "ffhq256": "ffhq-res256-mirror-paper256-noaug.pkl",
    "ffhq512": "ffhq-res512-mirror-stylegan2-noaug.pkl",
    "ffhq1024": "ffhq-res1024-mirror-stylegan2-noaug.pkl",
    "celebahq256": "celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl",
    "lsundog256": "lsundog-res256-paper256-kimg100000-noaug.pkl",
}


def source_path(resume_from: str) -> str:
    """The network ``resume_from`` names: a path as given, or one of NVIDIA's names (`NVIDIA_SOURCES`; a file or
    snapshot directory of that name comes first), which stands for its file in the working directory. Nothing is
    downloaded: a name whose file is absent is a `ConfigError` saying where to get it."""
    is_network = os.path.isfile(resume_from) or os.path.isfile(os.path.join(resume_from, INDEX))
    if resume_from not in NVIDIA_SOURCES or is_network:
        return resume_from
    file = NVIDIA_SOURCES[resume_from]
    if not os.path.exists(file):
        raise ConfigError(f"--config.resume_from={resume_from}: NVIDIA's transfer source {file} is not in "
                          f"{os.getcwd()}; nothing is downloaded: fetch {NVIDIA_SOURCES_URL}{file} and put it "
                          "there, or give its path")
    return file


def transfer_settings(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """NVIDIA's settings for a run resumed from a network (its train.py with ``--resume``): ADA's p moves over
    100 kimg instead of 500, G_ema has no ramp-up and StyleGAN3-R's blur of D's images is off. ``cfg`` when it has
    no ``resume_from``."""
    if not cfg.get("resume_from"):
        return cfg
    c = copy.deepcopy(cfg)  # its references kept: the loop resolves `resolution` (a string or a number) later
    c.ada_kimg, c.ema_rampup, c.blur_init_sigma = 100.0, None, 0.0
    return c


def _copy(target: dict, source: dict | None, what: str, missed: list[str], unused: list[str]) -> tuple[dict, int]:
    """``target`` with the leaves of ``source`` whose path and shape match (cast to the target's dtype); the
    target's leaves not found so go to ``missed``, the source's not taken to ``unused``."""
    flat = flax.traverse_util.flatten_dict(target, sep="/")
    given = flax.traverse_util.flatten_dict(source or {}, sep="/")
    copied = 0
    for name, value in flat.items():
        new = given.get(name)
        if new is not None and np.shape(new) == value.shape:
            flat[name], copied = np.asarray(new, value.dtype), copied + 1
        else:
            missed.append(f"{what}/{name}")
    unused += [f"{what}/{name}" for name, value in given.items()
               if name not in flat or np.shape(value) != np.shape(flat[name])]
    return flax.traverse_util.unflatten_dict(flat, sep="/"), copied


def load_source(resume_from: str) -> Network:
    """The network ``resume_from`` names (`source_path`; an NVIDIA pickle or a snapshot directory): a missing
    file is a `ConfigError`, a bad one a `NetworkLoadError` naming it."""
    path = source_path(resume_from)
    if not os.path.exists(path):
        raise ConfigError(f"--config.resume_from={resume_from}: no such file or directory; expected an "
                          "NVIDIA pickle or a network-snapshot directory")
    return load_network(path)


def initialise_from(state: TrainState, network: Network, resume_from: str, resolution: Resolution,
                    report: Callable[[str], None]) -> tuple[TrainState, int]:
    """``state`` (a fresh run's, on the host or replicated) with G, G_ema and D from ``network`` (`load_source`
    of ``resume_from``, the config's value), and the number of images the run starts at. What does not match
    is listed in one line through ``report``; a network of which nothing matches is a `ConfigError`. D is not
    copied where the source's 4x4-stage canvas has another shape than this run's (``resolution``: its images,
    N or (H, W)), as 4x8 against 8x4: its dense layer reads those features flattened, and would take the same
    shape with another meaning.

    NVIDIA's ``--resume``: a new run, at 0 images with fresh optimiser states. An R3GAN snapshot whose every
    tensor matches continues as R3GAN's ``--resume`` does (``network.progress``): at its ``cur_nimg`` (its
    schedules where they were), with its Adam moments and step count."""
    host = jax.tree_util.tree_map(np.asarray, jax.device_get(state))
    source_resolution = network.G_kwargs.get("img_resolution")
    canvases = (block_shape(source_resolution, 4), block_shape(resolution, 4)) if source_resolution else None
    other_layout = canvases is not None and canvases[0] != canvases[1]
    missed: list[str] = []
    unused: list[str] = []  # the source's tensors no tensor of the run takes (a deeper mapping, wider layers)
    counts = []
    fields = {}
    for field, source, what in (("g_params", network.G or network.G_ema, "G"),
                                ("g_buffers", network.G or network.G_ema, "G"),
                                ("g_ema_params", network.G_ema, "G_ema"),
                                ("g_ema_buffers", network.G_ema, "G_ema"),
                                ("d_params", None if other_layout else network.D, "D")):
        kind = "buffers" if field.endswith("buffers") else "params"
        fields[field], copied = _copy(getattr(host, field), (source or {}).get(kind), f"{what}/{kind}", missed,
                                      unused)
        counts.append(copied)
    if not sum(counts):
        raise ConfigError(f"--config.resume_from={resume_from}: none of its parameters match this run's networks")
    total = sum(counts) + len(missed)
    nimg, continued = 0, ""
    if network.progress is not None and not missed:
        g_opt = _with_adam_moments(host.g_opt, fields["g_params"], network.progress["G"])
        d_opt = _with_adam_moments(host.d_opt, fields["d_params"], network.progress["D"])
        if g_opt is not None and d_opt is not None:
            fields.update(g_opt=g_opt, d_opt=d_opt)
            nimg = network.progress["cur_nimg"]
            continued = f"; continuing its training at {format_kimg(nimg)} kimg with its Adam states (R3GAN's resume)"
    layout = (f"; D not copied: the source's 4x4-stage canvas is {canvases[0][1]}x{canvases[0][0]}, this run's "
              f"{canvases[1][1]}x{canvases[1][0]} (W x H)" if other_layout else "")
    report(f"resume_from {resume_from}: copied {sum(counts)} of {total} tensors{layout}"
           + _listed("not matched", missed) + _listed("unused of the source's", unused) + continued)
    sharding = jax.tree_util.tree_leaves(state)[0].sharding
    return jax.device_put(host.replace(**fields), sharding), nimg


def _listed(what: str, names: list[str]) -> str:
    """``"; <what> (N): a, b, ..."`` (the first 8 names), or "" for none."""
    if not names:
        return ""
    return f"; {what} ({len(names)}): " + ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")


def _with_adam_moments(opt_state: optax.OptState, params: dict, moments: dict) -> optax.OptState | None:
    """``opt_state`` (host arrays) with its one Adam state over all of ``params`` holding ``moments``
    (``{"count", "mu", "nu"}``, trees as ``params``); None for an optimiser without one (RMSProp, frozen
    layers' partition)."""
    found = []

    def replace(x: Any) -> Any:
        if not isinstance(x, optax.ScaleByAdamState):
            return x
        found.append(jax.tree_util.tree_structure(x.mu) == jax.tree_util.tree_structure(params))
        if not found[-1]:
            return x
        cast = lambda new, old: np.asarray(new, np.asarray(old).dtype)  # noqa: E731
        return x._replace(count=cast(moments["count"], x.count), mu=jax.tree_util.tree_map(cast, moments["mu"], x.mu),
                          nu=jax.tree_util.tree_map(cast, moments["nu"], x.nu))

    new = jax.tree_util.tree_map(replace, opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
    return new if found == [True] else None
