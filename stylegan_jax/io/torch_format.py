"""A torch-free reader of ``torch.save`` files: tensors come back as NumPy arrays, nothing is executed.

Two formats exist, both a pickle whose persistent ids ``('storage', storage_type, key, location, numel[,
view])`` name flat typed storages, and whose tensors are ``torch._utils._rebuild_tensor_v2(storage, offset,
size, stride, ...)``:

- zip (torch >= 1.6): ``<root>/data.pkl`` plus one file ``<root>/data/<key>`` of raw bytes per storage (byte
  order in ``<root>/byteorder``);
- legacy (the ``_use_new_zipfile_serialization=False`` format; also what ``pickle.dump`` of a tensor embeds
  for every storage, through ``torch.storage._load_from_bytes``): five pickles in a row (magic number,
  protocol 1001, system info, the object, the sorted storage keys), then per key an int64 element count and
  the raw bytes.

Tensors are strided views (``np.lib.stride_tricks.as_strided``) of their storage, after a bounds check, so
views that share a storage share memory as in torch. Every float, int, bool and complex dtype is read
(bfloat16 and float8 through ``ml_dtypes``).
"""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import ml_dtypes
import numpy as np

from stylegan_jax.io.restricted_pickle import SAFE_GLOBALS, restricted_load

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

#: torch dtype name -> NumPy dtype.
TORCH_DTYPES: dict[str, np.dtype] = {name: np.dtype(dt) for name, dt in {
    "float64": np.float64, "float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn, "float8_e5m2": ml_dtypes.float8_e5m2,
    "float8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz, "float8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
    "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8,
    "uint64": np.uint64, "uint32": np.uint32, "uint16": np.uint16, "uint8": np.uint8, "bool": np.bool_,
    "complex128": np.complex128, "complex64": np.complex64,
}.items()}

#: torch's typed storage class names -> the torch dtype name they hold.
STORAGE_TYPES: dict[str, str] = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool", "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64", "UntypedStorage": "uint8",
}


class TorchFormatError(ValueError):
    """The bytes are not a readable torch.save file (wrong magic, truncated, inconsistent)."""


@dataclass(frozen=True)
class StorageType:
    """Stand-in for ``torch.FloatStorage`` and friends: only the element dtype matters."""

    dtype: np.dtype


#: The most elements a tensor may have beyond those of its storage (views that repeat elements, stride 0).
REPEATED_ELEMENTS = 2**24


def strided_view(storage: np.ndarray, offset: int, size, stride) -> np.ndarray:
    """The tensor ``storage.as_strided(size, stride, offset)`` as a NumPy view; refuses to reach outside
    the storage (a corrupt or hostile file must not read foreign memory) and, beyond `REPEATED_ELEMENTS`, to
    have more elements than the storage (a few bytes must not become an array too large to copy)."""
    _check_flat(storage)
    size, stride, offset = tuple(int(n) for n in size), tuple(int(s) for s in stride), int(offset)
    if len(size) != len(stride) or offset < 0 or min(size + stride, default=0) < 0:
        raise TorchFormatError(f"invalid tensor geometry: size {size}, stride {stride}, offset {offset}")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    if math.prod(size) > max(storage.size, REPEATED_ELEMENTS):
        raise TorchFormatError(f"tensor of size {size} has more elements than its storage of {storage.size}")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= storage.size:
        raise TorchFormatError(f"tensor (size {size}, stride {stride}, offset {offset}) reaches past its "
                               f"storage of {storage.size} elements")
    itemsize = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(storage[offset:], size, tuple(s * itemsize for s in stride))


def _check_flat(storage: Any) -> None:
    """A storage is a flat array whose elements are all its memory (what the loaders' persistent ids give):
    a tensor rebuilt over another (a view that repeats its elements) or an array of two dimensions would
    make `strided_view`'s bounds check count elements that are not there."""
    if not (isinstance(storage, np.ndarray) and storage.ndim == 1 and storage.flags.c_contiguous):
        raise TorchFormatError(f"a tensor's storage is not a flat array ({type(storage).__name__})")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None) -> np.ndarray:
    return strided_view(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                       metadata=None) -> np.ndarray:
    _check_flat(storage)
    return strided_view(storage.view(dtype), storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None) -> np.ndarray:
    return data


def torch_globals() -> dict[str, Any]:
    """The allow-list entries for tensors: rebuilders, storage types and dtypes (as NumPy stand-ins)."""
    table: dict[str, Any] = {
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
        "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
        "torch.Size": tuple,
    }
    table.update({f"torch.{name}": StorageType(TORCH_DTYPES[dt]) for name, dt in STORAGE_TYPES.items()})
    table.update({f"torch.{name}": dtype for name, dtype in TORCH_DTYPES.items()})
    return table


def _storage_dtype(storage_type: Any) -> np.dtype:
    if not isinstance(storage_type, StorageType):
        raise TorchFormatError(f"unknown storage type {storage_type!r}")
    return storage_type.dtype


def _storage_pid(pid: Any) -> tuple:
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise TorchFormatError(f"unsupported persistent id {str(pid)[:80]}")
    return pid


def _remaining(f: BinaryIO) -> int:
    here = f.tell()
    end = f.seek(0, os.SEEK_END)
    f.seek(here)
    return end - here


