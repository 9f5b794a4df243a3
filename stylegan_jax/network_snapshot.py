"""Network snapshots: our G/G_ema/D variables as an Orbax checkpoint, kwargs as JSON beside them.

A snapshot directory holds ``network.json`` (``G_kwargs``, ``D_kwargs``, ``metadata`` with the family as
``model``, which trees exist)
and ``variables/`` (an Orbax PyTree checkpoint of ``{"G": ..., "G_ema": ..., "D": ...}``, each a variable
tree ``{"params": ..., "buffers": ...}``). It is written under a temporary name beside ``directory`` and
renamed into place, so a reader never sees half a snapshot. In a multi-process run saving is collective, as
the run's checkpoints: every process calls `save_network`, the Orbax checkpointer writes the arrays with all of
them, and process 0 alone writes the rest (``network.json``, the renames).

`load_network` reads such a directory or an NVIDIA network pickle (what ``--network`` accepts).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax.traverse_util import flatten_dict
from jax.experimental import multihost_utils

from stylegan_jax.convert import load_network_pkl
from stylegan_jax.convert.common import variable_template
from stylegan_jax.errors import first_line
from stylegan_jax.io.network_pickle import NetworkPickleError
from stylegan_jax.models import Family, UnknownFamilyError, get_family

INDEX = "network.json"
VARIABLES = "variables"
FORMAT = "stylegan_jax.network/1"
TREES = ("G", "G_ema", "D")


class NetworkLoadError(ValueError):
    """``--network`` names nothing loadable; the message is one line naming the path."""


@dataclasses.dataclass(frozen=True)
class Network:
    """A loaded network: constructor kwargs and variable trees (NumPy arrays; ``None`` where absent).

    ``progress``: only from an R3GAN snapshot pickle, what R3GAN's ``--resume`` continues
    (`convert.torch_r3gan.training_progress`: its ``cur_nimg`` and G's and D's Adam moments as our trees).
    """

    G_kwargs: dict
    G_ema: dict
    G: dict | None = None
    D_kwargs: dict | None = None
    D: dict | None = None
    metadata: dict = dataclasses.field(default_factory=dict)
    progress: dict | None = None

    @property
    def model(self) -> str:
        """The model family's name from the metadata; StyleGAN2 when it names none."""
        return self.metadata.get("model", "stylegan2")

    @property
    def family(self) -> Family:
        """The registered family of `model`."""
        try:
            return get_family(self.model, flag="the network's metadata")
        except UnknownFamilyError as e:
            raise NetworkLoadError(str(e)) from None

    @property
    def generator(self):
        """The Flax Generator module of the network's family, ``generator.apply(network.G_ema, z, c, ...)``."""
        return self.family.build_generator(self.G_kwargs)

    def sampler(self, class_idx: int | None = None):
        """`generator` as the sampling tools use it (``Family.sampler``: z is W without a mapping network)."""
        return self.family.sampler(self.generator, class_idx)

    @property
    def discriminator(self):
        if self.D_kwargs is None:
            raise NetworkLoadError("this network has no discriminator")
        return self.family.build_discriminator(self.D_kwargs)


