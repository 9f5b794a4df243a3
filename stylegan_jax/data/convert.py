"""dataset_tool's conversion: a folder or zip of images (or CIFAR-10's or MNIST's files: `sources`) -> a TFDS
ArrayRecord dataset, nothing lost silently.

Every file of the source is either stored or reported: non-image, unreadable and truncated files, and images
of floating-point pixels (no range maps them to 8 bits), are skipped and counted; images of another mode
(grayscale, RGBA, palette, 16-bit...) are converted to the dataset's channel count and counted; images smaller
than the target are enlarged and counted.

Nothing of the user's is lost either: the destination may not be, contain or lie inside the source, and only a
dataset this package wrote is ever replaced (`tfds_builder.check_dest`).

Labels (NVIDIA's ``dataset.json``) are all integer classes in [0, `MAX_CLASSES`) (``3`` or ``3.0``; the dataset
has max + 1 classes, as NVIDIA's dataset_tool counts them) or all lists of one length of finite float32 numbers; an
image whose label is null or absent is skipped (and counted) when others have one.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import tqdm

from stylegan_jax import image_size
from stylegan_jax.data import images
from stylegan_jax.data.errors import DatasetError
from stylegan_jax.data.sources import IMAGE_EXTENSIONS, Source, open_image_source
from stylegan_jax.data.tfds_builder import DatasetSpec, check_dest, write_dataset

GRAY_MODES = ("1", "L", "LA", "I", "F")
NAMES_SHOWN = 5
#: The skip reason of an image over Pillow's decompression-bomb limit (twice ``PIL.Image.MAX_IMAGE_PIXELS``:
#: Pillow refuses to open it; between once and twice that, it warns, and the tools convert it quietly).
OVER_PIXEL_LIMIT = "over Pillow's pixel limit"
#: Class labels lie in [0, MAX_CLASSES): a dataset has at most this many classes (ImageNet-21k has 21,841;
#: a label far above is a typo that would make every one-hot label and the networks' embedding that wide).
MAX_CLASSES = 100_000
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclasses.dataclass
class ConversionReport:
    """What a conversion did.

    Attributes:
      dest: the dataset directory written.
      spec: what the dataset holds (resolution, channels, labels).
      num_images: images stored.
      num_files: files in the source (dataset.json excluded).
      skipped: reason ("not an image", "unreadable", "truncated", "floating-point pixels", `OVER_PIXEL_LIMIT`,
        "no label") -> file names.
      converted: original mode ("L", "RGBA", "P", "16-bit", ...) -> number converted to `spec.channels`.
      upscaled: number of images enlarged to reach the resolution.
      resized: without ``--resolution``, the number of images of another size than the first one's, which
        gives the resolution (NVIDIA's tool refuses them).
      squeezed: with ``--transform none``, the number of images of another aspect ratio than the resolution's,
        resized to it all the same (as NVIDIA's tool does with ``--resolution``).
    """

    dest: Path
    spec: DatasetSpec
    num_images: int = 0
    num_files: int = 0
    skipped: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    converted: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    upscaled: int = 0
    resized: int = 0
    squeezed: int = 0

    def counts(self) -> dict[str, Any]:
        """JSON-able counts, stored in the dataset's metadata."""
        return {
            "num_files": self.num_files,
            "skipped": {k: len(v) for k, v in sorted(self.skipped.items())},
            "converted": dict(sorted(self.converted.items())),
            "upscaled": self.upscaled,
            "resized": self.resized,
            "squeezed": self.squeezed,
        }

    def skipped_text(self) -> str:
        """ "skipped N (reason count, ...: first names)", or "" when nothing was skipped."""
        return skipped_text(self.skipped)

    def summary(self) -> str:
        """One line: what was written, skipped (counts and the first few names), converted and enlarged."""
        s = self.spec
        labels = "unconditional" if s.label_kind == "none" else f"{s.label_kind} labels, c_dim {s.c_dim}"
        shape = f"{s.shape[1]}x{s.shape[0]}x{s.channels}"
        parts = [f"wrote {self.num_images} images ({shape}, {labels}) to {self.dest}"]
        if self.skipped:
            parts.append(self.skipped_text())
        if self.converted:
            counts = ", ".join(f"{k} {n}" for k, n in sorted(self.converted.items()))
            target = "grayscale" if s.channels == 1 else "RGB"
            parts.append(f"converted {sum(self.converted.values())} to {target} ({counts})")
        if self.upscaled:
            parts.append(f"upscaled {self.upscaled}")
        if self.resized:
            parts.append(f"resized {self.resized} of another size than the first image's (--resolution sets the "
                         "size)")
        if self.squeezed:
            parts.append(f"squeezed {self.squeezed} of another aspect ratio to {s.shape[1]}x{s.shape[0]} "
                         "(--transform center-crop crops instead)")
        return "; ".join(parts)


def skipped_text(skipped: dict[str, list[str]]) -> str:
    """ "skipped N (reason count, ...: first names)" of ``skipped`` (reason -> file names), or "" when empty."""
    if not skipped:
        return ""
    names = sorted(n for v in skipped.values() for n in v)
    counts = ", ".join(f"{k} {len(v)}" for k, v in sorted(skipped.items()))
    more = ", ..." if len(names) > NAMES_SHOWN else ""
    return f"skipped {len(names)} ({counts}: {', '.join(names[:NAMES_SHOWN])}{more})"


def _headers(source: Source, names: Iterable[str], skipped: dict[str, list[str]]
             ) -> Iterator[tuple[str, tuple[str, tuple[int, int]]]]:
    """(name, (Pillow mode, (width, height))) of each image among `names`, each read when the caller asks for
    it; other files go to `skipped`."""
    for name in names:
        if not name.lower().endswith(IMAGE_EXTENSIONS):
            skipped["not an image"].append(name)
            continue
        try:
            header = source.header(name)
        except PIL.Image.DecompressionBombError:  # Pillow refuses to open it: named apart from broken files
            skipped[OVER_PIXEL_LIMIT].append(name)
            continue
        except Exception:  # noqa: BLE001 - any failure of a user's file is counted, never a crash
            skipped["unreadable"].append(name)
            continue
        if header[0] == "F":  # 32-bit float pixels (a TIFF): no range maps them to 8 bits (Pillow's clips them)
            skipped["floating-point pixels"].append(name)
            continue
        yield name, header


def _first_headers(headers: Iterator[tuple[str, tuple[str, tuple[int, int]]]], labels: dict[str, Any] | None,
                   max_images: int | None) -> dict[str, tuple[str, tuple[int, int]]]:
    """The headers taken from `headers` until `max_images` of them are of labelled images (all labelled when
    there are no labels; None: to the end), so that a source larger than ``--max-images`` (an LSUN
    database of millions of records) is read only as far as the images it gives."""
    found, wanted = {}, 0
    for name, header in headers:
        found[name] = header
        wanted += labels is None or labels.get(name) is not None
        if wanted == max_images:
            break
    return found


def _label_spec(labels: dict[str, Any] | None, names: Iterable[str]) -> tuple[str, int]:
    """(label_kind, c_dim) of the labels of `names` (see `DatasetSpec`).

    Raises:
      DatasetError: labels that are neither all integer classes in [0, `MAX_CLASSES`) nor all lists of one
        length of finite float32 numbers, or labels that name none of the images.
    """
    names = list(names)
    labelled = [(n, labels[n]) for n in names if labels is not None and labels.get(n) is not None]
    if not labelled:
        given = [n for n, v in (labels or {}).items() if v is not None]
        if given:
            raise DatasetError(
                f"dataset.json labels none of the images (it names e.g. {given[0]!r}, the images are named "
                f"like {names[0]!r}: paths relative to the source root, with /)"
            )
        return "none", 0

    def is_int(v: Any) -> bool:  # NVIDIA's loader casts the labels to int64: a whole float is its class
        return isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer()

    def is_number(v: Any) -> bool:  # stored as float32: a number beyond its range would be stored as inf
        return isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= FLOAT32_MAX

    rule = (f"labels must be all integer classes in [0, {MAX_CLASSES}) or all lists of one length of finite "
            "float32 numbers (or null)")
    if is_int(labelled[0][1]):
        for name, v in labelled:
            if not is_int(v) or not 0 <= v < MAX_CLASSES:
                raise DatasetError(f"dataset.json gives {name!r} the label {v!r}: {rule}")
        return "class", int(max(v for _, v in labelled)) + 1
    if isinstance(labelled[0][1], list) and labelled[0][1]:
        length = len(labelled[0][1])
        for name, v in labelled:
            if not (isinstance(v, list) and len(v) == length and all(map(is_number, v))):
                raise DatasetError(f"dataset.json gives {name!r} the label {v!r} (the first has {length} numbers): "
                                   f"{rule}")
        return "vector", length
    name, v = labelled[0]
    raise DatasetError(f"dataset.json gives {name!r} the label {v!r}: {rule}")


def _check_apart(source: Path, dest: Path) -> None:
    """Refuses (`DatasetError`) a destination that is, contains or lies inside the source: the conversion
    would write into the images it reads, or replace them."""
    src, dst = source.resolve(), dest.resolve()
    if dst == src or src in dst.parents or dst in src.parents:
        where = "is" if dst == src else "lies inside" if src in dst.parents else "contains"
        raise DatasetError(f"--dest {dest} {where} --source {source}: choose a destination outside the source")


def _shown_size(source: Source, name: str) -> tuple[int, int]:
    """(width, height) of image ``name`` as decoded (`images.decode`: after its EXIF orientation); its stored
    size when it does not decode (the conversion then counts it)."""
    try:
        return images.decode(source.read(name)).size
    except Exception:  # noqa: BLE001 - any failure of a user's file is counted, never a crash
        return source.header(name)[1]


def _default_resolution(transform: str, size: tuple[int, int]) -> tuple[int, int]:
    """The resolution taken from the first image when --resolution is not given."""
    if transform == "center-crop-wide":
        raise DatasetError("--transform center-crop-wide needs --resolution WxH")
    if transform == "center-crop":
        size = (min(size), min(size))
    try:
        images.output_shape(transform, *size)
    except DatasetError as e:
        advice = "" if "--resolution" in str(e) else "; pass --resolution"
        raise DatasetError(f"the first image's size, {size[0]}x{size[1]}: {e}{advice}") from None
    return size


def _ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], workers: int) -> Iterator[Any]:
    """`map(fn, items)` on a thread pool, in order, with at most 2 * workers items in flight."""
    pool = ThreadPoolExecutor(workers)
    pending: collections.deque = collections.deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)


