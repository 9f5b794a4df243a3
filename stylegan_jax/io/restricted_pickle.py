"""Unpickling with an allow-list: a pickle may name only the globals the caller maps to inert stand-ins.

``pickle.load`` imports and calls whatever a file names (``os.system``, ``builtins.exec``...). Here every
global (``GLOBAL``, ``STACK_GLOBAL``, ``INST``, ``OBJ`` and the copyreg extension opcodes all go through
``find_class``) is looked up in a dict ``{"module.name": object}``; anything else stops the load with
`ForbiddenGlobalError`, before anything is called. Persistent ids (torch's storages) go to a callback.
"""

from __future__ import annotations

import _codecs
import _compat_pickle
import copy
import dataclasses
import pickle
import types
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


class _NDArrayClass:
    """What a pickle's ``numpy.ndarray`` stands for: the class argument of ``_reconstruct``, never called
    (``ndarray(shape)`` would allocate memory that no stored byte backs)."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise UnsafePickleError("refused to call numpy.ndarray: arrays are built from their stored bytes "
                                "(nothing was allocated)")

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError("refused to set the state of numpy.ndarray")


_NDARRAY = _NDArrayClass()


def _reconstruct_empty(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """NumPy's ``_reconstruct`` as ``ndarray.__reduce__`` writes it: an empty array of ``(0,)``, to which the
    pickle's BUILD (``ndarray.__setstate__``) then gives its shape, dtype and stored bytes (NumPy checks they
    match). Any other shape is refused: it would allocate memory from a count alone (a 70-byte pickle, 4 GiB)."""
    if subtype is not _NDARRAY or tuple(shape) != (0,):
        raise UnsafePickleError(f"refused to reconstruct an array of shape {shape!r} from a count, not stored "
                                "bytes (nothing was allocated)")
    from numpy._core import multiarray

    return multiarray._reconstruct(np.ndarray, (0,), dtype)


def _numpy_globals() -> dict[str, Any]:
    """NumPy's array and scalar reconstruction under numpy 1 (``numpy.core``) and numpy 2 (``numpy._core``)
    names. They build arrays from shapes, dtypes and stored bytes (`_reconstruct_empty`, then BUILD)."""
    from numpy._core import multiarray, numeric

    names = {"multiarray._reconstruct": _reconstruct_empty, "multiarray.scalar": multiarray.scalar,
             "numeric._frombuffer": numeric._frombuffer}
    table = {f"{package}.{name}": obj for package in ("numpy.core", "numpy._core") for name, obj in names.items()}
    table.update({"numpy.ndarray": _NDARRAY, "numpy.dtype": np.dtype})
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
    "builtins.bytearray": _of_stored_items(bytearray), "builtins.bytes": _of_stored_items(bytes),
    "builtins.complex": complex, "builtins.slice": slice, "builtins.range": range,
    "collections.OrderedDict": _of_stored_items(OrderedDict),
    "_codecs.encode": _codecs.encode,  # protocol-2 pickles write bytes as _codecs.encode(str, 'latin1')
    **_numpy_globals(),
}


class RestrictedUnpickler(pickle._Unpickler):
    """A `pickle.Unpickler` that resolves globals only through ``allowed`` (``"module.name" -> object``).

    Python's own unpickler (``pickle._Unpickler``), not the C one: its memo is a dict, where the C memo is an
    array as long as the largest index a pickle names (``LONG_BINPUT 2**27``: 9 bytes allocating 2 GB). The
    opcodes of a network pickle are few (its tensors are long byte strings), so the speed is the same.

    ``persistent_load(pid)``, when given, answers persistent ids (without it they are an error);
    ``encoding`` decodes Python 2 strings, as `pickle.Unpickler`'s.
    """

    def __init__(self, file: BinaryIO, allowed: Mapping[str, Any],
                 persistent_load: Callable[[Any], Any] | None = None, encoding: str = "ASCII"):
        super().__init__(file, encoding=encoding)
        self._allowed, self._handed = allowed, {}
        if persistent_load is not None:
            self.persistent_load = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and self.fix_imports:  # Python 2's names (``__builtin__.set``), as pickle's own
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        key = f"{module}.{name}"
        if key not in self._allowed:
            raise ForbiddenGlobalError(key)
        if key not in self._handed:
            self._handed[key] = _private(self._allowed[key])
        return self._handed[key]


class _Call:
    """A Python function as one load hands it out: calls go through; setting its attributes (a pickle's BUILD
    on the global, e.g. new ``__defaults__``) is refused."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[..., Any]):
        object.__setattr__(self, "_fn", fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        raise UnsafePickleError(f"refused to set {name!r} on the allowed global {self._fn.__qualname__}")

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError(f"refused to set the state of the allowed global {self._fn.__qualname__}")


#: `type.__flags__` bits: a class made by a class statement (not C); one whose attributes cannot be set.
_HEAP_TYPE, _IMMUTABLE_TYPE = 1 << 9, 1 << 8


def _private(obj: Any) -> Any:
    """What one load hands out for an allowed global: where a pickle could change the object itself for the
    loads after it (BUILD sets the attributes of any object without ``__setstate__``: a class's methods, a
    function's defaults, a stand-in's fields), a copy of its own: a subclass of a Python class, a `_Call` of a
    Python function, a copy of an instance; C types and functions and NumPy dtypes, which cannot be changed,
    as they are."""
    if isinstance(obj, type):
        if obj.__flags__ & _HEAP_TYPE and not obj.__flags__ & _IMMUTABLE_TYPE:
            return type(obj.__name__, (obj,), {"__module__": obj.__module__, "__qualname__": obj.__qualname__})
        return obj
    if isinstance(obj, types.FunctionType):
        return _Call(obj)
    if dataclasses.is_dataclass(obj):
        return copy.copy(obj)
    return obj


def restricted_load(file: BinaryIO, allowed: Mapping[str, Any] = SAFE_GLOBALS,
                    persistent_load: Callable[[Any], Any] | None = None, encoding: str = "ASCII") -> Any:
    """Reads one pickle from ``file`` with `RestrictedUnpickler`."""
    return RestrictedUnpickler(file, allowed, persistent_load, encoding).load()
