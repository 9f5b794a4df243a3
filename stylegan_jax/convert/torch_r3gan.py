"""brownvc/R3GAN's network snapshot pickles -> our `stylegan_jax.models.r3gan` kwargs and variables.

R3GAN's training loop pickles a dict ``G``, ``D``, ``G_ema``, ``training_set_kwargs``, ``cur_nimg``,
``G_opt_state``, ``D_opt_state`` with plain ``pickle.dump``: each network is a ``training.networks`` wrapper
(``Model``: an ``R3GAN.Networks`` Generator/Discriminator) rebuilt by NEWOBJ of its class and a BUILD of its
``__dict__``. `PICKLE_GLOBALS` maps exactly the classes such a snapshot names to `TorchModule` stand-ins that
only record that state (nothing from the file runs); tensors, dtypes and the optimizer states need only the
allow-list's torch entries.

R3GAN records no constructor arguments, so they are read off the module tree: widths, blocks per stage,
cardinalities (the grouped conv's ``groups``), expansion factor and kernel size from the weights, bfloat16
stages from each stage's ``DataType``, ``z_dim``/``c_dim``/``img_resolution`` from G's wrapper, label
embedding widths from the embedding weights, the resampling taps from the resamplers' ``Kernel`` buffer (each
checked against ours and dropped). Parameter names are ours (`stylegan_jax.models.state_dict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import ml_dtypes
import numpy as np

from stylegan_jax.convert.common import (
    check_class,
    child,
    convert_generators,
    convert_variables,
    module_state_dict,
    parameter_names,
)
from stylegan_jax.errors import first_line
from stylegan_jax.io.network_pickle import NetworkPickleError, PersistentObject
from stylegan_jax.models.r3gan import Discriminator, Generator, interpolation_filter

NETWORKS = "R3GAN.Networks."
#: Every class an R3GAN snapshot names (R3GAN binds its CUDA-named layers whatever the device).
MODULE_CLASSES = (
    "training.networks.Generator", "training.networks.Discriminator",
    *(NETWORKS + name for name in ("Generator", "Discriminator", "GeneratorStage", "DiscriminatorStage",
                                   "ResidualBlock", "Convolution", "UpsampleLayer", "DownsampleLayer",
                                   "GenerativeBasis", "DiscriminativeBasis")),
    "R3GAN.Resamplers.InterpolativeUpsamplerCUDA", "R3GAN.Resamplers.InterpolativeDownsamplerCUDA",
    "R3GAN.FusedOperators.BiasedActivationCUDA",
    "torch.nn.modules.container.ModuleList", "torch.nn.modules.conv.Conv2d", "torch.nn.modules.linear.Linear",
)
KERNEL = "Resampler.Kernel"
#: A stage's ``DataType`` (a torch dtype, read as its NumPy stand-in) -> whether it computes in bfloat16.
STAGE_DTYPES = {np.dtype(np.float32): False, np.dtype(ml_dtypes.bfloat16): True}
#: The longest resampling kernel read (R3GAN's are 4 taps).
MAX_KERNEL = 32
#: The resampling kernel agrees with ours to float32 rounding.
KERNEL_RTOL = 1e-5


class TorchModule(PersistentObject):
    """Stand-in for a plainly pickled ``torch.nn.Module``: NEWOBJ makes it (no constructor runs), BUILD hands
    it the module's ``__dict__``, kept as ``state``; ``class_name`` is the full dotted name of the class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Never called by a well-formed snapshot (NEWOBJ makes instances without it); a pickle that calls the
        class (REDUCE) to choose its name or state is refused."""
        raise NetworkPickleError(f"a pickle calls {self.class_name}, which R3GAN's snapshots never do")

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise NetworkPickleError(f"malformed state of a pickled {self.class_name}")
        self.state = state


def _stand_in(name: str) -> type[TorchModule]:
    """A `TorchModule` subclass for the class ``name`` (empty state until a BUILD gives one)."""
    return type(name.rsplit(".", 1)[1], (TorchModule,), {"class_name": name, "state": MappingProxyType({})})


#: The allow-list entries of an R3GAN snapshot beyond the torch ones: ``"module.Class" -> stand-in class``.
PICKLE_GLOBALS: dict[str, type[TorchModule]] = {name: _stand_in(name) for name in MODULE_CLASSES}


def is_r3gan_snapshot(data: Any) -> bool:
    """Whether a pickle's tree is an R3GAN snapshot: a dict whose ``G_ema`` is R3GAN's generator wrapper."""
    return isinstance(data, dict) and isinstance(data.get("G_ema"), PICKLE_GLOBALS["training.networks.Generator"])


# ---------------------------------------------------------------------------------------------------------
# Reading the module tree.

def part(obj: PersistentObject, path: str, what: str, class_name: str | None = None) -> PersistentObject:
    """The submodule at dotted ``path`` of ``obj`` (of class ``class_name`` when given), else one line."""
    for name in path.split("."):
        found = child(obj, name)
        if not isinstance(found, PersistentObject):
            raise NetworkPickleError(f"{what} has no submodule {path}")
        obj = found
    return check_class(obj, f"{what}.{path}", class_name) if class_name else obj


def weight(obj: PersistentObject, path: str, what: str, ndim: int) -> np.ndarray:
    """The ``weight`` parameter of the layer at ``path`` (an array of rank ``ndim``), else one line."""
    value = part(obj, path, what).state.get("_parameters", {}).get("weight")
    if not (isinstance(value, np.ndarray) and value.ndim == ndim):
        raise NetworkPickleError(f"{what}.{path} has no {ndim}-d weight")
    return value


def items(obj: PersistentObject, path: str, what: str) -> list[PersistentObject]:
    """The modules of the ``torch.nn.ModuleList`` at ``path``, in order (at least one)."""
    modules = part(obj, path, what, "torch.nn.modules.container.ModuleList").state.get("_modules", {})
    if not modules or list(modules) != [str(i) for i in range(len(modules))] or not all(
            isinstance(m, PersistentObject) for m in modules.values()):
        raise NetworkPickleError(f"{what}.{path} is not a list of modules")
    return list(modules.values())


def is_reduced(stage: PersistentObject, what: str) -> bool:
    """Whether a stage computes in bfloat16 (its ``DataType``); another type cannot be converted."""
    dtype = stage.state.get("DataType")
    if not isinstance(dtype, np.dtype) or dtype not in STAGE_DTYPES:
        raise NetworkPickleError(f"{what}: unsupported stage DataType {dtype!r} (expected float32 or bfloat16)")
    return STAGE_DTYPES[dtype]


def block_shape(block: PersistentObject, what: str) -> tuple[int, float, int, int]:
    """A residual block's (width, expansion factor, cardinality, kernel size), from its weights."""
    check_class(block, what, NETWORKS + "ResidualBlock")
    first = weight(block, "LinearLayer1.Layer", what, 4)
    grouped = weight(block, "LinearLayer2.Layer", what, 4)
    groups = part(block, "LinearLayer2.Layer", what).state.get("groups")
    channels, expanded = first.shape[1], first.shape[0]
    if grouped.shape[0] != expanded or groups is None or grouped.shape[1] * groups != expanded:
        raise NetworkPickleError(f"{what}: grouped conv of shape {grouped.shape} with {groups} groups does not fit "
                                 f"{expanded} expanded channels")
    return channels, expanded / channels, int(groups), grouped.shape[-1]


