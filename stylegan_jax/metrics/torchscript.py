"""Weights of a TorchScript archive (``torch.jit.save``), read without torch and without running its code.

A TorchScript file is a zip: ``<root>/data.pkl`` pickles the module tree, each module an object of a
``__torch__.<Class>`` class built from a dict of its attributes (submodules, parameters, buffers, flags);
tensors are storages in ``<root>/data/`` as in any zip-format torch file; ``<root>/code/`` holds the
TorchScript source, which is not read. `load_torchscript_weights` maps every ``__torch__`` class to an
inert attribute holder and returns the tensors by their dotted ``state_dict`` names.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from stylegan_jax.io.restricted_pickle import SAFE_GLOBALS
from stylegan_jax.io.torch_format import TorchFormatError, load_zip, torch_globals


class ScriptModuleStub:
    """Stands in for a ``__torch__`` module class: ``pickle``'s BUILD fills ``__dict__`` with its attributes."""


class _TorchScriptGlobals(Mapping):
    """The allow-list for TorchScript pickles: torch's tensor globals plus any ``__torch__.*`` name."""

    def __init__(self):
        self._table = {**SAFE_GLOBALS, **torch_globals()}

    def __getitem__(self, key: str) -> Any:
        if key.startswith("__torch__."):
            return ScriptModuleStub
        return self._table[key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key.startswith("__torch__.") or key in self._table)

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


def _flatten(obj: ScriptModuleStub, prefix: str, out: dict[str, np.ndarray], above: tuple = ()) -> None:
    """The arrays of ``obj`` and its submodules into ``out`` by dotted name; a module inside itself (a
    hostile or damaged archive: ``above`` holds the modules on the way down) is a `TorchFormatError`."""
    if any(obj is module for module in above):
        raise TorchFormatError(f"the module {prefix[:-1]!r} holds itself: a damaged TorchScript archive")
    for name, value in vars(obj).items():
        if isinstance(value, np.ndarray):
            out[prefix + name] = value
        elif isinstance(value, ScriptModuleStub):
            _flatten(value, f"{prefix}{name}.", out, (*above, obj))


def load_torchscript_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The parameters and buffers of the TorchScript archive at ``path``: ``{"layers.conv.weight": array}``.

    Raises:
      TorchFormatError: ``path`` is not a TorchScript archive (not a zip, no ``data.pkl``, a plain
        ``torch.save`` file, or a pickle naming globals outside torch's tensor machinery).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(n.split("/")[1:2] == ["code"] for n in archive.namelist()):
                raise TorchFormatError("no code/ directory: a torch.save file, not a TorchScript archive")
            root = load_zip(archive, _TorchScriptGlobals())
    except zipfile.BadZipFile:
        raise TorchFormatError("not a zip file, so not a TorchScript archive") from None
    except Exception as e:
        if isinstance(e, TorchFormatError):
            raise
        raise TorchFormatError(f"unreadable TorchScript archive ({type(e).__name__}: {e})") from None
    if not isinstance(root, ScriptModuleStub):
        raise TorchFormatError(f"the archive holds a {type(root).__name__}, not a scripted module")
    weights: dict[str, np.ndarray] = {}
    _flatten(root, "", weights)
    return weights
