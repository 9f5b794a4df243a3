"""NVIDIA's StyleGAN2 network pickles -> our Generator/Discriminator kwargs and variables, with neither torch
nor TensorFlow installed, and nothing from the file executed.

Readable: snapshots of NVlabs/stylegan2-ada-pytorch and of NVlabs/stylegan3's StyleGAN2
(``training/networks_stylegan2.py``), a dict with ``G``, ``D``, ``G_ema`` (and ``augment_pipe``,
``training_set_kwargs``, ignored), and TF-era StyleGAN2/StyleGAN2-ADA pickles, a tuple ``(G, D, Gs)`` of
``dnnlib.tflib.Network`` states, converted as NVIDIA's ``legacy.py`` converts them.

The pickle may name only the globals in `network_pickle_globals`, each an inert stand-in: NVIDIA's
persistence reconstructor becomes a `PersistentObject` (class name + recorded state; the module source it
carries is dropped unread), torch's tensor rebuilders give NumPy arrays (`stylegan_jax.io.torch_format`),
``dnnlib.util.EasyDict`` a dict, ``dnnlib.tflib.network.Network`` a `TFNetwork` holding its state. Anything
else stops the load with one line naming the global.

Constructor kwargs come from ``_init_kwargs`` (only the arguments that were passed); ``w_avg_beta``, whose
default differs between the repositories (0.995 in stylegan2-ada-pytorch, 0.998 in stylegan3's StyleGAN2), is
read from the value NVIDIA's MappingNetwork recorded, else defaulted by the kwargs layout (nested
``synthesis_kwargs``: stylegan2-ada-pytorch; flat: stylegan3).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.io.restricted_pickle import SAFE_GLOBALS, ForbiddenGlobalError, restricted_load
from stylegan_jax.io.torch_format import load_torch_bytes, torch_globals
from stylegan_jax.models.state_dict import flatten_variables, state_dict_to_variables
from stylegan_jax.models.stylegan2 import Discriminator, Generator, SynthesisNetwork
from stylegan_jax.nn.discriminator import DiscriminatorBlock, DiscriminatorEpilogue
from stylegan_jax.nn.mapping import MappingNetwork

EXPECTED = "expected an NVIDIA StyleGAN2 network pickle (stylegan2-ada-pytorch, stylegan3 or TF-era StyleGAN2)"


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


def network_pickle_globals() -> dict[str, Any]:
    """The allow-list of a network pickle: ``"module.name" -> stand-in``."""
    return {
        **SAFE_GLOBALS, **torch_globals(),
        "torch.storage._load_from_bytes": load_torch_bytes,
        "torch_utils.persistence._reconstruct_persistent_obj": _reconstruct_persistent_obj,
        "dnnlib.util.EasyDict": EasyDict,
        "dnnlib.EasyDict": EasyDict,
        "dnnlib.tflib.network.Network": TFNetwork,
    }


def read_network_pickle(path: str | os.PathLike) -> Any:
    """The pickle's object tree built from stand-ins; any failure is one `NetworkPickleError` line."""
    try:
        with open(path, "rb") as f:
            return restricted_load(f, network_pickle_globals())
    except OSError as e:
        raise NetworkPickleError(f"{path}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - hostile or corrupt input: any failure is one line, no traceback
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, ForbiddenGlobalError | NetworkPickleError):
            reason = text
        elif os.path.getsize(path) == 0:
            reason = "the file is empty"
        elif isinstance(e, EOFError) or "truncated" in text:
            reason = "the file is truncated or not a pickle"
        else:
            reason = f"not a readable pickle ({type(e).__name__}: {text})"
        raise NetworkPickleError(f"{path}: {reason}; {EXPECTED}") from None


# ---------------------------------------------------------------------------------------------------------
# Torch era (stylegan2-ada-pytorch, stylegan3).

#: Arguments that change nothing in a converted network: speed/memory knobs and training-only settings.
IGNORED_KWARGS = ("fused_modconv_default", "fp16_channels_last", "freeze_layers")
#: NVIDIA's values for arguments our modules fix; other values cannot be converted.
FIXED_KWARGS = {"resample_filter": [1, 3, 3, 1], "activation": "lrelu"}
GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
GENERATOR_NESTED = {"mapping_kwargs": MappingNetwork, "synthesis_kwargs": SynthesisNetwork}
DISCRIMINATOR_NESTED = {"block_kwargs": DiscriminatorBlock, "mapping_kwargs": MappingNetwork,
                        "epilogue_kwargs": DiscriminatorEpilogue}
