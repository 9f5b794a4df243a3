"""NVIDIA's TensorFlow StyleGAN1 network pickles (NVlabs/stylegan: a tuple ``(G, D, Gs)`` of
``dnnlib.tflib.Network`` states built by ``G_style`` and ``D_basic``, `TFNetwork` stand-ins from
`stylegan_jax.io.network_pickle`) -> our `stylegan_jax.models.stylegan1` kwargs and variables.
`stylegan_jax.convert.load_network_pkl` dispatches here when G was built by ``G_style``.

The TF variables are renamed and re-laid-out: conv kernels [kh, kw, in, out] -> [out, in, kh, kw], dense
[in, out] -> [out, in], the constant [1, C, 4, 4] -> [C, 4, 4], noise inputs [1, 1, r, r] -> [r, r]. NVIDIA's
fused up-convs (``fused_scale``: 'auto' from 128 px, or True) are transposed convolutions of a 4x4 kernel made
from the 3x3 one; they equal nearest-upsampling + the 3x3 kernel *flipped*, so those kernels are flipped
here (the fused down-convs equal conv + box-downsampling with the kernel as is).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.convert.common import from_tf, plain, tf_params
from stylegan_jax.io.network_pickle import NetworkPickleError, TFNetwork
from stylegan_jax.models import stylegan1
from stylegan_jax.models.state_dict import flatten_variables, state_dict_to_variables
from stylegan_jax.nn.progressive import grown_at_lod

#: build_func_name of the networks this module converts.
GENERATOR_FUNC, DISCRIMINATOR_FUNC = "G_style", "D_basic"

# (TF static kwarg, our kwarg, NVIDIA's default)
G_KWARGS = [
    ("latent_size", "z_dim", 512), ("label_size", "c_dim", 0), ("dlatent_size", "w_dim", 512),
    ("resolution", "img_resolution", 1024), ("num_channels", "img_channels", 3),
    ("mapping_layers", "mapping_layers", 8), ("mapping_fmaps", "mapping_fmaps", 512),
    ("mapping_lrmul", "mapping_lrmul", 0.01), ("normalize_latents", "normalize_latents", True),
    ("dlatent_avg_beta", "w_avg_beta", 0.995), ("fmap_base", "fmap_base", 8192), ("fmap_decay", "fmap_decay", 1.0),
    ("fmap_max", "fmap_max", 512), ("use_styles", "use_styles", True), ("const_input_layer", "const_input_layer", True),
    ("use_noise", "use_noise", True), ("use_pixel_norm", "use_pixel_norm", False),
    ("use_instance_norm", "use_instance_norm", True), ("blur_filter", "blur_filter", [1, 2, 1]),
    ("nonlinearity", "nonlinearity", "lrelu"), ("use_wscale", "use_wscale", True),
]
D_KWARGS = [
    ("label_size", "c_dim", 0), ("resolution", "img_resolution", 32), ("num_channels", "img_channels", 1),
    ("fmap_base", "fmap_base", 8192), ("fmap_decay", "fmap_decay", 1.0), ("fmap_max", "fmap_max", 512),
    ("mbstd_group_size", "mbstd_group_size", 4), ("mbstd_num_features", "mbstd_num_features", 1),
    ("blur_filter", "blur_filter", [1, 2, 1]), ("nonlinearity", "nonlinearity", "lrelu"),
    ("use_wscale", "use_wscale", True),
]
#: Static kwargs that do not shape the converted network (``fused_scale`` only changes the weight layout).
IGNORED = ("truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val", "style_mixing_prob",
           "randomize_noise", "structure", "dtype", "fused_scale", "mapping_func", "synthesis_func",
           "dlatent_broadcast")


def _kwargs(net: TFNetwork, table, what: str) -> dict[str, Any]:
    static = plain(net.state.get("static_kwargs", {}))
    names = {row[0] for row in table}
    if what != "D":
        names.add("mapping_nonlinearity")
    unknown = sorted(set(static) - names - set(IGNORED))
    if unknown:
        raise NetworkPickleError(f"TF StyleGAN1 {what}: unsupported kwarg {unknown[0]}={static[unknown[0]]!r}")
    if static.get("dtype", "float32") not in ("float32", "float16"):
        raise NetworkPickleError(f"TF StyleGAN1 {what}: unsupported dtype {static['dtype']!r}")
    kwargs = {ours: static.get(tf_name, default) for tf_name, ours, default in table}
    # G_mapping's own default is lrelu, whatever G_synthesis's nonlinearity (networks_stylegan.py)
    if what != "D" and static.get("mapping_nonlinearity", "lrelu") != kwargs.get("nonlinearity"):
        raise NetworkPickleError(f"TF StyleGAN1 {what}: mapping and synthesis nonlinearities differ")
    if kwargs.get("w_avg_beta", 0) is None:
        kwargs["w_avg_beta"] = 1.0  # None in TF: w_avg is not tracked
    if kwargs["blur_filter"] is not None:
        kwargs["blur_filter"] = tuple(kwargs["blur_filter"]) or None
    return kwargs


def fused_up(fused_scale: Any, resolution: int) -> bool:
    """Whether NVIDIA built the up-conv into resolution ``resolution`` as a fused transposed conv."""
    return resolution >= 128 if fused_scale == "auto" else bool(fused_scale)


def _generator_param(name: str, p: Mapping[str, np.ndarray], kwargs: Mapping[str, Any], fused_scale: Any) -> np.ndarray:
    log2_img = int(np.log2(kwargs["img_resolution"]))
    if name == "mapping.w_avg":
        return p["dlatent_avg"]
    if name == "mapping.embed":
        return p["mapping/LabelConcat/weight"].T
    if m := re.fullmatch(r"mapping\.fc(\d+)\.(weight|bias)", name):
        return from_tf(p[f"mapping/Dense{m[1]}/{m[2]}"])
    if name == "synthesis.b4_const":
        return p["synthesis/4x4/Const/const"][0]
    if name == "synthesis.b4_dense.weight":
        return from_tf(p["synthesis/4x4/Dense/weight"])
    if m := re.fullmatch(r"synthesis\.torgb(\d+)\.(weight|bias)", name):
        return from_tf(p[f"synthesis/ToRGB_lod{log2_img - int(np.log2(int(m[1])))}/{m[2]}"])
    m = re.fullmatch(r"synthesis\.b(\d+)_(input|conv|conv0|conv1)\.(.+)", name)
    if m is None:
        raise KeyError(name)
    res, layer, field = int(m[1]), m[2], m[3]
    log2 = int(np.log2(res))
    scope, index = {
        "input": ("4x4/Const" if kwargs["const_input_layer"] else "4x4/Dense", 0), "conv": ("4x4/Conv", 1),
        "conv0": (f"{res}x{res}/Conv0_up", 2 * log2 - 4), "conv1": (f"{res}x{res}/Conv1", 2 * log2 - 3),
    }[layer]
    if field == "noise_const":
        return p[f"synthesis/noise{index}"][0, 0]
    tf_field = {"noise_strength": "Noise/weight", "style.weight": "StyleMod/weight",
                "style.bias": "StyleMod/bias"}.get(field, field)
    flip = layer == "conv0" and field == "weight" and fused_up(fused_scale, res)
    return from_tf(p[f"synthesis/{scope}/{tf_field}"], flip=flip)


D_SCOPES = {"conv0": "Conv0", "conv1": "Conv1_down", "conv": "Conv", "dense0": "Dense0", "dense1": "Dense1"}


def _discriminator_param(name: str, p: Mapping[str, np.ndarray], kwargs: Mapping[str, Any], _: Any) -> np.ndarray:
    log2_img = int(np.log2(kwargs["img_resolution"]))
    if m := re.fullmatch(r"fromrgb(\d+)\.(weight|bias)", name):
        return from_tf(p[f"FromRGB_lod{log2_img - int(np.log2(int(m[1])))}/{m[2]}"])
    if m := re.fullmatch(r"b(\d+)_(conv0|conv1|conv|dense0|dense1)\.(weight|bias)", name):
        return from_tf(p[f"{m[1]}x{m[1]}/{D_SCOPES[m[2]]}/{m[3]}"])
    raise KeyError(name)


def _template(module: stylegan1.Generator | stylegan1.Discriminator) -> dict:
    """The variable shapes ``module`` creates at full resolution (nothing is computed)."""
    c = jnp.zeros((1, module.c_dim))
    if isinstance(module, stylegan1.Generator):
        return jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, module.z_dim)), c,
                                                  noise_mode="const"))
    res = module.img_resolution
    return jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, res, res, module.img_channels)), c))


def convert_network(net: Any, what: str) -> tuple[dict, dict]:
    """One TF network (``G``/``Gs`` built by ``G_style``, ``D`` by ``D_basic``) -> (our kwargs, variables)."""
    expected = DISCRIMINATOR_FUNC if what == "D" else GENERATOR_FUNC
    if not isinstance(net, TFNetwork):
        raise NetworkPickleError(f"TF StyleGAN1 {what} is a {type(net).__name__}, not a network")
    if net.state.get("build_func_name") != expected:
        raise NetworkPickleError(f"TF StyleGAN1 {what} was built by {net.state.get('build_func_name')!r}, "
                                 f"expected {expected!r}")
    is_d = what == "D"
    cls, table = (stylegan1.Discriminator, D_KWARGS) if is_d else (stylegan1.Generator, G_KWARGS)
    param: Callable = _discriminator_param if is_d else _generator_param
    kwargs = _kwargs(net, table, what)
    fused_scale = plain(net.state.get("static_kwargs", {})).get("fused_scale", "auto")
    params = tf_params(net)
    try:
        template = _template(cls(**kwargs))
        state_dict = {name: param(name, params, kwargs, fused_scale) for name in flatten_variables(template)}
        return kwargs, state_dict_to_variables(state_dict, template, what)
    except KeyError as e:
        raise NetworkPickleError(f"TF StyleGAN1 {what}: TF variable for {e.args[0]} is missing") from None
    except (ValueError, TypeError) as e:
        raise NetworkPickleError(f"TF StyleGAN1 {what}: {str(e).splitlines()[0]}") from None


def is_tf_stylegan1(nets: tuple) -> bool:
    """Whether a TF-era ``(G, D, Gs)`` tuple holds StyleGAN1 networks (G built by ``G_style``)."""
    return isinstance(nets[0], TFNetwork) and nets[0].state.get("build_func_name") == GENERATOR_FUNC


def convert_tf_stylegan1(nets: tuple) -> dict[str, Any]:
    """``(G, D, Gs)`` -> ``{"G_kwargs", "D_kwargs", "G", "G_ema", "D", "metadata"}`` as
    `stylegan_jax.convert.load_network_pkl` returns, for `stylegan_jax.models.stylegan1`
    (``metadata["model"] == "stylegan1"``); a snapshot NVIDIA's loop wrote while growing (Gs's ``lod`` > 0)
    generates at that level of detail (`stylegan_jax.nn.progressive.grown_at_lod`)."""
    G, D, Gs = nets
    _, G_vars = convert_network(G, "G")
    G_kwargs, Gs_vars = convert_network(Gs, "Gs")
    D_kwargs, D_vars = convert_network(D, "D")
    lod = np.asarray(tf_params(Gs).get("synthesis/lod", 0.0))  # a snapshot taken while growing: its G's lod
    try:
        G_kwargs.update(grown_at_lod(float(lod), G_kwargs["img_resolution"]))
    except (TypeError, ValueError) as e:
        raise NetworkPickleError(f"TF StyleGAN1 Gs: synthesis/lod {lod}: {e}") from None
    return {"G_kwargs": G_kwargs, "D_kwargs": D_kwargs, "G": G_vars, "G_ema": Gs_vars, "D": D_vars,
            "metadata": {"format": "tensorflow-stylegan1", "model": "stylegan1"}}