def load_legacy(f: BinaryIO, allowed: Mapping[str, Any]) -> Any:
    """Reads a legacy-format torch.save stream (seekable) positioned at its start."""
    if restricted_load(f) != LEGACY_MAGIC:
        raise TorchFormatError("not a torch.save file (wrong magic number)")
    if restricted_load(f) != LEGACY_PROTOCOL:
        raise TorchFormatError("unsupported torch.save legacy protocol version")
    sys_info = restricted_load(f)
    if not isinstance(sys_info, dict):
        raise TorchFormatError("not a torch.save file (no system info record)")
    budget = _remaining(f)  # no storage can be larger than the rest of the file
    storages: dict[str, np.ndarray] = {}

    def persistent_load(pid):
        _, storage_type, key, _location, numel, *view = _storage_pid(pid)
        dtype = _storage_dtype(storage_type)
        if key not in storages:
            nbytes = int(numel) * dtype.itemsize
            if not 0 <= nbytes <= budget - sum(s.nbytes for s in storages.values()):  # together, too
                raise TorchFormatError(f"storage of {numel} elements is larger than the rest of the file")
            storages[key] = np.zeros(int(numel), dtype)
        storage = storages[key]
        if view and view[0] is not None:  # pre-1.0 storage views: (view_key, offset, size)
            _, offset, view_size = view[0]
            return storage[int(offset): int(offset) + int(view_size)]
        return storage

    obj = restricted_load(f, allowed, persistent_load)
    listed = restricted_load(f)
    if not isinstance(listed, list) or sorted(map(str, listed)) != sorted(storages):
        raise TorchFormatError(f"the storages listed ({str(listed)[:80]}) are not those the tensors use "
                               f"({sorted(storages)[:8]})")
    for key in listed:
        storage = storages[key]
        header = f.read(8)
        if len(header) != 8 or struct.unpack("<q", header)[0] != storage.size:
            raise TorchFormatError(f"storage {key!r}: size record does not match (truncated file?)")
        raw = storage.view(np.uint8)
        if f.readinto(raw) != raw.size:
            raise TorchFormatError(f"storage {key!r} is truncated")
        if not sys_info.get("little_endian", True):
            storage.byteswap(inplace=True)
    return obj


def load_zip(archive: zipfile.ZipFile, allowed: Mapping[str, Any], record: str = "data") -> Any:
    """Reads ``<root>/<record>.pkl`` of a zip-format torch file, with storages from ``<root>/<record>/``
    (``record="constants"`` reads a TorchScript archive's constants)."""
    names = archive.namelist()
    pickles = [n for n in names if n.endswith(f"/{record}.pkl") and n.count("/") == 1]
    if not pickles:
        raise TorchFormatError(f"zip file has no <root>/{record}.pkl: not a torch.save file")
    root = pickles[0].split("/")[0]
    big_endian = f"{root}/byteorder" in names and archive.read(f"{root}/byteorder").strip() == b"big"
    storages: dict[str, np.ndarray] = {}

    def persistent_load(pid):
        _, storage_type, key, _location, numel, *_ = _storage_pid(pid)
        dtype = _storage_dtype(storage_type)
        if key not in storages:
            nbytes = int(numel) * dtype.itemsize
            with _stored_entry(archive, f"{root}/{record}/{key}") as entry:
                raw = entry.read(nbytes)
            if nbytes < 0 or len(raw) < nbytes:
                raise TorchFormatError(f"storage {key!r} is truncated")
            storage = np.frombuffer(raw, dtype.newbyteorder(">") if big_endian else dtype, count=int(numel))
            storages[key] = storage.astype(dtype) if big_endian else storage
        return storages[key]

    with _stored_entry(archive, pickles[0]) as f:
        return restricted_load(f, allowed, persistent_load)


def _stored_entry(archive: zipfile.ZipFile, name: str) -> BinaryIO:
    """The zip entry ``name``, opened; torch writes its entries uncompressed, so a compressed one (whose few
    bytes could inflate to gigabytes) is refused, and reads stop at the file's own bytes."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise TorchFormatError(f"{name} is missing from the zip file") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise TorchFormatError(f"{name} is compressed in the zip file; torch writes its entries uncompressed")
    return archive.open(info)


def _allowed(extra_globals: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**SAFE_GLOBALS, **torch_globals(), **(extra_globals or {})}


def load_torch_stream(f: BinaryIO, extra_globals: Mapping[str, Any] | None = None) -> Any:
    """Reads a torch.save file of either format from a seekable binary stream.

    Returns the saved object with every tensor as an ``np.ndarray``. ``extra_globals`` extends the
    allow-list (``"module.name" -> stand-in``), e.g. for the classes a TorchScript archive names.
    """
    allowed = _allowed(extra_globals)
    start = f.tell()
    if zipfile.is_zipfile(f):
        f.seek(start)
        with zipfile.ZipFile(f) as archive:
            return load_zip(archive, allowed)
    f.seek(start)
    return load_legacy(f, allowed)


def load_torch_bytes(data: bytes) -> Any:
    """`load_torch_stream` of an in-memory file (what ``torch.storage._load_from_bytes`` receives), with the
    torch globals alone: one argument, as torch's, so that a pickle calling it cannot extend the allow-list."""
    return load_torch_stream(io.BytesIO(data))


def load_torch_file(path: str | os.PathLike, extra_globals: Mapping[str, Any] | None = None) -> Any:
    """`load_torch_stream` of a file on disk: ``torch.save`` output -> Python objects with NumPy tensors."""
    with open(path, "rb") as f:
        return load_torch_stream(f, extra_globals)