#: w_avg_beta when neither the kwargs nor the pickled MappingNetwork record it, by repository.
W_AVG_BETA = {"stylegan2-ada-pytorch": 0.995, "stylegan3": 0.998}


def _module_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name not in ("parent", "name")]


def _plain(value: Any) -> Any:
    """EasyDicts, tuples and NumPy scalars -> plain dicts, lists and numbers (JSON-able kwargs)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _accept(kwargs: Mapping[str, Any], cls: type, what: str, nested: Mapping[str, type] = {}) -> dict[str, Any]:
    """The kwargs ``cls`` takes (``nested`` dicts checked against their modules); ignorable ones and
    NVIDIA's values of arguments we fix are dropped; anything else is refused."""
    fields, out = _module_fields(cls), {}
    for key, value in kwargs.items():
        if key in IGNORED_KWARGS or (key in FIXED_KWARGS and value == FIXED_KWARGS[key]):
            continue
        if key in nested:
            out[key] = _accept(value or {}, nested[key], f"{what} {key}")
        elif key in fields:
            out[key] = value
        else:
            raise NetworkPickleError(f"{what}: unsupported constructor argument {key}={value!r}")
    return out


def _init_kwargs(obj: PersistentObject, cls: type) -> dict[str, Any]:
    """The constructor arguments NVIDIA recorded (positional ones named in the order ``cls`` shares)."""
    kwargs = _plain(obj.state.get("_init_kwargs", {}))
    kwargs.update(zip(_module_fields(cls), _plain(list(obj.state.get("_init_args", ()))), strict=False))
    return kwargs


def _child(obj: PersistentObject, name: str) -> Any:
    return obj.state.get("_modules", {}).get(name)


def module_state_dict(obj: PersistentObject, prefix: str = "") -> dict[str, np.ndarray]:
    """NVIDIA's ``state_dict()`` of a pickled module: dotted names -> arrays (parameters and buffers)."""
    out = {}
    skip = obj.state.get("_non_persistent_buffers_set", set())
    for group in ("_parameters", "_buffers"):
        for name, value in obj.state.get(group, {}).items():
            if value is not None and name not in skip:
                out[prefix + name] = value
    for name, child in obj.state.get("_modules", {}).items():
        if isinstance(child, PersistentObject):
            out.update(module_state_dict(child, f"{prefix}{name}."))
        elif child is not None:
            raise NetworkPickleError(f"unexpected submodule {prefix}{name} of type {type(child).__name__}")
    return out


def _check_class(obj: Any, what: str, class_name: str) -> PersistentObject:
    if not isinstance(obj, PersistentObject):
        raise NetworkPickleError(f"{what} is a {type(obj).__name__}, not a network")
    if obj.class_name != class_name:
        raise NetworkPickleError(f"{what} is a {obj.class_name}, expected a StyleGAN2 {class_name}")
    return obj


def repository(obj: PersistentObject) -> str:
    """Which code wrote a pickled Generator: stylegan2-ada-pytorch nests ``synthesis_kwargs``, stylegan3's
    StyleGAN2 takes them flat."""
    return "stylegan2-ada-pytorch" if "synthesis_kwargs" in obj.state.get("_init_kwargs", {}) else "stylegan3"


def generator_kwargs(obj: Any, what: str = "G") -> dict[str, Any]:
    """Our Generator's kwargs from a pickled NVIDIA Generator (StyleGAN2 only)."""
    obj = _check_class(obj, what, "Generator")
    synthesis = _child(obj, "synthesis")
    blocks = synthesis.state.get("_modules", {}) if isinstance(synthesis, PersistentObject) else {}
    if "input" in blocks:
        raise NetworkPickleError(f"{what} is a StyleGAN3 (alias-free) generator, which is not supported; "
                                 "only StyleGAN2 networks convert")
    if "b4" not in blocks:
        raise NetworkPickleError(f"{what}: unknown generator architecture (synthesis has {sorted(blocks)[:4]})")
    kwargs = _init_kwargs(obj, Generator)
    synthesis_kwargs = {**(kwargs.pop("synthesis_kwargs", None) or {}),
                        **{k: kwargs.pop(k) for k in list(kwargs) if k not in GENERATOR_ARGS}}
    mapping_kwargs = dict(kwargs.pop("mapping_kwargs", None) or {})
    mapping = _child(obj, "mapping")
    recorded = mapping.state if isinstance(mapping, PersistentObject) else {}
    mapping_kwargs.setdefault("w_avg_beta", _plain(recorded.get("w_avg_beta", W_AVG_BETA[repository(obj)])))
    kwargs.update(mapping_kwargs=mapping_kwargs, synthesis_kwargs=synthesis_kwargs)
    return _accept(kwargs, Generator, what, GENERATOR_NESTED)


