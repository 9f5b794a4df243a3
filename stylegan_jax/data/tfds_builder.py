"""The TFDS builder that writes an image dataset as ArrayRecord, and its atomic writer.

TFDS writes ArrayRecord without TensorFlow only when the builder class lives in an importable module and the
images are handed over already PNG-encoded (bytes); a NumPy image would make TFDS import TensorFlow. The
builder is therefore a thin shell around an iterable of ready examples, and all image work happens before.

On-disk layout: a dataset directory is one TFDS builder directory (``dataset_info.json``,
``features.json``, ``metadata.json``, ``stylegan_images-train.array_record-*``), readable with
``tfds.builder_from_directory(path)``.

`write_dataset` replaces only what `is_dataset_dir` recognises as such a directory (see `check_dest`): never a
file, a symbolic link or a folder holding anything else.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from stylegan_jax import image_size
from stylegan_jax.data.errors import DatasetError

LABEL_KINDS = ("none", "class", "vector")
#: The builder's name: TFDS names a dataset's files and its ``dataset_info.json`` "name" after it.
BUILDER_NAME = "stylegan_images"
#: The files of a dataset directory (TFDS's metadata and the ArrayRecord shards of the train split).
DATASET_FILES = re.compile(rf"dataset_info\.json|features\.json|metadata\.json|"
                           rf"{BUILDER_NAME}-train\.array_record-\d{{5}}-of-\d{{5}}")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a dataset holds, recorded in its TFDS metadata.

    Attributes:
      resolution: the images' size: N (N x N pixels) or "WxH" (`stylegan_jax.image_size`).
      channels: 1 (grayscale) or 3 (RGB).
      label_kind: "none", "class" (integer class in [0, c_dim)) or "vector" (float32 vector of c_dim).
      c_dim: label dimension the networks see: number of classes, vector length, or 0.
      source: where the images came from (a path or a built-in name), for the record.
      extra: further JSON-able metadata (e.g. conversion counts).
    """

    resolution: int | str
    channels: int
    label_kind: str = "none"
    c_dim: int = 0
    source: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.label_kind not in LABEL_KINDS:
            raise ValueError(f"label_kind must be one of {LABEL_KINDS}, got {self.label_kind!r}")
        if (self.label_kind == "none") != (self.c_dim == 0):
            raise ValueError(f"c_dim={self.c_dim} does not fit label_kind={self.label_kind!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if image_size.text(*self.shape) != self.resolution:
            raise ValueError(f"resolution must be N or 'WxH' (width != height), got {self.resolution!r}")

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the images."""
        return image_size.parse(self.resolution)

    def features(self) -> tfds.features.FeaturesDict:
        """TFDS features: a PNG image of (height, width, channels) uint8 and the label if any."""
        feats: dict[str, Any] = {
            "image": tfds.features.Image(shape=(*self.shape, self.channels), encoding_format="png")
        }
        if self.label_kind == "class":
            feats["label"] = tfds.features.ClassLabel(num_classes=self.c_dim)
        elif self.label_kind == "vector":
            feats["label"] = tfds.features.Tensor(shape=(self.c_dim,), dtype=np.float32)
        return tfds.features.FeaturesDict(feats)

    def metadata(self) -> dict[str, Any]:
        """The JSON-able metadata stored beside the data (read back by `read_dataset_info`)."""
        return {
            "resolution": self.resolution,
            "height": self.shape[0],
            "width": self.shape[1],
            "channels": self.channels,
            "label_kind": self.label_kind,
            "c_dim": self.c_dim,
            "source": self.source,
            **self.extra,
        }


class _LocalDatasetInfo(tfds.core.DatasetInfo):
    """A `tfds.core.DatasetInfo` that never looks for TFDS's published metadata of the dataset: ours has none,
    and TFDS's lookup leaves an empty temporary directory behind in the system's temp dir on every build, even
    with its bucket access disabled."""

    def initialize_from_bucket(self) -> None:
        return None


class StyleganImages(tfds.core.GeneratorBasedBuilder):
    """One split ("train") of PNG images, in the order `examples` yields them.

    Args:
      spec: what the examples hold.
      examples: iterable of dicts {"image": PNG bytes, "label": int or float32 vector (if labelled)}.
        It may raise `DatasetError` (e.g. when it turns out to hold no image); the error propagates. It may
        also fill `spec.extra` as it goes: the metadata is written after the last example.
      **kwargs: passed to `tfds.core.GeneratorBasedBuilder` (data_dir, file_format).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "PNG images with optional class or vector labels."}

    def __init__(self, *, spec: DatasetSpec, examples: Iterable[dict[str, Any]], **kwargs: Any) -> None:
        self._spec = spec
        self._examples = examples
        self._dataset_id = uuid.uuid4().hex
        super().__init__(**kwargs)

    def _metadata(self) -> dict[str, Any]:
        """The spec's metadata and ``dataset_id``, drawn anew for every conversion: what a cache of results
        computed from the images (the metrics' dataset statistics) is keyed by, so that a dataset converted
        again at the same path (``dataset_tool --overwrite``) is never taken for the one it replaced."""
        return {**self._spec.metadata(), "dataset_id": self._dataset_id}

    def _info(self) -> tfds.core.DatasetInfo:
        return _LocalDatasetInfo(
            builder=self,
            description="StyleGAN training images.",
            features=self._spec.features(),
            metadata=tfds.core.MetadataDict(self._metadata()),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        del dl_manager
        return {"train": self._generate_examples()}

    def _generate_examples(self) -> Iterator[tuple[int, dict[str, Any]]]:
        yield from enumerate(self._examples)
        # `spec.extra` may have been filled while the examples were made (conversion counts); TFDS writes the
        # metadata after this generator ends, so refresh it now.
        self.info.metadata.update(self._metadata())

    # TFDS prints "Downloading and preparing..." / "...prepared to <temp dir>" on stdout; our callers
    # report what they did themselves, with the final path.
    def _log_download_bytes(self) -> None:
        pass

    def _log_download_done(self) -> None:
        pass


def is_dataset_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a dataset directory this module wrote: a real directory (not a link) holding only
    regular files named as `DATASET_FILES`, whose ``dataset_info.json`` names the `StyleganImages` builder."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    entries = list(path.iterdir())
    if not all(DATASET_FILES.fullmatch(p.name) and p.is_file() and not p.is_symlink() for p in entries):
        return False
    try:
        info = json.loads((path / "dataset_info.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("name") == BUILDER_NAME


def check_dest(dest: str | os.PathLike, overwrite: bool = False) -> Path:
    """Checks that a dataset may be written at ``dest``; returns it as an absolute Path.

    Allowed: a path that does not exist (under directories, or a place where they can be made) and whose name
    does not end in .zip (NVIDIA's archive, which this is not), an empty directory, and, with ``overwrite``, a
    dataset directory (`is_dataset_dir`). Anything else (a file, a link,
    a folder holding other things) is refused even with ``overwrite``: nothing but a dataset is ever replaced.

    Raises:
      DatasetError: one line saying what ``dest`` is and what to do.
    """
    dest = Path(dest).absolute()
    if dest.suffix.lower() == ".zip" and not is_dataset_dir(dest):  # NVIDIA's tool writes a zip by that name
        raise DatasetError(f"{dest}: a dataset here is a directory, not NVIDIA's zip archive; give --dest a name "
                           "without .zip")
    if dest.is_symlink():
        raise DatasetError(f"{dest} is a symbolic link; give the directory it points to as the destination")
    if dest.exists():
        if not dest.is_dir():
            raise DatasetError(f"{dest} is a file, not a dataset directory; it is never replaced (expected a new "
                               "path, an empty directory or a dataset made by dataset_tool)")
        if is_dataset_dir(dest):
            if not overwrite:
                raise DatasetError(f"{dest} already exists (pass --overwrite to replace it)")
        elif names := sorted(p.name for p in dest.iterdir()):
            example = next((n for n in names if not DATASET_FILES.fullmatch(n)), names[0])
            raise DatasetError(f"{dest} is a folder holding other files than a dataset (e.g. {example!r}); "
                               "--overwrite replaces only a dataset made by dataset_tool: choose another destination")
    parent = dest.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise DatasetError(f"{dest} lies under {parent}, which is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DatasetError(f"{dest}: cannot write in {parent} (permission denied)")
    return dest


def write_dataset(
    dest: str | os.PathLike, spec: DatasetSpec, examples: Iterable[dict[str, Any]], *, overwrite: bool = False
) -> Path:
    """Writes `examples` as a TFDS ArrayRecord dataset at `dest`, atomically.

    Everything is written into a temporary directory beside `dest` and renamed into place at the end, so an
    interrupted or failed write leaves nothing at `dest` (an existing dataset there is replaced only after
    the new one is complete, and only with `overwrite`).

    Args:
      dest: the dataset directory to create (what may be there: see `check_dest`).
      spec: what the examples hold.
      examples: see `StyleganImages`.
      overwrite: replace an existing dataset at `dest` (never anything else).

    Returns:
      `dest` as an absolute Path.

    Raises:
      DatasetError: `check_dest` refuses `dest`, or `examples` raised it.
    """
    dest = check_dest(dest, overwrite)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        tfds.disable_progress_bar()
        builder = StyleganImages(spec=spec, examples=examples, data_dir=tmp, file_format="array_record")
        builder.download_and_prepare()
        if dest.exists():
            check_dest(dest, overwrite)  # again: it may have changed during the conversion
            old = tmp / "replaced"
            dest.rename(old)
        Path(builder.data_dir).rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
