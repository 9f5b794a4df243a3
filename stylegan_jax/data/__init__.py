"""Datasets: conversion of image folders/zips to TFDS ArrayRecord, built-in data, the grain input pipeline.

The training loop needs four calls:

    path = resolve_dataset("lfw-faces")              # or "ffhq256", or a path; builds built-ins on demand
    info = read_dataset_info(path)                   # resolution, channels, c_dim, num_images, ...
    it = make_iterator(path, batch_size=32, seed=0, xflip=True)   # next(it) -> {"image", "label"}
    state = it.get_state(); it.set_state(state)      # or grain.checkpoint.CheckpointSave(it) with Orbax
"""

from stylegan_jax.data.errors import DatasetError
from stylegan_jax.data.info import check_dataset_info, read_dataset_info
from stylegan_jax.data.labels import LabelTable, read_labels
from stylegan_jax.data.locate import DATA_DIR_ENV, default_data_dir, is_dataset, resolve_dataset
from stylegan_jax.data.pipeline import make_dataset, make_iterator, subset_indices

__all__ = [
    "DATA_DIR_ENV",
    "DatasetError",
    "LabelTable",
    "check_dataset_info",
    "default_data_dir",
    "is_dataset",
    "make_dataset",
    "make_iterator",
    "read_dataset_info",
    "read_labels",
    "resolve_dataset",
    "subset_indices",
]
