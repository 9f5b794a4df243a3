"""The torch-free reader against files torch itself wrote (``tests/fixtures/torch_files``, made by
``tests/fixtures/make_nvidia_pickles.py``)."""

import io
import pickle
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from stylegan_jax.io.restricted_pickle import ForbiddenGlobalError, restricted_load
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