def discriminator_kwargs(obj: Any, what: str = "D") -> dict[str, Any]:
    """Our Discriminator's kwargs from a pickled NVIDIA Discriminator."""
    obj = _check_class(obj, what, "Discriminator")
    epilogue = _child(obj, "b4")
    if not (isinstance(epilogue, PersistentObject) and epilogue.class_name == "DiscriminatorEpilogue"):
        raise NetworkPickleError(f"{what}: unknown discriminator architecture")
    return _accept(_init_kwargs(obj, Discriminator), Discriminator, what, DISCRIMINATOR_NESTED)


def variable_template(module: Generator | Discriminator) -> dict:
    """The variable shapes our module creates (``jax.eval_shape`` of init: nothing is computed)."""
    if isinstance(module, Generator):
        args = (jnp.zeros((1, module.z_dim)), jnp.zeros((1, module.c_dim)), 1.0, None, "const")
    else:
        res = module.img_resolution
        args = (jnp.zeros((1, res, res, module.img_channels)), jnp.zeros((1, module.c_dim)))
    return jax.eval_shape(lambda: module.init(jax.random.key(0), *args))


def _convert(cls: type, kwargs: dict, state_dict: Callable[[dict], Mapping[str, np.ndarray]], what: str) -> dict:
    """Builds ``cls(**kwargs)``'s template and fills it from ``state_dict(template)`` (NVIDIA's names)."""
    try:
        template = variable_template(cls(**kwargs))
        return state_dict_to_variables(state_dict(template), template, what)
    except (ValueError, TypeError) as e:
        raise NetworkPickleError(str(e).splitlines()[0]) from None


def _convert_torch(data: dict) -> dict[str, Any]:
    out: dict[str, Any] = {"metadata": {"format": repository(_check_class(data["G_ema"], "G_ema", "Generator"))}}
    for name in ("G_ema", "G"):
        if data.get(name) is not None:
            kwargs = generator_kwargs(data[name], name)
            if out.setdefault("G_kwargs", kwargs) != kwargs:
                raise NetworkPickleError("G and G_ema were built with different arguments")
            out[name] = _convert(Generator, kwargs, lambda _, obj=data[name]: module_state_dict(obj), name)
    if data.get("D") is not None:
        out["D_kwargs"] = discriminator_kwargs(data["D"])
        out["D"] = _convert(Discriminator, out["D_kwargs"], lambda _: module_state_dict(data["D"]), "D")
    return out


# ---------------------------------------------------------------------------------------------------------
# TF era: (G, D, Gs) as dnnlib.tflib.Network states; kwargs and variables converted as NVIDIA's legacy.py.