def single(values: Sequence[Any], what: str, name: str) -> Any:
    """The one value all ``values`` share; networks that vary ``name`` have no counterpart here."""
    if len(set(values)) != 1:
        raise NetworkPickleError(f"{what}: {name} varies within the network ({sorted(set(values))}), which our "
                                 "R3GAN does not support" if values else f"{what} has no residual blocks")
    return values[0]


def resampling_taps(kernel: Any, what: str) -> list[int]:
    """The integer taps whose `interpolation_filter` is a resampler's ``Kernel`` buffer (R3GAN's taps
    convolved with [1, 1], outer product, sum 1), else one line."""
    if not (isinstance(kernel, np.ndarray) and kernel.ndim == 2 and kernel.shape[0] <= MAX_KERNEL):
        raise NetworkPickleError(f"{what}: resampling kernel is not a 2-d array of at most {MAX_KERNEL} taps")
    kernel = np.asarray(kernel, np.float64)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] < 2 or kernel[0, 0] <= 0:
        raise NetworkPickleError(f"{what}: resampling kernel of shape {kernel.shape} is not R3GAN's")
    profile, taps = kernel.sum(axis=0), []
    for value in profile[:-1]:
        taps.append(value - (taps[-1] if taps else 0))
    taps = [round(t / taps[0]) for t in taps]
    if not np.allclose(interpolation_filter(taps), kernel, rtol=KERNEL_RTOL, atol=0):
        raise NetworkPickleError(f"{what}: resampling kernel is not an integer-tap interpolation filter")
    return taps


