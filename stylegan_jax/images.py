"""Images at the package's edge: [-1, 1] floats -> uint8 as NVIDIA converts them, grids, PNG files, MP4 videos."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image

from stylegan_jax.atomic import atomic_write

IMAGE_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def to_uint8(images: jax.Array | np.ndarray) -> jax.Array:
    """[-1, 1]-ish floats -> uint8 exactly as NVIDIA: ``(x * 127.5 + 128).clamp(0, 255)``, truncated."""
    return jnp.clip(images * 127.5 + 128, 0, 255).astype(jnp.uint8)


def image_grid(images: np.ndarray, columns: int) -> np.ndarray:
    """[N, H, W, C] -> one [rows*H, columns*W, C] image, row-major, black where there is no image."""
    n, h, w, c = images.shape
    rows = -(-n // columns)
    padded = np.zeros((rows * columns, h, w, c), images.dtype)
    padded[:n] = images
    return padded.reshape(rows, columns, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, columns * w, c)


def save_png(image: np.ndarray, path: str | os.PathLike) -> None:
    """uint8 [H, W, C] -> PNG at ``path``, whole or not at all (`atomic_write`: a run killed while it encodes a
    large grid leaves no truncated file that its resume would take for written); one channel is written as a
    grayscale PNG."""
    if image.shape[-1] not in IMAGE_MODES:
        raise ValueError(f"cannot write a {image.shape[-1]}-channel image as PNG")
    with atomic_write(path) as f:
        PIL.Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image, IMAGE_MODES[image.shape[-1]]).save(
            f, format="PNG")


def remove_frames_from(directory: str | os.PathLike, first: int, digits: int) -> None:
    """Remove ``frame<i>.png`` (i zero-padded to ``digits``) for i = first, first + 1, ... while they exist:
    what an earlier, longer sequence left in ``directory`` past the ``first`` frames just written (said on
    stderr)."""
    i = first
    while os.path.isfile(path := os.path.join(directory, f"frame{i:0{digits}d}.png")):
        os.remove(path)
        i += 1
    if i > first:
        print(f"removed {i - first} frames of an earlier, longer sequence from {directory} (frame{first:0{digits}d}."
              f"png on)", file=sys.stderr)


def has_video_encoder() -> bool:
    """Whether imageio's ffmpeg plugin is installed (the ``video`` extra): whether `video_writer` writes MP4s."""
    return importlib.util.find_spec("imageio_ffmpeg") is not None


@contextlib.contextmanager
def video_writer(path: str, fps: int, **options: str) -> Iterator[VideoWriter | None]:
    """An MP4 writer (`VideoWriter`) if `has_video_encoder`; None otherwise. ``options``: imageio's ffmpeg
    options (``codec``, ``bitrate``)."""
    if not has_video_encoder():
        yield None
        return
    import imageio.v2 as imageio

    with imageio.get_writer(path, fps=fps, macro_block_size=1, **options) as writer:
        yield VideoWriter(writer)


def report_frames_without_video(count: int, folder: str) -> None:
    """Tells the user on stderr that no MP4 was written (no video encoder installed) and where the ``count``
    frames went as PNGs (what a tool does when `video_writer` gives None)."""
    print("MP4 not written: no video encoder installed (pip install 'stylegan_jax[video]' adds imageio's "
          f"ffmpeg plugin); the {count} frames are PNGs in {folder}", file=sys.stderr)


class VideoWriter:
    """``append_data(uint8 frame [H, W, C])`` for imageio's writer, which takes grayscale as [H, W]."""

    def __init__(self, writer) -> None:
        self._writer = writer

    def append_data(self, frame: np.ndarray) -> None:
        self._writer.append_data(frame[..., 0] if frame.shape[-1] == 1 else frame)