# (TF static kwarg, path in our kwargs, default)
TF_GENERATOR_KWARGS = [
    ("latent_size", ("z_dim",), 512), ("label_size", ("c_dim",), 0), ("dlatent_size", ("w_dim",), 512),
    ("resolution", ("img_resolution",), 1024), ("num_channels", ("img_channels",), 3),
    ("mapping_layers", ("mapping_kwargs", "num_layers"), 8),
    ("label_fmaps", ("mapping_kwargs", "embed_features"), None),
    ("mapping_fmaps", ("mapping_kwargs", "layer_features"), None),
    ("mapping_nonlinearity", ("mapping_kwargs", "activation"), "lrelu"),
    ("mapping_lrmul", ("mapping_kwargs", "lr_multiplier"), 0.01),
    ("w_avg_beta", ("mapping_kwargs", "w_avg_beta"), 0.995),
    ("fmap_base", ("synthesis_kwargs", "channel_base"), 16384),
    ("fmap_max", ("synthesis_kwargs", "channel_max"), 512),
    ("num_fp16_res", ("synthesis_kwargs", "num_fp16_res"), 0),
    ("conv_clamp", ("synthesis_kwargs", "conv_clamp"), None),
    ("architecture", ("synthesis_kwargs", "architecture"), "skip"),
    ("resample_kernel", ("synthesis_kwargs", "resample_filter"), [1, 3, 3, 1]),
    ("use_noise", ("synthesis_kwargs", "use_noise"), True),
    ("nonlinearity", ("synthesis_kwargs", "activation"), "lrelu"),
]
TF_DISCRIMINATOR_KWARGS = [
    ("label_size", ("c_dim",), 0), ("resolution", ("img_resolution",), 1024),
    ("num_channels", ("img_channels",), 3), ("architecture", ("architecture",), "resnet"),
    ("fmap_base", ("channel_base",), 16384), ("fmap_max", ("channel_max",), 512),
    ("num_fp16_res", ("num_fp16_res",), 0), ("conv_clamp", ("conv_clamp",), None),
    ("mapping_fmaps", ("cmap_dim",), None),
    ("nonlinearity", ("block_kwargs", "activation"), "lrelu"),
    ("resample_kernel", ("block_kwargs", "resample_filter"), [1, 3, 3, 1]),
    ("freeze_layers", ("block_kwargs", "freeze_layers"), 0),
    ("mapping_layers", ("mapping_kwargs", "num_layers"), 0),
    ("mapping_fmaps", ("mapping_kwargs", "embed_features"), None),
    ("mapping_fmaps", ("mapping_kwargs", "layer_features"), None),
    ("nonlinearity", ("mapping_kwargs", "activation"), "lrelu"),
    ("mapping_lrmul", ("mapping_kwargs", "lr_multiplier"), 0.1),
    ("mbstd_group_size", ("epilogue_kwargs", "mbstd_group_size"), None),
    ("mbstd_num_features", ("epilogue_kwargs", "mbstd_num_channels"), 1),
    ("nonlinearity", ("epilogue_kwargs", "activation"), "lrelu"),
]
#: TF kwargs that do not shape the network (NVIDIA's converter ignores them too).
TF_IGNORED = ("truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure")


def _tf_kwargs(net: TFNetwork, table, what: str) -> dict[str, Any]:
    static = _plain(net.state.get("static_kwargs", {}))
    unknown = sorted(set(static) - {row[0] for row in table} - set(TF_IGNORED))
    if unknown:
        raise NetworkPickleError(f"TF-era {what}: unknown kwarg {unknown[0]!r}")
    kwargs: dict[str, Any] = {}
    for tf_name, path, default in table:
        value = static.get(tf_name, default)
        if tf_name == "fmap_base":
            value *= 2  # TF counts feature maps per half resolution step
        if tf_name == "w_avg_beta" and value is None:
            value = 1  # None in TF means "do not track", i.e. a decay of 1
        node = kwargs
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return kwargs


def _tf_params(net: TFNetwork, prefix: str = "") -> dict[str, np.ndarray]:
    """All variables of a TF network and its components, named ``component/.../scope/var``."""
    params = {prefix + name: np.asarray(value) for name, value in net.state.get("variables", [])}
    for name, component in net.state.get("components", {}).items():
        params.update(_tf_params(component, f"{prefix}{name}/"))
    return params


def _from_tf(value: np.ndarray, flip: bool = False) -> np.ndarray:
    """TF layouts -> NVIDIA's: conv [kh, kw, in, out] -> [out, in, kh, kw] (flipped for TF's transposed
    convs), dense [in, out] -> [out, in]."""
    if value.ndim == 4:
        return (value[::-1, ::-1] if flip else value).transpose(3, 2, 0, 1)
    return value.T if value.ndim == 2 else value


def _tf_generator_param(name: str, p: Mapping[str, np.ndarray]) -> np.ndarray:
    if name == "mapping.w_avg":
        return p["dlatent_avg"]
    if name == "synthesis.b4.const":
        return p["synthesis/4x4/Const/const"][0]
    if m := re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", name):
        scope = "LabelEmbed" if m[1] == "embed" else f"Dense{m[2]}"
        return _from_tf(p[f"mapping/{scope}/{m[3]}"])
    if m := re.fullmatch(r"synthesis\.b(\d+)\.skip\.weight", name):
        return _from_tf(p[f"synthesis/{m[1]}x{m[1]}/Skip/weight"], flip=True)
    m = re.fullmatch(r"synthesis\.b(\d+)\.(conv0|conv1|torgb)\.(.+)", name)
    if m is None:
        raise KeyError(name)
    res, layer, field = int(m[1]), m[2], m[3]
    scope = f"synthesis/{res}x{res}/" + {"conv0": "Conv0_up", "conv1": "Conv1" if res > 4 else "Conv",
                                         "torgb": "ToRGB"}[layer]
    if field == "noise_const":
        return p[f"synthesis/noise{2 * int(np.log2(res)) - (5 if layer == 'conv0' else 4)}"][0, 0]
    if field == "affine.weight":
        return p[f"{scope}/mod_weight"].T
    if field == "affine.bias":
        return p[f"{scope}/mod_bias"] + 1
    return _from_tf(p[f"{scope}/{field}"], flip=(layer == "conv0"))


