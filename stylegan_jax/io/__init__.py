"""Readers of foreign formats that execute nothing from the file: restricted unpickling and torch.save
files (zip and legacy) read into NumPy."""

from stylegan_jax.io.restricted_pickle import SAFE_GLOBALS, ForbiddenGlobalError, RestrictedUnpickler, restricted_load
from stylegan_jax.io.torch_format import (
    TorchFormatError,
    load_torch_bytes,
    load_torch_file,
    load_torch_stream,
    load_zip,
    torch_globals,
)

__all__ = ["SAFE_GLOBALS", "ForbiddenGlobalError", "RestrictedUnpickler", "TorchFormatError", "load_torch_bytes",
           "load_torch_file", "load_torch_stream", "load_zip", "restricted_load", "torch_globals"]
