"""What the converters share: plain kwargs, TF variables and layouts, and the StyleGAN2 targets (our
`stylegan_jax.models.stylegan2` Generator/Discriminator) that both PyTorch and TF StyleGAN2 pickles become.

Every failure is a one-line `NetworkPickleError` (without the file name; `stylegan_jax.convert` adds it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.io.network_pickle import NetworkPickleError, PersistentObject, TFNetwork
from stylegan_jax.models.state_dict import state_dict_to_variables
from stylegan_jax.models.stylegan2 import SynthesisNetwork
from stylegan_jax.nn.discriminator import DiscriminatorBlock, DiscriminatorEpilogue
from stylegan_jax.nn.mapping import MappingNetwork


def plain(value: Any) -> Any:
    """EasyDicts, tuples and NumPy scalars -> plain dicts, lists and numbers (JSON-able kwargs)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------------------------------------------
# TF era: dnnlib.tflib.Network states.

def tf_params(net: TFNetwork, prefix: str = "") -> dict[str, np.ndarray]:
    """All variables of a TF network and its components, named ``component/.../scope/var``."""
    params = {prefix + name: np.asarray(value) for name, value in net.state.get("variables", [])}
    for name, component in net.state.get("components", {}).items():
        params.update(tf_params(component, f"{prefix}{name}/"))
    return params


def from_tf(value: np.ndarray, flip: bool = False) -> np.ndarray:
    """TF layouts -> NVIDIA's PyTorch ones: conv [kh, kw, in, out] -> [out, in, kh, kw] (spatially flipped
    with ``flip``, for TF's transposed convs), dense [in, out] -> [out, in]; other ranks unchanged."""
    value = np.asarray(value)
    if value.ndim == 4:
        return (value[::-1, ::-1] if flip else value).transpose(3, 2, 0, 1)
    return value.T if value.ndim == 2 else value


# ---------------------------------------------------------------------------------------------------------
# StyleGAN2 targets: NVIDIA's constructor kwargs -> ours, NVIDIA's state_dict -> our variables.

#: Arguments that change nothing in a converted network: speed/memory knobs and training-only settings.
IGNORED_KWARGS = ("fused_modconv_default", "fp16_channels_last", "freeze_layers")
#: NVIDIA's values for arguments our modules fix; other values cannot be converted.
FIXED_KWARGS = {"resample_filter": [1, 3, 3, 1], "activation": "lrelu"}
#: The nested kwargs dicts of our Generator/Discriminator and the module each one configures.
GENERATOR_NESTED = {"mapping_kwargs": MappingNetwork, "synthesis_kwargs": SynthesisNetwork}
DISCRIMINATOR_NESTED = {"block_kwargs": DiscriminatorBlock, "mapping_kwargs": MappingNetwork,
                        "epilogue_kwargs": DiscriminatorEpilogue}


def module_fields(cls: type) -> list[str]:
    """A Flax module's constructor fields in declaration order (without ``parent`` and ``name``)."""
    return [f.name for f in dataclasses.fields(cls) if f.name not in ("parent", "name")]


def accept_kwargs(kwargs: Mapping[str, Any], cls: type, what: str,
                  nested: Mapping[str, type] = {}) -> dict[str, Any]:
    """The kwargs ``cls`` takes (``nested`` dicts checked against their modules); `IGNORED_KWARGS` and
    NVIDIA's values of `FIXED_KWARGS` are dropped; anything else is a `NetworkPickleError` naming ``what``."""
    fields, out = module_fields(cls), {}
    for key, value in kwargs.items():
        if key in IGNORED_KWARGS or (key in FIXED_KWARGS and value == FIXED_KWARGS[key]):
            continue
        if key in nested:
            out[key] = accept_kwargs(value or {}, nested[key], f"{what} {key}")
        elif key in fields:
            out[key] = value
        else:
            raise NetworkPickleError(f"{what}: unsupported constructor argument {key}={value!r}")
    return out


