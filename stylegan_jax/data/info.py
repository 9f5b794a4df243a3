"""Reading a converted dataset: its metadata, and a config check against it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tensorflow_datasets as tfds

from stylegan_jax.data.errors import DatasetError
from stylegan_jax.errors import first_line


def load_builder(path: str | os.PathLike) -> tfds.core.DatasetBuilder:
    """The read-only TFDS builder of the dataset directory `path` (no TensorFlow, no generation code).

    Raises:
      DatasetError: `path` is not a dataset directory written by `write_dataset`.
    """
    path = Path(path)
    if not (path / "dataset_info.json").is_file():
        raise DatasetError(f"{path} is not a dataset directory (no dataset_info.json in it)")
    try:
        return tfds.builder_from_directory(path)
    except Exception as e:  # noqa: BLE001 - TFDS's JSON and protobuf parsers raise their own types
        raise DatasetError(f"{path}: unreadable dataset metadata ({first_line(e)}); convert the dataset again "
                           "with dataset_tool") from None


def read_dataset_info(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of the dataset at `path`.

    Returns:
      A dict with at least: "resolution" (int, pixels), "channels" (1 or 3), "label_kind" ("none", "class"
      or "vector"), "c_dim" (int, 0 when unlabelled), "source" (str), "num_images" (int), "path" (str);
      "dataset_id" (str, a random id of the conversion that wrote it) unless written before 2026-12-06.
      Datasets made by dataset_tool also hold the conversion counts.
    """
    builder = load_builder(path)
    info = dict(builder.info.metadata)
    info["num_images"] = int(builder.info.splits["train"].num_examples)
    info["path"] = str(Path(path).absolute())
    return info


def check_dataset_info(
    info: dict[str, Any],
    *,
    resolution: int | None = None,
    channels: int | None = None,
    c_dim: int | None = None,
) -> None:
    """Checks that a dataset fits what a config expects; a `None` expectation is not checked.

    Raises:
      DatasetError: one line naming every mismatch.
    """
    expected = {"resolution": resolution, "channels": channels, "c_dim": c_dim}
    keys = {"resolution": "resolution", "channels": "img_channels", "c_dim": "c_dim"}
    wrong = [(k, v) for k, v in expected.items() if v is not None and info[k] != v]
    if wrong:
        raise DatasetError(f"dataset {info['path']} does not fit the config: "
                           + ", ".join(f"{k} {info[k]} (config wants {v})" for k, v in wrong) + "; "
                           + " ".join(f"--config.{keys[k]}={info[k]}" for k, _ in wrong) + " trains at the dataset's")
