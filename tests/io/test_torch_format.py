"""The torch-free reader against files torch itself wrote (``tests/fixtures/torch_files``, made by
``tests/fixtures/make_nvidia_pickles.py``)."""

import io
import pickle
import struct
import tracemalloc
import zipfile
from collections import OrderedDict
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from stylegan_jax.io.network_pickle import NetworkPickleError, read_network_pickle
from stylegan_jax.io.restricted_pickle import ForbiddenGlobalError, UnsafePickleError, restricted_load
from stylegan_jax.io.torch_format import TorchFormatError, load_torch_bytes, load_torch_file, strided_view

FILES = Path(__file__).parent.parent / "fixtures" / "torch_files"
DTYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
          "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8, "uint8": np.uint8,
          "bool": np.bool_, "complex64": np.complex64}


@pytest.fixture(params=["zip", "legacy"])
def saved(request):
    return load_torch_file(FILES / f"tensors_{request.param}.pt")


def test_every_dtype_reads_torchs_values(saved):
    for name, dtype in DTYPES.items():
        got = saved[f"arange_{name}"]
        assert got.dtype == np.dtype(dtype), name
        np.testing.assert_array_equal(got, np.arange(24).reshape(2, 3, 4).astype(dtype), err_msg=name)


def test_strides_and_offsets_give_views_of_one_storage(saved):
    base = np.arange(30, dtype=np.float32).reshape(5, 6)
    np.testing.assert_array_equal(saved["base"], base)
    np.testing.assert_array_equal(saved["transposed"], base.T)
    np.testing.assert_array_equal(saved["window"], base[1:4, 2:5])
    np.testing.assert_array_equal(saved["column"], base[:, 3])
    assert saved["scalar"].shape == () and saved["scalar"] == 14
    assert np.shares_memory(saved["window"], saved["base"])  # as in torch, views share their storage


def test_view_outside_its_storage_is_refused():
    with pytest.raises(TorchFormatError, match="reaches past"):
        strided_view(np.zeros(6, np.float32), 2, (2, 3), (3, 1))


def test_view_repeating_elements_beyond_the_budget_is_refused():
    storage = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(strided_view(storage, 0, (3, 4), (0, 1)), np.tile(storage, (3, 1)))  # an expand
    with pytest.raises(TorchFormatError, match="more elements than its storage of 4"):
        strided_view(storage, 0, (100_000, 100_000), (0, 0))  # 40 GB from 16 bytes


def test_truncated_legacy_file_is_an_error():
    data = (FILES / "tensors_legacy.pt").read_bytes()
    with pytest.raises(TorchFormatError):
        load_torch_bytes(data[:-10])


def test_zip_with_missing_storage_is_an_error():
    src = zipfile.ZipFile(FILES / "tensors_zip.pt")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for item in src.infolist():
            if not item.filename.endswith("/data/0"):
                dst.writestr(item, src.read(item))
    with pytest.raises(TorchFormatError, match="missing"):
        load_torch_bytes(buf.getvalue())


class Boom:
    def __reduce__(self):
        return (print, ("executed",))


def test_restricted_unpickler_refuses_unlisted_globals():
    with pytest.raises(ForbiddenGlobalError, match="builtins.print"):
        restricted_load(io.BytesIO(pickle.dumps(Boom())))
    assert restricted_load(io.BytesIO(pickle.dumps({"a": [1, 2.5, {3}], "b": np.arange(3)})))["a"] == [1, 2.5, {3}]


def test_a_tensor_rebuilt_over_another_tensor_is_refused():
    """A hostile pickle passing a rebuilt tensor as another's storage: a stride-0 view of one element counts
    n elements but holds 4 bytes, and a view over it must not read the memory past them."""
    repeated = strided_view(np.ones(1, np.float32), 0, (64,), (0,))
    with pytest.raises(TorchFormatError, match="not a flat array"):
        strided_view(repeated, 0, (64,), (1,))
    with pytest.raises(TorchFormatError, match="not a flat array"):
        strided_view(np.zeros((4, 4), np.float32), 4, (8,), (1,))  # rows, not elements, past the offset


def test_a_compressed_storage_is_refused_before_it_inflates():
    """torch writes its zip entries uncompressed; a deflated one (a few bytes that could inflate to gigabytes)
    is refused unread."""
    src = zipfile.ZipFile(FILES / "tensors_zip.pt")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for item in src.infolist():
            compress = zipfile.ZIP_DEFLATED if item.filename.endswith("/data/0") else zipfile.ZIP_STORED
            dst.writestr(item.filename, src.read(item), compress_type=compress)
    with pytest.raises(TorchFormatError, match="compressed"):
        load_torch_bytes(buf.getvalue())


def legacy_file(used: list[str], listed: list[str], n: int = 1024) -> bytes:
    """A legacy-format torch file whose object is a list of float32 tensors of ``n`` elements on the storages
    ``used`` and whose storage list is ``listed`` (each listed storage's ``n`` values follow: 0, 1, ...)."""
    tensors = b"".join(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX"
                       + struct.pack("<I", len(key)) + key.encode() + b"X\x03\x00\x00\x00cpuM"
                       + struct.pack("<H", n) + b"tQK\x00M" + struct.pack("<H", n) + b"\x85K\x01\x85tR"
                       for key in used)
    out = io.BytesIO()
    for record in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(record, out, protocol=2)
    out.write(b"\x80\x02(" + tensors + b"l.")
    pickle.dump(listed, out, protocol=2)
    for _ in listed:
        out.write(struct.pack("<q", n) + np.arange(n, dtype=np.float32).tobytes())
    return out.getvalue()


