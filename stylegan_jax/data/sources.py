"""Image sources for dataset_tool: a folder (searched recursively) or a .zip, with optional labels; or, as
NVIDIA's dataset_tool reads them, CIFAR-10's python tarball, MNIST's training images and LSUN's LMDB
directories (`open_image_source`).

Files are named by their path relative to the source root with "/" separators, as in NVIDIA's
`dataset.json` (`{"labels": [["00000/img00000000.png", 6], ...]}`), and listed in sorted order. CIFAR-10's and
MNIST's images are offered as PNG files ``00000000.png``, ... in their order, with their class labels; an LMDB's
records as files ``<key>.webp`` in key order (LSUN stores WebP; Pillow reads whatever format a record is).
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import tarfile
import unicodedata
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import PIL.Image

from stylegan_jax.data.errors import DatasetError
from stylegan_jax.data.images import encode_png
from stylegan_jax.io.restricted_pickle import restricted_load

#: The file types taken as images: the extensions Pillow registers (NVIDIA's ``PIL.Image.EXTENSION``), but
#: PostScript (Pillow runs Ghostscript on it: no external program runs on a user's file) and PDF (write only).
IMAGE_EXTENSIONS = tuple(sorted(set(PIL.Image.registered_extensions()) - {".eps", ".ps", ".pdf"}))
LABELS_FILE = "dataset.json"
#: The file names NVIDIA's dataset_tool recognises: CIFAR-10's python version, MNIST's training images.
CIFAR10_TARBALL = "cifar-10-python.tar.gz"
MNIST_IMAGES = "train-images-idx3-ubyte.gz"
#: NVIDIA's dataset_tool reads a directory whose name ends so as an LMDB database (LSUN's form).
LMDB_SUFFIX = "_lmdb"


class ImageSource:
    """The files of a folder or zip archive.

    Attributes:
      path: the source as given.
      names: every file except `dataset.json`, sorted, relative to the root, "/"-separated.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_dir():  # NVIDIA's order: sorted paths, which compare folder by folder
            paths = sorted(p.relative_to(self.path) for p in self.path.rglob("*")
                           if p.is_file() or (p.is_symlink() and not p.exists()))  # a broken link: unreadable
            files = [p.as_posix() for p in paths]
        elif self.path.is_file() and zipfile.is_zipfile(self.path):  # NVIDIA's order: sorted names
            try:
                self._zip = zipfile.ZipFile(self.path)
            except zipfile.BadZipFile as e:  # its end record read, its central directory damaged
                raise DatasetError(f"source {self.path} is not a readable .zip archive ({e})") from None
            files = sorted(i.filename for i in self._zip.infolist() if not i.is_dir())
        elif self.path.suffix.lower() == ".zip" and self.path.is_file():
            raise DatasetError(f"source {self.path} is not a readable .zip archive (truncated or damaged?)")
        elif self.path.exists():
            raise DatasetError(f"source {self.path} is neither a folder nor a .zip archive")
        else:
            raise DatasetError(f"source {self.path} does not exist")
        self._has_labels = LABELS_FILE in files
        self.names = [f for f in files if f != LABELS_FILE]

    def open(self, name: str) -> IO[bytes]:
        """A binary file object for `name` (read lazily: opening an image reads only its header)."""
        if self._zip is not None:
            return self._zip.open(name)
        return open(self.path / name, "rb")

    def read(self, name: str) -> bytes:
        """All bytes of `name`."""
        with self.open(name) as f:
            return f.read()

    def header(self, name: str) -> tuple[str, tuple[int, int]]:
        """(Pillow mode, (width, height)) of image `name`, from its header alone."""
        with self.open(name) as f:
            return _pil_header(f)

    def labels(self) -> dict[str, Any] | None:
        """The labels of `dataset.json` as {file name: label}, or None without labels.

        A label is an int (class), a list of numbers (vector) or None; the file's `"labels"` may itself be
        null (an unlabelled dataset). A name is matched to a file as written on another system too: with
        "\\" separators, a leading "./", in another Unicode normal form (macOS writes NFD).

        Raises:
          DatasetError: `dataset.json` is not valid JSON in NVIDIA's format, or gives an image two labels.
        """
        if not self._has_labels:
            return None
        expected = f'{self.path / LABELS_FILE} is not in the format {{"labels": [[name, label], ...]}}'
        try:
            data = json.loads(self.read(LABELS_FILE))
        except ValueError as e:
            raise DatasetError(f"{expected}: {e}") from None
        except (OSError, zipfile.BadZipFile) as e:  # a broken link, a zip member failing its CRC
            raise DatasetError(f"{self.path / LABELS_FILE}: unreadable ({e})") from None
        if not isinstance(data, dict) or "labels" not in data:
            raise DatasetError(f'{expected}: it has no "labels" key')
        pairs = data["labels"]
        if pairs is None:
            return None
        if not (isinstance(pairs, list) and all(isinstance(p, list) and len(p) == 2 for p in pairs)):
            raise DatasetError(f'{expected}: its "labels" is not a list of [name, label] pairs')
        files = {_comparable(name): name for name in self.names}
        labels: dict[str, Any] = {}
        for name, label in pairs:
            file = files.get(_comparable(str(name)), str(name))
            first = labels.setdefault(file, label)
            if first is not label and first != label:  # NVIDIA's dict() keeps the last silently
                raise DatasetError(f"{self.path / LABELS_FILE} gives {file!r} two labels, {labels[file]!r} and "
                                   f"{label!r}; expected one per image")
        return labels

    def close(self) -> None:
        """Closes the archive, if any."""
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArraySource:
    """uint8 images [N, H, W, C] with class labels [N] as a source of PNG files ``00000000.png``, ... (the
    interface of `ImageSource`; each file is encoded when read)."""

    def __init__(self, path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> None:
        self.path, self._images, self._labels = Path(path), images, labels
        self.names = [f"{i:08d}.png" for i in range(len(images))]

    def read(self, name: str) -> bytes:
        return encode_png(self._images[int(name[:-4])])

    def header(self, name: str) -> tuple[str, tuple[int, int]]:
        """(mode, (width, height)) straight from the array: no image is encoded to be scanned."""
        height, width, channels = self._images[int(name[:-4])].shape
        return ("L" if channels == 1 else "RGB"), (width, height)

    def labels(self) -> dict[str, Any]:
        return {name: int(label) for name, label in zip(self.names, self._labels, strict=True)}

    def close(self) -> None:
        pass

    def __enter__(self) -> ArraySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LmdbSource:
    """The records of an LMDB database (LSUN's) as files ``<key>.webp`` in key order, read on demand (the
    interface of `ImageSource`; no labels). Needs the ``lmdb`` package (the ``lsun`` extra)."""

    def __init__(self, path: str | os.PathLike) -> None:
        try:
            import lmdb
        except ImportError:
            raise DatasetError(f"source {path}: reading an LMDB database needs the lmdb package (pip install lmdb, "
                               "or the lsun extra)") from None
        self.path = Path(path)
        try:
            self._env = lmdb.open(str(self.path), readonly=True, lock=False, readahead=False)
        except lmdb.Error as e:
            raise DatasetError(f"source {self.path} is not a readable LMDB database ({e})") from None
        try:
            self._txn = self._env.begin(write=False)
            keys = [bytes(key) for key in self._txn.cursor().iternext(values=False)]
        except lmdb.Error as e:
            self._env.close()
            raise DatasetError(f"source {self.path} is not a readable LMDB database ({e})") from None
        self._keys = {f"{key.decode('latin-1')}.webp": key for key in keys}
        self.names = list(self._keys)

    def read(self, name: str) -> bytes:
        return self._txn.get(self._keys[name])

    def header(self, name: str) -> tuple[str, tuple[int, int]]:
        return _pil_header(io.BytesIO(self.read(name)))

    def labels(self) -> None:
        return None

    def close(self) -> None:
        self._txn.abort()
        self._env.close()

    def __enter__(self) -> LmdbSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: What `open_image_source` returns: every kind offers ``path``, ``names``, ``read``, ``header``, ``labels``,
#: ``close``.
Source = ImageSource | ArraySource | LmdbSource


def _comparable(name: str) -> str:
    """A file name of `dataset.json` or of the source in one form: "/" separators, no leading "./", NFC."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/"))
    while name.startswith("./"):
        name = name[2:]
    return name


def _pil_header(f: IO[bytes]) -> tuple[str, tuple[int, int]]:
    """(Pillow mode, (width, height)) of the image in ``f``, from its header alone (the stored size: before
    its EXIF orientation)."""
    with PIL.Image.open(f) as image:
        return image.mode, image.size


def open_image_source(path: str | os.PathLike) -> Source:
    """The source at ``path``: CIFAR-10's python tarball (`CIFAR10_TARBALL`), MNIST's training images
    (`MNIST_IMAGES`, its labels beside it) by file name, or an LMDB directory (its name ends in `LMDB_SUFFIX`),
    as NVIDIA's dataset_tool; else a folder or zip."""
    path = Path(path)
    if path.is_dir() and path.name.endswith(LMDB_SUFFIX):
        return LmdbSource(path)
    if path.is_file() and path.name == CIFAR10_TARBALL:
        return ArraySource(path, *read_cifar10(path))
    if path.is_file() and path.name == MNIST_IMAGES:
        return ArraySource(path, *read_mnist(path))
    return ImageSource(path)


def read_cifar10(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10's five training batches: images uint8 [N, 32, 32, 3] and labels [N], in the batches' order. The
    batches are Python 2 pickles of plain data, read with the allow-list unpickler: nothing in them runs."""
    images, labels = [], []
    try:
        with tarfile.open(path, "r:gz") as tar:
            for batch in range(1, 6):
                with tar.extractfile(f"cifar-10-batches-py/data_batch_{batch}") as f:
                    data = restricted_load(f, encoding="latin1")
                pixels, classes = np.asarray(data["data"]), np.asarray(data["labels"])
                name = f"{path}'s data_batch_{batch}"
                if len(pixels) != len(classes):  # counts per batch: a total alone would shift labels across them
                    raise DatasetError(f"{name}: {len(pixels)} images but {len(classes)} labels")
                if not (np.issubdtype(pixels.dtype, np.integer) and pixels.min(initial=0) >= 0
                        and pixels.max(initial=0) <= 255):
                    raise DatasetError(f"{name}: pixel values other than whole numbers in 0..255 ({pixels.dtype})")
                if not np.issubdtype(classes.dtype, np.integer):
                    raise DatasetError(f"{name}: labels other than whole numbers ({classes.dtype})")
                images.append(pixels.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                labels.append(classes.astype(np.int64))
    except DatasetError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure of the user's file (zlib, tar, pickle, layout) is one line;
        # the allow-list unpickler has run nothing
        raise DatasetError(f"source {path} is not CIFAR-10's python tarball ({type(e).__name__}: {e})") from None
    images, labels = np.concatenate(images), np.concatenate(labels)
    if len(images) != len(labels):
        raise DatasetError(f"source {path}: {len(images)} images but {len(labels)} labels")
    return images, labels


def _idx_payload(data: bytes, magic: int, item_shape: tuple[int, ...], name: str) -> np.ndarray:
    """The uint8 values of an idx file (MNIST's format: a big-endian uint32 magic number, then one uint32 per
    dimension), its header checked to be ``magic``, N, ``item_shape`` for the N items the values hold
    (NVIDIA's tool skips the header unread)."""
    size = 4 * (2 + len(item_shape))
    header = np.frombuffer(data[:size], ">u4").tolist() if len(data) >= size else []
    values = np.frombuffer(data[size:], np.uint8)
    items = math.prod(item_shape)
    if values.size % items or header != [magic, values.size // items, *item_shape]:
        expected = ", ".join(map(str, [magic, "N", *item_shape]))
        raise DatasetError(f"{name}: the idx header {header} does not describe the {values.size} bytes after it "
                           f"(MNIST's: [{expected}] for N items)")
    return values


def read_mnist(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's training images, zero-padded from 28x28 to 32x32 as NVIDIA's dataset_tool pads them: uint8
    [N, 32, 32, 1], and the labels [N] of ``train-labels-idx1-ubyte.gz`` beside them."""
    labels_path = path.with_name(MNIST_IMAGES.replace("-images-idx3-", "-labels-idx1-"))
    try:
        with gzip.open(path, "rb") as f:
            images = f.read()
        with gzip.open(labels_path, "rb") as f:
            labels = f.read()
    except FileNotFoundError as e:
        raise DatasetError(f"source {path}: {e.filename} is missing (MNIST's labels beside its images)") from None
    except Exception as e:  # noqa: BLE001 - any failure of the user's file (gzip, zlib) is one line
        raise DatasetError(f"source {path} is not MNIST's gzipped idx files ({type(e).__name__}: {e})") from None
    images = _idx_payload(images, 2051, (28, 28), f"source {path}")
    labels = _idx_payload(labels, 2049, (), f"source {path}: {labels_path.name}")
    if images.size // (28 * 28) != labels.size:
        raise DatasetError(f"source {path}: {images.size // (28 * 28)} images for {labels.size} labels; expected one "
                           "label each")
    images = np.pad(images.reshape(-1, 28, 28), [(0, 0), (2, 2), (2, 2)])[..., None]
    return images, labels