def convert_images(
    source: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    resolution: str | None = None,
    transform: str = "none",
    max_images: int | None = None,
    channels: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    workers: int | None = None,
) -> ConversionReport:
    """Converts a folder or zip of PNG/JPEG/WebP images (or another `sources` form) into a dataset at `dest`,
    atomically.

    Args:
      source: folder (searched recursively) or .zip, an optional dataset.json holding the labels; or CIFAR-10's
        python tarball or MNIST's training images, by file name, or an LSUN ``*_lmdb`` directory
        (`sources.open_image_source`).
      dest: dataset directory to create (see `write_dataset`: nothing appears there unless it completes).
      resolution: "N" or "WxH" in pixels; default: the first image's size (after the crop).
      transform: "none", "center-crop" or "center-crop-wide" (see `images.fit`).
      max_images: store at most this many images: the first this many readable (and, with labels, labelled)
        ones in sorted file order, less any that fail to decode past their header (NVIDIA's tool counts
        records too); the files after them are not read.
      channels: 1 or 3; default: what most of the stored images have.
      overwrite: replace an existing dataset at `dest` (never anything else: see `tfds_builder.check_dest`).
      progress: show a progress bar on stderr.
      workers: threads decoding and encoding images; default: the CPU count.

    Returns:
      The report (`report.summary()` is the line to print).

    Raises:
      DatasetError: a user error (see the message; among them a `dest` that is, contains or lies inside
        `source`, and labels outside the rules of this module's docstring); `dest` is left as it was.
    """
    images.output_shape(transform, 4, 4)  # validates the transform name before any work
    size = images.parse_resolution(resolution) if resolution is not None else None
    if size is not None:
        images.output_shape(transform, *size)
    if channels not in (None, 1, 3):
        raise DatasetError(f"bad --channels {channels}: expected 1 or 3")
    if max_images is not None and max_images < 1:
        raise DatasetError(f"bad --max-images {max_images}: expected a positive number")
    _check_apart(Path(source), Path(dest))
    dest = check_dest(dest, overwrite)

    with open_image_source(source) as src:
        if not src.names:
            raise DatasetError(f"source {src.path} holds no files")
        skipped: dict[str, list[str]] = collections.defaultdict(list)
        labels = src.labels()
        headers = _first_headers(_headers(src, src.names, skipped), labels, max_images)
        if not headers:
            raise DatasetError(
                f"source {src.path} holds no readable image ({len(src.names)} files, {skipped_text(skipped)}; "
                "expected image files that Pillow reads: .png, .jpg, .webp, .bmp, ...)"
            )
        first_size = None if size else _shown_size(src, next(iter(headers)))  # every image's, without --resolution
        size = size or _default_resolution(transform, first_size)
        if channels is None:
            gray = sum(mode in GRAY_MODES or mode.startswith("I;16") for mode, _ in headers.values())
            channels = 1 if 2 * gray > len(headers) else 3
        label_kind, c_dim = _label_spec(labels, headers)
        names = []
        for name in headers:
            if label_kind == "none" or labels.get(name) is not None:
                names.append(name)
            else:
                skipped["no label"].append(name)
        spec = DatasetSpec(
            resolution=image_size.text(*images.output_shape(transform, *size)),
            channels=channels,
            label_kind=label_kind,
            c_dim=c_dim,
            source=str(Path(source).absolute()),
            extra={"transform": transform},
        )
        report = ConversionReport(dest=dest, spec=spec, num_files=len(src.names), skipped=skipped)

        def read(name: str) -> tuple[str, bytes | None]:
            """The file's bytes, None when it cannot be read (a zip member's CRC is checked at its end)."""
            try:
                return name, src.read(name)
            except Exception:  # noqa: BLE001 - any failure of a user's file is counted, never a crash
                return name, None

        def process(item: tuple[str, bytes | None]) -> tuple[str, Any]:
            name, data = item
            if data is None:
                return name, "unreadable"
            try:
                image = images.decode(data)
            except Exception as e:  # noqa: BLE001 - any failure of a user's file is counted, never a crash
                return name, ("truncated" if "truncated" in str(e) else "unreadable")
            image, was = images.to_channels(image, channels)
            resized = first_size is not None and image.size != first_size
            # another aspect ratio by a pixel at least: the height the width's scale gives is not the height
            squeezed = transform == "none" and round(image.size[1] * size[0] / image.size[0]) != size[1]
            pixels, upscaled = images.fit(image, transform, *size)
            return name, (images.encode_png(pixels), was, upscaled, resized, squeezed)

        def examples() -> Iterator[dict[str, Any]]:
            items = map(read, names)  # here, not on the pool: an LMDB transaction serves one thread
            bar = tqdm.tqdm(total=len(names), unit="file", disable=not progress, desc="converting")
            with bar:
                for name, result in _ordered_map(process, items, workers or os.cpu_count() or 1):
                    bar.update()
                    if isinstance(result, str):
                        skipped[result].append(name)
                        continue
                    png, was, upscaled, resized, squeezed = result
                    report.converted.update([was] if was else [])
                    report.upscaled += upscaled
                    report.resized += resized
                    report.squeezed += squeezed
                    example: dict[str, Any] = {"image": png}
                    if label_kind == "class":
                        example["label"] = int(labels[name])
                    elif label_kind == "vector":
                        example["label"] = np.asarray(labels[name], np.float32)
                    yield example
                    report.num_images += 1
                    if report.num_images == max_images:
                        break
            if report.num_images == 0:
                raise DatasetError(f"source {src.path} holds no readable image ({len(src.names)} files, "
                                   f"{report.skipped_text()}; expected image files that Pillow reads: .png, .jpg, "
                                   ".webp, .bmp, ...)")
            spec.extra.update(report.counts())

        write_dataset(dest, spec, examples(), overwrite=overwrite)
    return report
