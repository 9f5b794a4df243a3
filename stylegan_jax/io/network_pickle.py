"""NVIDIA's network pickles read into inert stand-ins, with neither torch nor TensorFlow installed and nothing
from the file executed.

The pickle may name only the globals in `network_pickle_globals`, each an inert stand-in: NVIDIA's
persistence reconstructor becomes a `PersistentObject` (class name + recorded state; the module source it
carries is dropped unread), torch's tensor rebuilders give NumPy arrays (`stylegan_jax.io.torch_format`),
``dnnlib.util.EasyDict`` a dict, ``dnnlib.tflib.network.Network`` a `TFNetwork` holding its state; a caller
may add the inert stand-ins of another format (``extra_globals``: R3GAN's module classes). Anything else stops
the load with one line naming the global.

What the tree means (which networks, which constructor arguments) is `stylegan_jax.convert`'s business.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from stylegan_jax.errors import first_line
from stylegan_jax.io.restricted_pickle import SAFE_GLOBALS, ForbiddenGlobalError, restricted_load
from stylegan_jax.io.torch_format import load_torch_bytes, torch_globals

#: The end of every one-line error about a file that is not a convertible network pickle.
EXPECTED = ("expected an NVIDIA network pickle (stylegan2-ada-pytorch, stylegan3's StyleGAN2 or StyleGAN3, TF-era "
            "StyleGAN1 or StyleGAN2) or an R3GAN snapshot")


class NetworkPickleError(ValueError):
    """The file is not a network pickle we can convert; the message is one line naming the file."""


@dataclasses.dataclass
class PersistentObject:
    """Stand-in for an object NVIDIA's ``torch_utils.persistence`` rebuilds: its class name and the state
    (the torch module's ``__dict__``: ``_parameters``, ``_buffers``, ``_modules``, attributes,
    ``_init_args``, ``_init_kwargs``). The embedded module source is not kept."""

    class_name: str
    state: dict


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    if not (isinstance(meta, dict) and meta.get("type") == "class" and isinstance(meta.get("class_name"), str)
            and isinstance(meta.get("state"), dict)):
        raise NetworkPickleError("malformed persistent object record")
    return PersistentObject(meta["class_name"], meta["state"])


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict."""


class TFNetwork:
    """Stand-in for TF-era ``dnnlib.tflib.network.Network``: keeps the pickled state (name, static_kwargs,
    components, variables [(name, array)]); ``build_module_src`` is never run."""

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise NetworkPickleError("malformed TF network state")
        self.state = state


def network_pickle_globals(extra_globals: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The allow-list of a network pickle: ``"module.name" -> stand-in``, plus ``extra_globals`` (the inert
    stand-ins a converter of another format owns, e.g. `stylegan_jax.convert.torch_r3gan`'s)."""
    return {
        **(extra_globals or {}), **SAFE_GLOBALS, **torch_globals(),
        "torch.storage._load_from_bytes": load_torch_bytes,
        "torch_utils.persistence._reconstruct_persistent_obj": _reconstruct_persistent_obj,
        "dnnlib.util.EasyDict": EasyDict,
        "dnnlib.EasyDict": EasyDict,
        "dnnlib.tflib.network.Network": TFNetwork,
    }


def read_network_pickle(path: str | os.PathLike, extra_globals: Mapping[str, Any] | None = None) -> Any:
    """The pickle's object tree built from stand-ins (`network_pickle_globals` of ``extra_globals``); any failure
    is one `NetworkPickleError` line."""
    try:
        with open(path, "rb") as f:
            return restricted_load(f, network_pickle_globals(extra_globals))
    except OSError as e:
        raise NetworkPickleError(f"{path}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - hostile or corrupt input: any failure is one line, no traceback
        text = first_line(e)
        if isinstance(e, ForbiddenGlobalError | NetworkPickleError):
            reason = text
        elif os.path.getsize(path) == 0:
            reason = "the file is empty"
        elif isinstance(e, EOFError) or "truncated" in text:
            reason = "the file is truncated or not a pickle"
        else:
            reason = f"not a readable pickle ({type(e).__name__}: {text})"
        raise NetworkPickleError(f"{path}: {reason}; {EXPECTED}") from None