def save_network(directory: str | os.PathLike, *, model: str, G_kwargs: Mapping[str, Any],
                 D_kwargs: Mapping[str, Any] | None, G: Any = None, G_ema: Any = None, D: Any = None,
                 metadata: Mapping[str, Any] | None = None, overwrite: bool = False) -> str:
    """Writes a snapshot directory; returns its path.

    ``model``: the registered model family whose constructors take the kwargs (`Network.model`; recorded as
    the metadata's ``model``). ``G_kwargs``/``D_kwargs``: the Generator/Discriminator constructor kwargs
    (JSON-able). ``G``, ``G_ema``, ``D``: variable trees (``{"params": ..., "buffers": ...}``, jax or NumPy
    arrays; fetched to host), at least ``G_ema`` or ``G``. ``metadata``: any JSON-able dict (step,
    config...). An existing ``directory`` is an error unless ``overwrite``.

    Multi-process (``jax.process_count() > 1``): collective. Every process calls it with the same arguments
    (each its copy of the trees; arrays spanning processes are gathered) on a directory all of them see; process
    0 writes the files that are not collective, and every process returns once the snapshot is in place.
    """
    directory = os.path.abspath(os.fspath(directory))
    get_family(model)  # an unknown family: UnknownFamilyError before anything is written
    if (metadata or {}).get("model", model) != model:
        raise ValueError(f"save_network: model {model!r} but metadata names {metadata['model']!r}")
    trees = {name: tree for name, tree in (("G", G), ("G_ema", G_ema), ("D", D)) if tree is not None}
    if not ("G" in trees or "G_ema" in trees):
        raise ValueError("save_network needs G_ema or G")
    if os.path.exists(directory) and not overwrite:
        raise FileExistsError(f"{directory} exists (pass overwrite=True to replace it)")
    trees = jax.tree.map(_to_host, trees)
    collective, main = jax.process_count() > 1, jax.process_index() == 0
    parent, name = os.path.split(directory)
    # One temporary directory for all processes: named after process 0's pid.
    pid = int(multihost_utils.broadcast_one_to_all(np.int32(os.getpid()))) if collective else os.getpid()
    tmp = os.path.join(parent, f".{name}.tmp-{pid}")
    if main:
        os.makedirs(parent, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    _sync(f"save_network: {tmp} created", collective)
    try:
        with ocp.PyTreeCheckpointer() as checkpointer:  # collective: the array writes
            checkpointer.save(os.path.abspath(os.path.join(tmp, VARIABLES)), trees)  # Orbax: absolute
        if main:
            index = dict(format=FORMAT, G_kwargs=dict(G_kwargs), D_kwargs=None if D_kwargs is None else
                         dict(D_kwargs), trees=sorted(trees), metadata={**(metadata or {}), "model": model})
            with open(os.path.join(tmp, INDEX), "w") as f:
                json.dump(index, f, indent=2)
            if os.path.exists(directory):
                old = os.path.join(parent, f".{name}.old-{pid}")
                os.rename(directory, old)
                os.rename(tmp, directory)
                shutil.rmtree(old)
            else:
                os.rename(tmp, directory)
    finally:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
    _sync(f"save_network: {directory} written", collective)
    return directory


def _to_host(x: Any) -> Any:
    """A leaf as NumPy on this process: a jax.Array spanning processes gathered (collective), or its local
    copy when replicated."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return jax.device_get(x)


def _sync(name: str, collective: bool) -> None:
    """A barrier across the processes (multi-process runs only)."""
    if collective:
        multihost_utils.sync_global_devices(name)


def snapshot_names(run_dir: str | os.PathLike) -> list[str]:
    """The names of the ``network-snapshot-<kimg>`` entries in ``run_dir``, by kimg (oldest first; the tags
    grow past 6 digits, so not by name alone)."""
    names = (p.name for p in Path(run_dir).glob("network-snapshot-*"))
    return sorted(names, key=lambda name: (len(name.split(".")[0]), name))


def _load_directory(path: str) -> Network:
    try:
        with open(os.path.join(path, INDEX)) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        snapshots = snapshot_names(path)
        if snapshots:  # a training run's directory
            raise NetworkLoadError(f"{path} is a training run directory, not a network snapshot: give one of its "
                                   f"{len(snapshots)} snapshots, e.g. the newest, {os.path.join(path, snapshots[-1])}"
                                   ) from None
        raise NetworkLoadError(f"{path}: no readable {INDEX} ({e}); expected a network snapshot directory "
                               "written by stylegan_jax") from None
    if not isinstance(index, dict):
        raise NetworkLoadError(f"{path}: {INDEX} holds a JSON {type(index).__name__}, expected an object of format "
                               f"{FORMAT!r}")
    if index.get("format") != FORMAT:
        raise NetworkLoadError(f"{path}: {INDEX} has format {index.get('format')!r}, expected {FORMAT!r}")
    for key, types, expected in (("G_kwargs", dict, "an object"), ("D_kwargs", (dict, type(None)), "an object or "
                                  "null"), ("metadata", dict, "an object"), ("trees", list, "a list")):
        if not isinstance(index.get(key), types):
            raise NetworkLoadError(f"{path}: {INDEX}'s {key} is {json.dumps(index.get(key))[:60]}, expected {expected}")
    try:
        with ocp.PyTreeCheckpointer() as checkpointer:
            trees = checkpointer.restore(os.path.abspath(os.path.join(path, VARIABLES)))  # Orbax: absolute
    except Exception as e:  # noqa: BLE001 - Orbax raises many types for a damaged checkpoint
        raise NetworkLoadError(f"{path}: cannot restore {VARIABLES}/ ({type(e).__name__}: {first_line(e)})") from None
    if not isinstance(trees, dict) or sorted(trees) != sorted(index["trees"]) or not {"G", "G_ema"} & set(trees):
        held = sorted(trees) if isinstance(trees, dict) else type(trees).__name__
        raise NetworkLoadError(f"{path}: {VARIABLES}/ holds {held} where {INDEX} lists {index['trees']}; a "
                               "snapshot holds G_ema or G (and D)")
    trees = jax.tree.map(np.asarray, trees)
    G_ema = trees.get("G_ema", trees.get("G"))
    return Network(G_kwargs=index["G_kwargs"], G_ema=G_ema, G=trees.get("G"), D_kwargs=index["D_kwargs"],
                   D=trees.get("D"), metadata=index["metadata"])


def load_network(path: str | os.PathLike) -> Network:
    """A snapshot directory (`save_network`) or an NVIDIA network pickle -> `Network`.

    Raises `NetworkLoadError` (a ValueError) with one line naming ``path`` when it is neither.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        network = _load_directory(path)
        check_generator_shapes(path, network)  # a pickle's trees are made from its own kwargs' template
        return network
    if not os.path.exists(path):
        raise NetworkLoadError(f"{path}: no such file or directory; expected a network pickle (.pkl) or a "
                               "snapshot directory")
    try:
        data = load_network_pkl(path)
    except NetworkPickleError as e:
        raise NetworkLoadError(str(e)) from None
    return Network(**data)


def check_generator_shapes(path: str, network: Network, family: Family | None = None) -> None:
    """A snapshot's G_ema (and G) arrays have the names and shapes the generator that its G_kwargs build
    expects (an abstract ``init``: no arrays made), else `NetworkLoadError` naming the first mismatch: found
    here, not as a Flax error in the middle of a tool. ``family``: the one to build (a tool's ``--model``);
    default the network's own (its metadata's model)."""
    assumed = ""
    if family is None:
        try:
            family = network.family
        except NetworkLoadError as e:  # an unknown model
            raise NetworkLoadError(f"{path}: {e}") from None
        if "model" not in network.metadata:
            assumed = f"; {INDEX}'s metadata names no model, so {network.model}"
    try:
        expected = variable_template(family.build_generator(network.G_kwargs))
    except (TypeError, ValueError, KeyError) as e:  # kwargs a constructor refuses; a bug keeps its traceback
        raise NetworkLoadError(f"{path}: its G_kwargs build no {family.name} generator ({type(e).__name__}: "
                               f"{first_line(e)}{assumed})") from None
    want = {"/".join(k): v.shape for k, v in flatten_dict(expected).items()}
    for name in ("G_ema", "G"):
        tree = getattr(network, name)
        if tree is None:
            continue
        got = {"/".join(k): np.shape(v) for k, v in flatten_dict(tree).items()}
        for key in sorted(want.keys() | got.keys()):
            if want.get(key) != got.get(key):
                found = "missing" if key not in got else f"shape {got[key]}"
                needed = "no such array" if key not in want else f"shape {want[key]}"
                raise NetworkLoadError(f"{path}: {name}'s {key} is {found} where its G_kwargs build {needed}; "
                                       "the kwargs and the arrays are of different networks")
