"""Where datasets live, and the one resolver from a dataset name or path to a dataset directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

from stylegan_jax.data.builtin import BUILTINS, build_builtin
from stylegan_jax.data.errors import DatasetError

DATA_DIR_ENV = "STYLEGAN_JAX_DATA"
DEFAULT_DATA_DIR = "~/.cache/stylegan_jax/datasets"


def default_data_dir() -> Path:
    """The datasets directory: $STYLEGAN_JAX_DATA if set, else ~/.cache/stylegan_jax/datasets."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()


def is_dataset(path: Path) -> bool:
    """Whether ``path`` is a dataset directory (one holding ``dataset_info.json``)."""
    return (path / "dataset_info.json").is_file()


def resolve_dataset(
    name_or_path: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    resolution: int | None = None,
) -> Path:
    """The dataset directory for a built-in name, a dataset name in `data_dir`, or a path.

    Built-in datasets (`BUILTINS`: lfw-faces, lfw-faces-portrait, digits, digits-16) are built into `data_dir`
    on first use.

    Args:
      name_or_path: e.g. "lfw-faces", "ffhq256" (looked up in `data_dir`) or a dataset directory path.
      data_dir: where named datasets live; default `default_data_dir()`.
      resolution: the resolution the caller wants, only used in the error message's command (default: the
        digits at the end of the name, as in "ffhq256").

    Returns:
      An absolute Path to a dataset directory.

    Raises:
      DatasetError: the dataset does not exist; the message says where it looked and the dataset_tool
        command that creates it.
    """
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    name = str(name_or_path)
    if name in BUILTINS:
        path = root / name
        return path.absolute() if is_dataset(path) else build_builtin(name, path)
    given = Path(name).expanduser()
    if is_dataset(given):
        return given.absolute()
    dest = (root / name if len(given.parts) == 1 else given).absolute()
    if is_dataset(dest):
        return dest
    if resolution is None and (m := re.search(r"\d+(x\d+)?$", dest.name)):  # "ffhq256", "cars512x384"
        resolution = m.group(0)
    flag = f" --resolution {resolution}" if resolution else ""
    if dest.is_dir() and any(dest.iterdir()):
        raise DatasetError(f"{dest} is not a dataset (no dataset_info.json in it); convert images into a new "
                           f"directory with: python -m stylegan_jax.dataset_tool --source {dest} --dest "
                           f"<new directory>{flag}")
    if dest.exists():
        what = "an empty directory" if dest.is_dir() else "a file"
        raise DatasetError(f"{dest} is {what}, not a dataset directory; convert images into one with: "
                           f"python -m stylegan_jax.dataset_tool --source {dest if what == 'a file' else '<images>'} "
                           f"--dest <new directory>{flag}")
    raise DatasetError(
        f"dataset {name!r} not found (looked in {dest}); "
        f"create it with: python -m stylegan_jax.dataset_tool --source /path/to/images --dest {dest}{flag}"
    )
