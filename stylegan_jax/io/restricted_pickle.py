"""Unpickling with an allow-list: a pickle may name only the globals the caller maps to inert stand-ins.

``pickle.load`` imports and calls whatever a file names (``os.system``, ``builtins.exec``...). Here every
global (``GLOBAL``, ``STACK_GLOBAL``, ``INST``, ``OBJ`` and the copyreg extension opcodes all go through
``find_class``) is looked up in a dict ``{"module.name": object}``; anything else stops the load with
`ForbiddenGlobalError`, before anything is called. Persistent ids (torch's storages) go to a callback.
"""

from __future__ import annotations

import _codecs
import pickle
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import numpy as np


class ForbiddenGlobalError(pickle.UnpicklingError):
    """The pickle names a global that is not on the allow-list; ``name`` is ``"module.qualname"``."""

    def __init__(self, name: str):
        super().__init__(f"refused to load global '{name}': not on the allow-list (nothing was executed)")
        self.name = name


class UnsafePickleError(pickle.UnpicklingError):
    """An allowed global called with arguments no plain data pickles (a container built from a count)."""


def _numpy_globals() -> dict[str, Any]:
    """NumPy's array and scalar reconstruction under numpy 1 (``numpy.core``) and numpy 2 (``numpy._core``)
    names. They build arrays from shapes, dtypes and bytes; ``_reconstruct`` accepts only ndarray types."""
    from numpy._core import multiarray, numeric

    names = {"multiarray._reconstruct": multiarray._reconstruct, "multiarray.scalar": multiarray.scalar,
             "numeric._frombuffer": numeric._frombuffer}
    table = {f"{package}.{name}": obj for package in ("numpy.core", "numpy._core") for name, obj in names.items()}
    table.update({"numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype})
    return table


def _of_stored_items(kind: type) -> Callable[..., Any]:
    """``kind`` (a container) built only from what a pickle stores of one: a list, tuple, str or bytes (and
    a str's encoding), never from a count or a range, which would let a few bytes allocate gigabytes
    (``bytearray(2**31)``, ``frozenset(range(10**8))``)."""

    def build(*args: Any) -> Any:
        if len(args) > 2 or (args and not isinstance(args[0], list | tuple | str | bytes)) or (
                len(args) == 2 and not isinstance(args[1], str)):
            raise UnsafePickleError(f"refused to build a {kind.__name__} from {type(args[0]).__name__}: not stored "
                                    "items (nothing was allocated)")
        return kind(*args)

    return build


#: Globals that plain data (containers, numbers, NumPy arrays) needs and that execute nothing.
SAFE_GLOBALS: dict[str, Any] = {
    "builtins.set": _of_stored_items(set), "builtins.frozenset": _of_stored_items(frozenset),
    "builtins.bytearray": _of_stored_items(bytearray),
    "builtins.complex": complex, "builtins.slice": slice, "builtins.range": range,
    "collections.OrderedDict": _of_stored_items(OrderedDict),
    "_codecs.encode": _codecs.encode,  # protocol-2 pickles write bytes as _codecs.encode(str, 'latin1')
    **_numpy_globals(),
}


class RestrictedUnpickler(pickle.Unpickler):
    """A `pickle.Unpickler` that resolves globals only through ``allowed`` (``"module.name" -> object``).

    ``persistent_load(pid)``, when given, answers persistent ids (without it they are an error);
    ``encoding`` decodes Python 2 strings, as `pickle.Unpickler`'s.
    """

    def __init__(self, file: BinaryIO, allowed: Mapping[str, Any],
                 persistent_load: Callable[[Any], Any] | None = None, encoding: str = "ASCII"):
        super().__init__(file, encoding=encoding)
        self._allowed = allowed
        if persistent_load is not None:
            self.persistent_load = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        key = f"{module}.{name}"
        if key not in self._allowed:
            raise ForbiddenGlobalError(key)
        return self._allowed[key]


def restricted_load(file: BinaryIO, allowed: Mapping[str, Any] = SAFE_GLOBALS,
                    persistent_load: Callable[[Any], Any] | None = None, encoding: str = "ASCII") -> Any:
    """Reads one pickle from ``file`` with `RestrictedUnpickler`."""
    return RestrictedUnpickler(file, allowed, persistent_load, encoding).load()
