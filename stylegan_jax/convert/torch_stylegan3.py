"""NVIDIA's StyleGAN3 network pickles (NVlabs/stylegan3, ``training/networks_stylegan3.py``) -> our
`stylegan_jax.models.stylegan3` kwargs and variables.

A snapshot dict ``G``, ``D``, ``G_ema`` (``augment_pipe``, ``training_set_kwargs`` ignored) of `PersistentObject`
stand-ins; D is StyleGAN2's and converts as in `torch_stylegan2`. The state dict is a rename; the buffers
``w_avg``, ``transform``, ``freqs``, ``phases`` and ``magnitude_ema`` are imported, while each layer's
``up_filter`` and ``down_filter`` are checked against the filters our layer designs from the same schedule (a
mismatch means the pickle was built differently, and is refused) and then dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stylegan_jax.convert.common import (
    accept_kwargs,
    check_class,
    child,
    convert_generators,
    convert_variables,
    init_kwargs,
    module_state_dict,
)
from stylegan_jax.convert.torch_stylegan2 import discriminator_kwargs
from stylegan_jax.io.network_pickle import NetworkPickleError, PersistentObject
from stylegan_jax.models.stylegan2 import Discriminator
from stylegan_jax.models.stylegan3 import Generator, SynthesisNetwork
from stylegan_jax.nn.mapping import MappingNetwork

GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")
FILTERS = ("up_filter", "down_filter")
#: Filters agree with our designs to float32 rounding (both come from scipy in float64).
FILTER_RTOL, FILTER_ATOL = 1e-5, 1e-7


def is_stylegan3(obj: Any) -> bool:
    """Whether a pickled Generator is StyleGAN3's: its synthesis starts with the Fourier-feature ``input``."""
    synthesis = child(obj, "synthesis") if isinstance(obj, PersistentObject) else None
    return isinstance(synthesis, PersistentObject) and "input" in synthesis.state.get("_modules", {})


def generator_kwargs(obj: Any, what: str = "G") -> dict[str, Any]:
    """Our StyleGAN3 Generator's kwargs from a pickled NVIDIA one (NVIDIA passes the synthesis's flat)."""
    obj = check_class(obj, what, "Generator")
    kwargs = init_kwargs(obj, Generator)
    synthesis = {k: kwargs.pop(k) for k in list(kwargs) if k not in GENERATOR_ARGS}
    mapping = dict(kwargs.pop("mapping_kwargs", None) or {})
    recorded = child(obj, "mapping").state
    mapping.setdefault("num_layers", recorded.get("num_layers", 2))
    mapping.setdefault("w_avg_beta", recorded.get("w_avg_beta", 0.998))
    kwargs.update(mapping_kwargs=mapping, synthesis_kwargs=synthesis)
    return accept_kwargs(kwargs, Generator, what, {"mapping_kwargs": MappingNetwork,
                                                   "synthesis_kwargs": SynthesisNetwork})


def checked_state_dict(obj: PersistentObject, kwargs: dict, what: str) -> dict[str, np.ndarray]:
    """The Generator's state dict without its filters, after checking each against our layer's design."""
    state = module_state_dict(obj)
    synthesis = SynthesisNetwork(w_dim=kwargs["w_dim"], img_resolution=kwargs["img_resolution"],
                                 img_channels=kwargs["img_channels"], **kwargs["synthesis_kwargs"])
    _, specs = synthesis.schedule
    for spec in specs:
        for kind in FILTERS:
            name = f"synthesis.{spec.name}.{kind}"
            ours, theirs = getattr(spec, kind), state.pop(name, None)
            if (ours is None) != (theirs is None) or (ours is not None and (
                    np.shape(theirs) != ours.shape or not np.allclose(theirs, ours, FILTER_RTOL, FILTER_ATOL))):
                raise NetworkPickleError(f"{what}: {name} differs from the filter designed from the network's "
                                         "schedule")
    return state


def convert_torch3(data: dict) -> dict[str, Any]:
    """A StyleGAN3 snapshot dict -> ``{"G_kwargs", "D_kwargs", "G", "G_ema", "D", "metadata"}`` (see
    `stylegan_jax.convert.load_network_pkl`); ``metadata`` names the model ``stylegan3``."""
    out: dict[str, Any] = {"metadata": {"format": "stylegan3", "model": "stylegan3"}}
    def read(obj: Any, name: str) -> tuple[dict, Any]:
        kwargs = generator_kwargs(obj, name)
        state = checked_state_dict(obj, kwargs, name)
        return kwargs, lambda _: state

    convert_generators(data, out, Generator, read)
    if data.get("D") is not None:
        out["D_kwargs"] = discriminator_kwargs(data["D"], "stylegan3")
        out["D"] = convert_variables(Discriminator, out["D_kwargs"], lambda _: module_state_dict(data["D"]), "D")
    return out
