"""NVIDIA's TF-era StyleGAN2 / StyleGAN2-ADA network pickles (a tuple ``(G, D, Gs)`` of ``dnnlib.tflib.Network``
states, `TFNetwork` stand-ins from `stylegan_jax.io.network_pickle`) -> our `stylegan_jax.models.stylegan2`
kwargs and variables, converted as NVIDIA's ``legacy.py`` converts them: TF static kwargs renamed (with
NVIDIA's defaults), TF variables renamed and re-laid-out to NVIDIA's PyTorch names and shapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from stylegan_jax.convert.common import (
    DISCRIMINATOR_NESTED,
    GENERATOR_NESTED,
    accept_kwargs,
    convert_variables,
    from_tf,
    plain,
    tf_params,
)
from stylegan_jax.io.network_pickle import NetworkPickleError, TFNetwork
from stylegan_jax.models.state_dict import flatten_variables
from stylegan_jax.models.stylegan2 import Discriminator, Generator

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
#: TF kwargs that do not shape the network (stylegan3's legacy.py ignores them too: ``conditioning`` and
#: ``fused_modconv``, which stylegan2-ada-pytorch's refuses, are from TF StyleGAN2's later versions and forks).
TF_IGNORED = ("truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure", "conditioning",
              "fused_modconv")


def _tf_kwargs(net: TFNetwork, table, what: str) -> dict[str, Any]:
    static = plain(net.state.get("static_kwargs", {}))
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


def _tf_generator_param(name: str, p: Mapping[str, np.ndarray]) -> np.ndarray:
    if name == "mapping.w_avg":
        return p["dlatent_avg"]
    if name == "synthesis.b4.const":
        return p["synthesis/4x4/Const/const"][0]
    if m := re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", name):
        scope = "LabelEmbed" if m[1] == "embed" else f"Dense{m[2]}"
        return from_tf(p[f"mapping/{scope}/{m[3]}"])
    if m := re.fullmatch(r"synthesis\.b(\d+)\.skip\.weight", name):
        return from_tf(p[f"synthesis/{m[1]}x{m[1]}/Skip/weight"], flip=True)
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
    return from_tf(p[f"{scope}/{field}"], flip=(layer == "conv0"))


def _tf_discriminator_param(name: str, p: Mapping[str, np.ndarray]) -> np.ndarray:
    if m := re.fullmatch(r"b(\d+)\.(fromrgb|conv0|conv1|skip)\.(weight|bias)", name):
        scope = {"fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down", "skip": "Skip"}[m[2]]
        return from_tf(p[f"{m[1]}x{m[1]}/{scope}/{m[3]}"])
    if m := re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", name):
        return from_tf(p[f"{'LabelEmbed' if m[1] == 'embed' else 'Mapping' + m[2]}/{m[3]}"])
    if m := re.fullmatch(r"b4\.(conv|fc|out)\.(weight|bias)", name):
        return from_tf(p[f"{ {'conv': '4x4/Conv', 'fc': '4x4/Dense0', 'out': 'Output'}[m[1]]}/{m[2]}"])
    raise KeyError(name)


def convert_network(net: Any, what: str, cls: type) -> tuple[dict, dict]:
    """One TF network (``G``/``Gs`` with ``cls`` our Generator, ``D`` with our Discriminator) -> (our kwargs,
    variables)."""
    if not isinstance(net, TFNetwork):
        raise NetworkPickleError(f"TF-era {what} is a {type(net).__name__}, not a network")
    if net.state.get("version", 0) < 4:
        raise NetworkPickleError(f"TF-era {what}: pickle version {net.state.get('version')} is too old")
    if cls is Generator:
        table, nested, param = TF_GENERATOR_KWARGS, GENERATOR_NESTED, _tf_generator_param
    else:
        table, nested, param = TF_DISCRIMINATOR_KWARGS, DISCRIMINATOR_NESTED, _tf_discriminator_param
    kwargs = accept_kwargs(_tf_kwargs(net, table, what), cls, what, nested)
    params = tf_params(net)

    def state_dict(template: dict) -> dict[str, np.ndarray]:
        try:
            return {name: param(name, params) for name in flatten_variables(template)}
        except KeyError as e:
            raise NetworkPickleError(f"TF-era {what}: TF variable {e.args[0]} is missing") from None

    return kwargs, convert_variables(cls, kwargs, state_dict, what)


def convert_tf_stylegan2(nets: tuple) -> dict[str, Any]:
    """``(G, D, Gs)`` -> ``{"G_kwargs", "D_kwargs", "G", "G_ema", "D", "metadata"}`` as
    `stylegan_jax.convert.load_network_pkl` returns (``metadata["format"] == "tensorflow"``)."""
    G, D, Gs = nets
    _, G_vars = convert_network(G, "G", Generator)
    Gs_kwargs, Gs_vars = convert_network(Gs, "Gs", Generator)
    D_kwargs, D_vars = convert_network(D, "D", Discriminator)
    return {"G_kwargs": Gs_kwargs, "D_kwargs": D_kwargs, "G": G_vars, "G_ema": Gs_vars, "D": D_vars,
            "metadata": {"format": "tensorflow"}}