def shared_config(blocks: list[tuple[int, float, int, int]], kernels: dict[str, Any], reduced: list[bool],
                  what: str) -> dict[str, Any]:
    """The kwargs every stage shares (expansion, kernel size, resampling taps, bfloat16 stages)."""
    taps = [tuple(resampling_taps(kernel, f"{what}.{name}")) for name, kernel in kernels.items()]
    return dict(expansion_factor=float(single([b[1] for b in blocks], what, "expansion factor")),
                kernel_size=int(single([b[3] for b in blocks], what, "kernel size")),
                resampling_filter=list(single(taps, what, "resampling filter") if taps else (1, 2, 1)),
                fp16_stages=[i for i, r in enumerate(reduced) if r])


def stage_blocks(layers: list[PersistentObject], what: str, start: int) -> tuple[list[tuple[int, float, int, int]],
                                                                               int]:
    """The shapes of a stage's residual blocks (``layers``, numbered from ``start`` in ``what``) and its
    cardinality (1 where it has no block)."""
    blocks = [block_shape(layer, f"{what}.{i}") for i, layer in enumerate(layers, start)]
    return blocks, single([b[2] for b in blocks], what, "cardinality") if blocks else 1


def kernels_of(model: PersistentObject) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A model's state dict without the resamplers' ``Kernel`` buffers, and those buffers by name."""
    state = module_state_dict(model)
    kernels = {name: state.pop(name) for name in [n for n in state if n.endswith(KERNEL)]}
    return state, kernels


# ---------------------------------------------------------------------------------------------------------
# G and D.

def generator_kwargs(wrapper: Any, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Our Generator's kwargs and R3GAN's state dict (names as ours) of a pickled ``training.networks``
    Generator."""
    model = part(check_class(wrapper, what, "training.networks.Generator"), "Model", what, NETWORKS + "Generator")
    z_dim, c_dim, resolution = (wrapper.state.get(k) for k in ("z_dim", "c_dim", "img_resolution"))
    if not all(isinstance(v, int) for v in (z_dim, c_dim, resolution)):
        raise NetworkPickleError(f"{what} lacks integer z_dim, c_dim and img_resolution")
    widths, cardinalities, counts, blocks, reduced = [], [], [], [], []
    for i, stage in enumerate(items(model, "MainLayers", what)):
        name = f"{what}.MainLayers.{i}"
        layers = items(check_class(stage, name, NETWORKS + "GeneratorStage"), "Layers", name)
        if i == 0:
            widths.append(weight(layers[0], "LinearLayer", f"{name}.Layers.0", 2).shape[0])
            check_class(layers[0], f"{name}.Layers.0", NETWORKS + "GenerativeBasis")
        else:
            check_class(layers[0], f"{name}.Layers.0", NETWORKS + "UpsampleLayer")
            has_conv = child(layers[0], "LinearLayer") is not None
            widths.append(weight(layers[0], "LinearLayer.Layer", name, 4).shape[0] if has_conv else widths[-1])
        stage_shapes, cardinality = stage_blocks(layers[1:], f"{name}.Layers", 1)
        blocks += stage_shapes
        cardinalities.append(cardinality)
        counts.append(len(layers) - 1)
        reduced.append(is_reduced(stage, name))
    embedding = weight(model, "EmbeddingLayer", what, 2).shape[0] if child(model, "EmbeddingLayer") else 0
    state, kernels = kernels_of(model)
    kwargs = dict(z_dim=z_dim, c_dim=c_dim, img_resolution=resolution,
                  img_channels=weight(model, "AggregationLayer.Layer", what, 4).shape[0], width_per_stage=widths,
                  cardinality_per_stage=cardinalities, blocks_per_stage=counts, condition_embedding_dim=embedding,
                  **shared_config(blocks, kernels, reduced, what))
    return kwargs, state


def discriminator_kwargs(wrapper: Any, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Our Discriminator's kwargs and R3GAN's state dict of a pickled ``training.networks`` Discriminator
    (which records no c_dim or resolution: they come from the embedding and the number of stages)."""
    model = part(check_class(wrapper, what, "training.networks.Discriminator"), "Model", what,
                 NETWORKS + "Discriminator")
    extraction = weight(model, "ExtractionLayer.Layer", what, 4)
    widths, cardinalities, counts, blocks, reduced = [extraction.shape[0]], [], [], [], []
    stages = items(model, "MainLayers", what)
    for i, stage in enumerate(stages):
        name = f"{what}.MainLayers.{i}"
        layers = items(check_class(stage, name, NETWORKS + "DiscriminatorStage"), "Layers", name)
        last, transition = i == len(stages) - 1, layers[-1]
        check_class(transition, f"{name}.Layers.{len(layers) - 1}",
                    NETWORKS + ("DiscriminativeBasis" if last else "DownsampleLayer"))
        if last:
            outputs = weight(transition, "LinearLayer", name, 2).shape[0]
        else:
            has_conv = child(transition, "LinearLayer") is not None
            widths.append(weight(transition, "LinearLayer.Layer", name, 4).shape[0] if has_conv else widths[-1])
        stage_shapes, cardinality = stage_blocks(layers[:-1], f"{name}.Layers", 0)
        blocks += stage_shapes
        cardinalities.append(cardinality)
        counts.append(len(layers) - 1)
        reduced.append(is_reduced(stage, name))
    embedding = weight(model, "EmbeddingLayer", what, 2) if child(model, "EmbeddingLayer") else np.zeros((0, 0))
    if outputs != (embedding.shape[0] if embedding.size else 1):
        raise NetworkPickleError(f"{what}: its basis gives {outputs} features, its label embedding "
                                 f"{embedding.shape[0]}")
    state, kernels = kernels_of(model)
    kwargs = dict(c_dim=embedding.shape[1], img_resolution=4 * 2 ** (len(stages) - 1),
                  img_channels=extraction.shape[1], width_per_stage=widths,
                  cardinality_per_stage=cardinalities, blocks_per_stage=counts,
                  condition_embedding_dim=embedding.shape[0], **shared_config(blocks, kernels, reduced, what))
    return kwargs, state


def convert_r3gan(data: dict) -> dict[str, Any]:
    """An R3GAN snapshot dict -> ``{"G_kwargs", "D_kwargs", "G", "G_ema", "D", "metadata"}`` (see
    `stylegan_jax.convert.load_network_pkl`) and, when the snapshot holds G, D, ``cur_nimg`` and optimizer states
    that fit them, ``progress`` (`training_progress`: what R3GAN's ``--resume`` continues); ``metadata`` names
    the model ``r3gan``. ``training_set_kwargs`` is not used. A tree of the right classes but malformed state is
    one line too."""
    try:
        return _convert(data)
    except NetworkPickleError:
        raise
    except Exception as e:  # noqa: BLE001 - hostile or corrupt input (a cycle, zero widths...): one line
        raise NetworkPickleError(f"malformed R3GAN snapshot ({type(e).__name__}: {first_line(e)})") from None


def _convert(data: dict) -> dict[str, Any]:
    out: dict[str, Any] = {"metadata": {"format": "r3gan", "model": "r3gan"}}
    read_off: dict[str, tuple[dict, dict]] = {}  # network -> (kwargs, R3GAN state dict), read once

    def read(wrapper: Any, name: str) -> tuple[dict, Any]:
        kwargs, state = read_off[name] = generator_kwargs(wrapper, name)
        return kwargs, lambda _: state

    convert_generators(data, out, Generator, read)
    if data.get("D") is not None:
        kwargs, state = read_off["D"] = discriminator_kwargs(data["D"], "D")
        if kwargs["c_dim"] != out["G_kwargs"]["c_dim"]:
            raise NetworkPickleError(f"D takes {kwargs['c_dim']} labels, G {out['G_kwargs']['c_dim']}")
        out["D_kwargs"] = kwargs
        out["D"] = convert_variables(Discriminator, kwargs, lambda _: state, "D")
    progress = training_progress(data, read_off)
    if progress is not None:
        out["progress"] = progress
    return out


def training_progress(data: dict, read_off: dict[str, tuple[dict, dict]]) -> dict[str, Any] | None:
    """What R3GAN's ``--resume`` continues from a snapshot: ``{"cur_nimg": int, "G": moments, "D": moments}``,
    each network's Adam state as `adam_moments` reads it (``read_off``: G's and D's kwargs and state dicts);
    None when the snapshot lacks any of it or its optimizer states do not fit its networks (the networks load
    all the same)."""
    cur_nimg = data.get("cur_nimg")
    if not (isinstance(cur_nimg, int | np.integer) and cur_nimg >= 0 and read_off.keys() >= {"G", "D"}):
        return None
    progress: dict[str, Any] = {"cur_nimg": int(cur_nimg)}
    for name, cls in (("G", Generator), ("D", Discriminator)):
        kwargs, state = read_off[name]
        progress[name] = adam_moments(data[name], data.get(f"{name}_opt_state"), cls, kwargs, state, name)
        if progress[name] is None:
            return None
    return progress


def adam_moments(wrapper: PersistentObject, opt_state: Any, cls: type, kwargs: dict, state: dict[str, np.ndarray],
                 what: str) -> dict[str, Any] | None:
    """A pickled ``torch.optim.Adam`` state dict over ``wrapper.parameters()`` as ours: ``{"count": its step,
    "mu": exp_avg, "nu": exp_avg_sq}``, the moments as our parameter trees (``cls(**kwargs)``'s ``params``,
    converted as the weights, whose R3GAN state dict is ``state``); None when it does not fit the parameters
    (their count, names or shapes) or its steps differ."""
    try:
        names = parameter_names(wrapper)
        entries = [opt_state["state"][i] for group in opt_state["param_groups"] for i in group["params"]]
        steps = {float(entry["step"]) for entry in entries}
        if len(entries) != len(names) or len(steps) != 1 or not all(n.startswith("Model.") for n in names):
            return None
        moments: dict[str, Any] = {"count": int(steps.pop())}
        for ours, torch_name in (("mu", "exp_avg"), ("nu", "exp_avg_sq")):
            values = dict(state) | {n.removeprefix("Model."): e[torch_name]
                                    for n, e in zip(names, entries, strict=True)}
            moments[ours] = convert_variables(cls, kwargs, lambda _, v=values: v, what)["params"]
        return moments
    except (KeyError, IndexError, TypeError, ValueError, NetworkPickleError):
        return None
