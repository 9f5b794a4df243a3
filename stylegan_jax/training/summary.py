"""``train --dry-run``: the fully resolved config of an experiment and its networks' parameter counts,
without the dataset, without compiling a training step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from stylegan_jax import image_size
from stylegan_jax.data import read_dataset_info, resolve_dataset
from stylegan_jax.data.errors import DatasetError
from stylegan_jax.errors import ConfigError
from stylegan_jax.models import get_family
from stylegan_jax.training.config import to_json
from stylegan_jax.training.loop import check_parameter_shapes, check_run, label_count, run_config


def label_dim(cfg: ml_collections.ConfigDict) -> int:
    """The run's label dimension: 0 unconditional; else ``cfg.c_dim`` when the preset states it, or the
    dataset's (`loop.label_count`; an error naming ``--config.c_dim`` when neither is known)."""
    if not cfg.conditional:
        return 0
    if cfg.c_dim:
        return cfg.c_dim
    try:
        path = resolve_dataset(cfg.dataset, data_dir=cfg.data_dir or None, resolution=cfg.resolution)
    except DatasetError as e:
        raise ConfigError(f"--config.conditional=True: the class count comes from the dataset ({e}) or "
                         "--config.c_dim") from None
    return label_count(cfg, read_dataset_info(path), path)


def parameter_counts(cfg: ml_collections.ConfigDict, c_dim: int) -> tuple[int, int]:
    """(G's, D's) trainable parameter counts (the ``params`` collection; buffers excluded, as NVIDIA's
    summary counts them), from abstract shapes: nothing is computed. A zero width is a `ConfigError`, as in a
    run (`check_parameter_shapes`)."""
    G, D = get_family(cfg.model).build(cfg, c_dim)
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    z, c = jax.ShapeDtypeStruct((1, G.z_dim), jnp.float32), jax.ShapeDtypeStruct((1, c_dim), jnp.float32)
    img = jax.ShapeDtypeStruct((1, *image_size.parse(cfg.resolution), cfg.img_channels), jnp.float32)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero width: the check below names it
        g_vars = jax.eval_shape(lambda k, z, c: G.init(k, z, c, noise_mode="const"), key, z, c)
        d_vars = jax.eval_shape(lambda k, x, c: D.init(k, x, c), key, img, c)
    check_parameter_shapes(g_vars["params"], d_vars["params"])
    count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))  # noqa: E731
    return count(g_vars["params"]), count(d_vars["params"])


def describe(cfg: ml_collections.ConfigDict, devices: list | None = None) -> str:
    """The resolved config (JSON, as ``config.json`` of a run on ``devices``), then ``G: <N> parameters``
    and ``D: <N> parameters`` (and the class count of a conditional run). What a run would refuse on any
    number of devices (`check_run` with one: a dry run on a laptop describes a run meant for a cluster) is
    refused here too."""
    cfg = run_config(cfg, jax.devices() if devices is None else devices)
    check_run(cfg, 1)
    c_dim = label_dim(cfg)
    g_count, d_count = parameter_counts(cfg, c_dim)
    lines = [to_json(cfg)]
    if cfg.conditional:
        lines.append(f"classes: {c_dim}")
    lines += [f"G: {g_count} parameters", f"D: {d_count} parameters"]
    return "\n".join(lines)
