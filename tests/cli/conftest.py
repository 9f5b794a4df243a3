"""Fixtures of the command-line bad-input tests: the NVIDIA fixture pickles, and run directories and datasets
around the metrics tests' tiny conditional generator and dataset (imported from their conftest, so one
definition serves both)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from stylegan_jax.data.images import encode_png
from stylegan_jax.data.tfds_builder import DatasetSpec, write_dataset
from stylegan_jax.network_snapshot import save_network
from tests.metrics.conftest import G_KWARGS, dataset, generator  # noqa: F401 - fixtures shared with tests/metrics

PICKLES = Path(__file__).parents[1] / "fixtures" / "nvidia_pickles"


@pytest.fixture(scope="session")
def uncond_pkl() -> Path:
    """An unconditional 16x16 RGB StyleGAN2-ADA pickle with 6 ws."""
    return PICKLES / "ada_skip16.pkl"


@pytest.fixture(scope="session")
def cond_pkl() -> Path:
    """A conditional (10 classes) 32x32 StyleGAN2-ADA pickle."""
    return PICKLES / "ada_resnet32_cond10.pkl"


def _dataset(path, resolution, c_dim, classes_used=None):
    """6 random images of ``c_dim`` classes, labelled in turn with the first ``classes_used`` (default all)."""
    images = np.random.default_rng(0).integers(0, 256, (6, resolution, resolution, 1)).astype(np.uint8)
    spec = DatasetSpec(resolution=resolution, channels=1, label_kind="class" if c_dim else "none", c_dim=c_dim)
    used = classes_used or c_dim
    examples = [{"image": encode_png(im), **({"label": i % used} if c_dim else {})} for i, im in enumerate(images)]
    write_dataset(path, spec, examples)


@pytest.fixture(scope="session")
def root(tmp_path_factory, dataset, generator):  # noqa: F811 - the fixtures imported above
    """A folder of run directories around one conditional snapshot (16x16x1, 3 classes): ``run`` (its config
    names the metrics tests' dataset), ``badrun`` (config not JSON), ``listrun`` (config a list), ``gonerun``
    (config naming a missing dataset), ``typerun`` (xflip "no"), ``outside`` (no config); datasets that do not
    fit it: ``uncond`` (unlabelled), ``cond5`` (5 classes), ``small`` (8x8), ``oneclass`` (3 classes, every
    image of one); ``afile``, a text file, and ``emptydir``."""
    root = tmp_path_factory.mktemp("calc")
    snap = save_network(root / "run" / "snap", model="stylegan2", G_kwargs=G_KWARGS, D_kwargs=None, G_ema=generator[1])
    configs = {"run": {"dataset": str(dataset), "data_dir": "", "xflip": False}, "badrun": "{not json",
               "listrun": [1], "gonerun": {"dataset": str(root / "gone")}, "outside": None,
               "typerun": {"dataset": str(dataset), "xflip": "no"}, "boolrun": {"dataset": str(dataset),
                                                                                "subset": True}}
    for name, config in configs.items():
        if name != "run":
            shutil.copytree(snap, root / name / "snap")
        if config is not None:
            (root / name / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    _dataset(root / "uncond", 16, 0)
    _dataset(root / "cond5", 16, 5)
    _dataset(root / "small", 8, 3)
    _dataset(root / "oneclass", 16, 3, classes_used=1)
    (root / "afile").write_text("not a network")
    (root / "emptydir").mkdir()
    return root
