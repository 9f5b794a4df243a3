"""Image sources for dataset_tool: a folder (searched recursively) or a .zip, with optional labels.

Files are named by their path relative to the source root with "/" separators, as in NVIDIA's
`dataset.json` (`{"labels": [["00000/img00000000.png", 6], ...]}`), and listed in sorted order.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import IO, Any

from stylegan_jax.data.errors import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
LABELS_FILE = "dataset.json"


class ImageSource:
    """The files of a folder or zip archive.

    Attributes:
      path: the source as given.
      names: every file except `dataset.json`, sorted, relative to the root, "/"-separated.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_dir():
            files = [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            files = [i.filename for i in self._zip.infolist() if not i.is_dir()]
        elif self.path.suffix.lower() == ".zip" and self.path.is_file():
            raise DatasetError(f"source {self.path} is not a readable .zip archive (truncated or damaged?)")
        elif self.path.exists():
            raise DatasetError(f"source {self.path} is neither a folder nor a .zip archive")
        else:
            raise DatasetError(f"source {self.path} does not exist")
        self._has_labels = LABELS_FILE in files
        self.names = sorted(f for f in files if f != LABELS_FILE)

    def open(self, name: str) -> IO[bytes]:
        """A binary file object for `name` (read lazily: opening an image reads only its header)."""
        if self._zip is not None:
            return self._zip.open(name)
        return open(self.path / name, "rb")

    def read(self, name: str) -> bytes:
        """All bytes of `name`."""
        with self.open(name) as f:
            return f.read()

    def labels(self) -> dict[str, Any] | None:
        """The labels of `dataset.json` as {file name: label}, or None without labels.

        A label is an int (class), a list of numbers (vector) or None; the file's `"labels"` may itself be
        null (an unlabelled dataset).

        Raises:
          DatasetError: `dataset.json` is not valid JSON in NVIDIA's format.
        """
        if not self._has_labels:
            return None
        try:
            data = json.loads(self.read(LABELS_FILE))
            pairs = data["labels"]
            return None if pairs is None else {str(name): label for name, label in pairs}
        except (ValueError, KeyError, TypeError) as e:
            raise DatasetError(
                f'{self.path / LABELS_FILE} is not in the format {{"labels": [[name, label], ...]}}: {e}'
            ) from None

    def close(self) -> None:
        """Closes the archive, if any."""
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