def test_a_legacy_file_reads_the_storages_it_lists():
    a, b = load_torch_bytes(legacy_file(["a", "b"], ["a", "b"]))
    np.testing.assert_array_equal(a, np.arange(1024))
    np.testing.assert_array_equal(b, np.arange(1024))


def test_a_legacy_storage_used_but_not_listed_is_refused():
    """Its values would be whatever the memory held: a damaged file is an error, not random weights."""
    with pytest.raises(TorchFormatError, match="not those the tensors use"):
        load_torch_bytes(legacy_file(["a", "b"], ["a"], n=16))


def test_legacy_storages_larger_together_than_the_file_are_refused():
    """Each storage fits in the rest of the file, all of them together do not: a few bytes must not allocate
    many times the file's size."""
    data = legacy_file(["a"], ["a"], n=1024)
    tensors = legacy_file([str(i) for i in range(64)], ["0"], n=1024)  # 64 storages of 4 KB in a 4 KB file
    assert len(tensors) < len(data) + 64 * 100
    with pytest.raises(TorchFormatError, match="larger than the rest of the file"):
        load_torch_bytes(tensors)


@pytest.mark.parametrize("payload", [
    b"\x80\x02cbuiltins\nbytearray\nJ\x00\x00\x00\x80\x85R.",  # bytearray(2**31): 2 GB from 27 bytes
    b"\x80\x02cbuiltins\nfrozenset\ncbuiltins\nrange\nK\x00J\x00\xe1\xf5\x05\x86R\x85R.",  # of range(10**8)
    b"\x80\x02cbuiltins\nset\ncbuiltins\nrange\nK\x00J\x00\xe1\xf5\x05\x86R\x85R.",
    b"\x80\x02ccollections\nOrderedDict\ncbuiltins\nrange\nK\x00J\x00\xe1\xf5\x05\x86R\x85R.",
    b"\x80\x02cbuiltins\nbytes\nJ\x00\x00\x00\x80\x85R.",  # bytes(2**31), as protocols 0-2 write b""
])
def test_allowed_containers_are_built_from_stored_items_only(payload):
    with pytest.raises(UnsafePickleError, match="not stored items"):
        restricted_load(io.BytesIO(payload))


@pytest.mark.parametrize("payload", [
    # _reconstruct(ndarray, (2**29,), 'f8'): 4 GiB from a 70-byte file (NumPy's own pickles reconstruct (0,))
    b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n\x8a\x04\x00\x00\x00\x20\x85"
    b"X\x02\x00\x00\x00f8\x87R.",
    b"\x80\x02cnumpy\nndarray\n\x8a\x04\x00\x00\x00\x20\x85R.",  # ndarray((2**29,)) called directly
])
def test_arrays_are_built_from_stored_bytes_only(payload):
    tracemalloc.start()
    try:
        with pytest.raises(UnsafePickleError, match="nothing was allocated"):
            restricted_load(io.BytesIO(payload))
        assert tracemalloc.get_traced_memory()[1] < 2**20
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize("array", [np.arange(6, dtype=np.float32).reshape(2, 3), np.zeros((0, 4), np.int64),
                                   np.asfortranarray(np.eye(3)), np.float16(1.5), np.array(["ab", "c"])])
def test_numpy_arrays_and_scalars_load_as_pickled(protocol, array):
    loaded = restricted_load(io.BytesIO(pickle.dumps(array, protocol=protocol)))
    assert type(loaded) is type(array) and loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)


def test_torchs_load_from_bytes_takes_no_allow_list_from_the_pickle(tmp_path):
    """Torch's ``_load_from_bytes(b)`` takes one argument; a second one, an allow-list, would let the pickle
    name globals of its own choosing in the inner file."""
    inner = legacy_file(["a"], ["a"])
    path = tmp_path / "network.pkl"
    path.write_bytes(b"\x80\x03ctorch.storage\n_load_from_bytes\nB" + struct.pack("<I", len(inner)) + inner
                     + b"\x85R.")  # _load_from_bytes(inner): loads
    np.testing.assert_array_equal(read_network_pickle(path)[0], np.arange(1024))
    path.write_bytes(b"\x80\x03ctorch.storage\n_load_from_bytes\nB" + struct.pack("<I", len(inner)) + inner
                     + b"}\x86R.")  # _load_from_bytes(inner, {})
    with pytest.raises(NetworkPickleError, match="takes 1 positional argument"):
        read_network_pickle(path)


@pytest.mark.parametrize("protocol", range(6))
def test_allowed_containers_load_as_pickled(protocol):
    """Protocols below 3 name Python 2's modules (``__builtin__.set``, ``__builtin__.xrange``), mapped as
    pickle's own unpickler maps them."""
    data = {"s": {1, 2}, "f": frozenset({3}), "b": bytearray(b"ab"), "o": OrderedDict(a=1), "r": range(3)}
    assert restricted_load(io.BytesIO(pickle.dumps(data, protocol=protocol))) == data


def test_python_2s_names_map_to_the_allow_list_and_no_further():
    with pytest.raises(ForbiddenGlobalError, match="builtins.eval"):
        restricted_load(io.BytesIO(b"\x80\x02c__builtin__\neval\nX\x01\x00\x00\x001\x85R."))


def test_a_memo_index_of_a_few_bytes_allocates_nothing():
    """``LONG_BINPUT 2**27``: the C unpickler's memo grows to the index (2 GB from 9 bytes); ours is a dict."""
    tracemalloc.start()
    try:
        assert restricted_load(io.BytesIO(b"\x80\x02Nr\x00\x00\x00\x08.")) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak
