"""NVIDIA's PyTorch StyleGAN2 network pickles -> our `stylegan_jax.models.stylegan2` kwargs and variables.

Readable: snapshots of NVlabs/stylegan2-ada-pytorch and of NVlabs/stylegan3's StyleGAN2
(``training/networks_stylegan2.py``), a dict with ``G``, ``D``, ``G_ema`` (and ``augment_pipe``,
``training_set_kwargs``, ignored) of `PersistentObject` stand-ins (`stylegan_jax.io.network_pickle`).

Constructor kwargs come from ``_init_kwargs`` (only the arguments that were passed). The defaults that differ
between the repositories (`REPOSITORY_DEFAULTS`) fill in what a pickle does not record, by the repository that
wrote it (`repository`); ``w_avg_beta`` is first read from the value NVIDIA's MappingNetwork recorded.
"""

from __future__ import annotations

from typing import Any

from stylegan_jax.convert.common import (
    DISCRIMINATOR_NESTED,
    GENERATOR_NESTED,
    accept_kwargs,
    check_class,
    child,
    convert_generators,
    convert_variables,
    init_kwargs,
    module_state_dict,
    plain,
)
from stylegan_jax.io.network_pickle import NetworkPickleError, PersistentObject
from stylegan_jax.models.stylegan2 import Discriminator, Generator

GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
#: NVIDIA's defaults where the repositories differ, for the arguments a pickle does not record: stylegan3's
#: ``networks_stylegan2.py`` runs the 4 highest resolutions of G's synthesis and of D in float16 with clamp 256
#: (its train.py passes neither unless ``--fp32``), and tracks ``w_avg`` with beta 0.998.
REPOSITORY_DEFAULTS = {
    "stylegan2-ada-pytorch": {"w_avg_beta": 0.995, "num_fp16_res": 0, "conv_clamp": None},
    "stylegan3": {"w_avg_beta": 0.998, "num_fp16_res": 4, "conv_clamp": 256},
}
#: The `REPOSITORY_DEFAULTS` that G's synthesis network and D take.
PRECISION_ARGS = ("num_fp16_res", "conv_clamp")


def repository(obj: PersistentObject) -> str:
    """Which code wrote a pickled Generator: stylegan3's StyleGAN2 synthesis blocks record
    ``fused_modconv_default``, stylegan2-ada-pytorch's do not."""
    synthesis = child(obj, "synthesis")
    first = child(synthesis, "b4") if isinstance(synthesis, PersistentObject) else None
    recorded = isinstance(first, PersistentObject) and "fused_modconv_default" in first.state
    return "stylegan3" if recorded else "stylegan2-ada-pytorch"


def generator_kwargs(obj: Any, what: str = "G") -> dict[str, Any]:
    """Our Generator's kwargs from a pickled NVIDIA Generator (StyleGAN2 only)."""
    obj = check_class(obj, what, "Generator")
    synthesis = child(obj, "synthesis")
    blocks = synthesis.state.get("_modules", {}) if isinstance(synthesis, PersistentObject) else {}
    if "b4" not in blocks:
        raise NetworkPickleError(f"{what}: unknown generator architecture (synthesis has {sorted(blocks)[:4]})")
    kwargs = init_kwargs(obj, Generator)
    synthesis_kwargs = {**(kwargs.pop("synthesis_kwargs", None) or {}),
                        **{k: kwargs.pop(k) for k in list(kwargs) if k not in GENERATOR_ARGS}}
    mapping_kwargs = dict(kwargs.pop("mapping_kwargs", None) or {})
    mapping = child(obj, "mapping")
    recorded = mapping.state if isinstance(mapping, PersistentObject) else {}
    defaults = REPOSITORY_DEFAULTS[repository(obj)]
    mapping_kwargs.setdefault("w_avg_beta", plain(recorded.get("w_avg_beta", defaults["w_avg_beta"])))
    synthesis_kwargs = {**{k: defaults[k] for k in PRECISION_ARGS}, **synthesis_kwargs}
    kwargs.update(mapping_kwargs=mapping_kwargs, synthesis_kwargs=synthesis_kwargs)
    return accept_kwargs(kwargs, Generator, what, GENERATOR_NESTED)


def discriminator_kwargs(obj: Any, repo: str, what: str = "D") -> dict[str, Any]:
    """Our Discriminator's kwargs from a pickled NVIDIA Discriminator written by ``repo`` (a
    `REPOSITORY_DEFAULTS` key)."""
    obj = check_class(obj, what, "Discriminator")
    epilogue = child(obj, "b4")
    if not (isinstance(epilogue, PersistentObject) and epilogue.class_name == "DiscriminatorEpilogue"):
        raise NetworkPickleError(f"{what}: unknown discriminator architecture")
    kwargs = {**{k: REPOSITORY_DEFAULTS[repo][k] for k in PRECISION_ARGS}, **init_kwargs(obj, Discriminator)}
    return accept_kwargs(kwargs, Discriminator, what, DISCRIMINATOR_NESTED)


def is_torch_pickle(data: Any) -> bool:
    """Whether a pickle's tree is a PyTorch-era snapshot: a dict whose ``G_ema`` is a pickled module."""
    return isinstance(data, dict) and isinstance(data.get("G_ema"), PersistentObject)


def convert_torch(data: dict) -> dict[str, Any]:
    """A snapshot dict -> ``{"G_kwargs", "D_kwargs", "G", "G_ema", "D", "metadata"}`` as
    `stylegan_jax.convert.load_network_pkl` returns (``metadata["format"]`` the repository that wrote it);
    ``G``, ``D``, ``D_kwargs`` only when the snapshot has them."""
    out: dict[str, Any] = {"metadata": {"format": repository(check_class(data["G_ema"], "G_ema", "Generator"))}}
    convert_generators(data, out, Generator,
                       lambda obj, name: (generator_kwargs(obj, name), lambda _: module_state_dict(obj)))
    if data.get("D") is not None:
        out["D_kwargs"] = discriminator_kwargs(data["D"], out["metadata"]["format"])
        out["D"] = convert_variables(Discriminator, out["D_kwargs"], lambda _: module_state_dict(data["D"]), "D")
    return out