def variable_template(module: Any) -> dict:
    """The variable shapes a generator (it has a ``z_dim``; any family's: ``init(key, z, c, noise_mode=...)``)
    or a StyleGAN discriminator module creates (``jax.eval_shape`` of init: nothing is computed)."""
    if hasattr(module, "z_dim"):
        args, kwargs = (jnp.zeros((1, module.z_dim)), jnp.zeros((1, module.c_dim))), {"noise_mode": "const"}
    else:
        res = module.img_resolution
        args, kwargs = (jnp.zeros((1, res, res, module.img_channels)), jnp.zeros((1, module.c_dim))), {}
    return jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))


def convert_variables(cls: type, kwargs: dict, state_dict: Callable[[dict], Mapping[str, np.ndarray]],
                      what: str) -> dict:
    """``cls(**kwargs)``'s variables ``{"params", "buffers"}`` (NumPy) filled from ``state_dict(template)``
    (NVIDIA's dotted names -> arrays, for the names of the template); a mismatch is a `NetworkPickleError`."""
    try:
        template = variable_template(cls(**kwargs))
        return state_dict_to_variables(state_dict(template), template, what)
    except (ValueError, TypeError) as e:
        raise NetworkPickleError(str(e).splitlines()[0]) from None


def convert_generators(data: dict, out: dict, cls: type,
                       read: Callable[[Any, str], tuple[dict, Callable[[dict], Mapping[str, np.ndarray]]]]) -> None:
    """Sets ``out["G_kwargs"]`` and ``out[name]`` (`convert_variables` of ``cls``) for each of ``G_ema`` and ``G``
    that ``data`` holds, from ``read(network, name) -> (kwargs, state_dict)``; the two must share their
    kwargs."""
    for name in ("G_ema", "G"):
        if data.get(name) is not None:
            kwargs, state_dict = read(data[name], name)
            if out.setdefault("G_kwargs", kwargs) != kwargs:
                raise NetworkPickleError("G and G_ema were built with different arguments")
            out[name] = convert_variables(cls, kwargs, state_dict, name)


# ---------------------------------------------------------------------------------------------------------
# PyTorch era: pickled torch.nn.Module stand-ins.

def init_kwargs(obj: PersistentObject, cls: type) -> dict[str, Any]:
    """The constructor arguments NVIDIA recorded (positional ones named in the order ``cls`` shares)."""
    kwargs = plain(obj.state.get("_init_kwargs", {}))
    kwargs.update(zip(module_fields(cls), plain(list(obj.state.get("_init_args", ()))), strict=False))
    return kwargs


def child(obj: PersistentObject, name: str) -> Any:
    """A pickled module's submodule ``name`` (None if absent)."""
    return obj.state.get("_modules", {}).get(name)


def module_state_dict(obj: PersistentObject, prefix: str = "") -> dict[str, np.ndarray]:
    """NVIDIA's ``state_dict()`` of a pickled module: dotted names -> arrays (parameters and buffers)."""
    out = {}
    skip = obj.state.get("_non_persistent_buffers_set", set())
    for group in ("_parameters", "_buffers"):
        for name, value in obj.state.get(group, {}).items():
            if value is not None and name not in skip:
                out[prefix + name] = value
    for name, sub in obj.state.get("_modules", {}).items():
        if isinstance(sub, PersistentObject):
            out.update(module_state_dict(sub, f"{prefix}{name}."))
        elif sub is not None:
            raise NetworkPickleError(f"unexpected submodule {prefix}{name} of type {type(sub).__name__}")
    return out


def parameter_names(obj: PersistentObject, prefix: str = "") -> list[str]:
    """The dotted names of a pickled module's parameters in ``Module.parameters()`` order, the indices of an
    optimizer state built on them: the module's own, then each submodule's, depth first."""
    names = [prefix + name for name, value in obj.state.get("_parameters", {}).items() if value is not None]
    for name, sub in obj.state.get("_modules", {}).items():
        if isinstance(sub, PersistentObject):
            names += parameter_names(sub, f"{prefix}{name}.")
    return names


def check_class(obj: Any, what: str, class_name: str) -> PersistentObject:
    """``obj`` if it is a pickled module of class ``class_name``, else a one-line error naming ``what``."""
    if not isinstance(obj, PersistentObject):
        raise NetworkPickleError(f"{what} is a {type(obj).__name__}, not a network")
    if obj.class_name != class_name:
        raise NetworkPickleError(f"{what} is a {obj.class_name}, expected a {class_name}")
    return obj