def _tf_discriminator_param(name: str, p: Mapping[str, np.ndarray]) -> np.ndarray:
    if m := re.fullmatch(r"b(\d+)\.(fromrgb|conv0|conv1|skip)\.(weight|bias)", name):
        scope = {"fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down", "skip": "Skip"}[m[2]]
        return _from_tf(p[f"{m[1]}x{m[1]}/{scope}/{m[3]}"])
    if m := re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", name):
        return _from_tf(p[f"{'LabelEmbed' if m[1] == 'embed' else 'Mapping' + m[2]}/{m[3]}"])
    if m := re.fullmatch(r"b4\.(conv|fc|out)\.(weight|bias)", name):
        return _from_tf(p[f"{ {'conv': '4x4/Conv', 'fc': '4x4/Dense0', 'out': 'Output'}[m[1]]}/{m[2]}"])
    raise KeyError(name)


def _convert_tf_network(net: Any, what: str, cls: type) -> tuple[dict, dict]:
    if not isinstance(net, TFNetwork):
        raise NetworkPickleError(f"TF-era {what} is a {type(net).__name__}, not a network")
    if net.state.get("version", 0) < 4:
        raise NetworkPickleError(f"TF-era {what}: pickle version {net.state.get('version')} is too old")
    if cls is Generator:
        table, nested, param = TF_GENERATOR_KWARGS, GENERATOR_NESTED, _tf_generator_param
    else:
        table, nested, param = TF_DISCRIMINATOR_KWARGS, DISCRIMINATOR_NESTED, _tf_discriminator_param
    kwargs = _accept(_tf_kwargs(net, table, what), cls, what, nested)
    params = _tf_params(net)

    def state_dict(template: dict) -> dict[str, np.ndarray]:
        try:
            return {name: param(name, params) for name in flatten_variables(template)}
        except KeyError as e:
            raise NetworkPickleError(f"TF-era {what}: TF variable {e.args[0]} is missing") from None

    return kwargs, _convert(cls, kwargs, state_dict, what)


def _convert_tf(nets: tuple) -> dict[str, Any]:
    G, D, Gs = nets
    _, G_vars = _convert_tf_network(G, "G", Generator)
    Gs_kwargs, Gs_vars = _convert_tf_network(Gs, "Gs", Generator)
    D_kwargs, D_vars = _convert_tf_network(D, "D", Discriminator)
    return {"G_kwargs": Gs_kwargs, "D_kwargs": D_kwargs, "G": G_vars, "G_ema": Gs_vars, "D": D_vars,
            "metadata": {"format": "tensorflow"}}


def load_network_pkl(path: str | os.PathLike) -> dict[str, Any]:
    """Reads and converts an NVIDIA network pickle.

    Returns ``{"G_kwargs", "D_kwargs", "G", "G_ema", "D", "metadata"}``: our Generator/Discriminator
    constructor kwargs (JSON-able) and variable trees ``{"params": ..., "buffers": ...}`` of NumPy arrays
    (``G``/``D``/``D_kwargs`` only when the pickle has them). Raises `NetworkPickleError` (one line).
    """
    data = read_network_pickle(path)
    try:
        if isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data):
            from stylegan_jax import legacy_tf_stylegan1  # it imports this module

            stylegan1 = legacy_tf_stylegan1.is_tf_stylegan1(data)
            out = legacy_tf_stylegan1.convert_tf_stylegan1(data) if stylegan1 else _convert_tf(data)
        elif isinstance(data, dict) and isinstance(data.get("G_ema"), PersistentObject):
            out = _convert_torch(data)
        else:
            found = f"dict with keys {sorted(map(str, data))[:6]}" if isinstance(data, dict) else type(data).__name__
            raise NetworkPickleError(f"found a {found}, not G/D/G_ema networks")
    except NetworkPickleError as e:
        raise NetworkPickleError(f"{path}: {e}; {EXPECTED}") from None
    out["metadata"]["source"] = os.fspath(path)
    return out
