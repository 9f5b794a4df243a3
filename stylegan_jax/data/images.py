"""Per-image work of dataset_tool: decode, convert to the dataset's channels, crop/resize, encode PNG.

Arrays are uint8, (H, W, C) with C = 1 (grayscale) or 3 (RGB).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import PIL.Image
import PIL.ImageOps

from stylegan_jax import image_size
from stylegan_jax.data.errors import DatasetError

TRANSFORMS = ("none", "center-crop", "center-crop-wide")
# zlib level 1 (0-9): encoding much faster than the default level 6 for slightly larger files, decoding as
# fast (figures: docs/performance.md, "Data").
PNG_COMPRESS_LEVEL = 1
#: The largest resolution (side in pixels) of a dataset: twice the largest StyleGAN networks'; an image of
#: 4096 x 4096 x 3 is 48 MiB in memory, and every worker holds a few.
MAX_RESOLUTION = 4096


def parse_resolution(text: str) -> tuple[int, int]:
    """`"256"` -> (256, 256), `"512x384"` -> (512, 384): (width, height) in pixels.

    Raises:
      DatasetError: not one or two positive integers.
    """
    try:
        h, w = image_size.parse(text)
    except image_size.ImageSizeError:
        raise DatasetError(f"bad --resolution {text!r}: expected N or WxH with positive integers, e.g. 256 or "
                           "512x384") from None
    return w, h


def output_shape(transform: str, width: int, height: int) -> tuple[int, int]:
    """(height, width) of the images `transform` makes at resolution (width, height).

    center-crop-wide letterboxes a width x height picture into a width x width square (NVIDIA's convention);
    the others keep width x height: a square power of two, or a small base doubled (`image_size.base`).

    Raises:
      DatasetError: a size the networks cannot make, or a side above `MAX_RESOLUTION`.
    """
    if transform not in TRANSFORMS:
        raise DatasetError(f"bad --transform {transform!r}: expected one of {', '.join(TRANSFORMS)}")
    if transform == "center-crop-wide":
        if height > width:
            raise DatasetError(f"--transform center-crop-wide needs height <= width, got {width}x{height}")
        height = width
    try:
        image_size.base(height, width)
    except image_size.ImageSizeError as e:  # given, or the first image's own size
        raise DatasetError(f"{e}; give --resolution (and --transform) such a size") from None
    if max(width, height) > MAX_RESOLUTION:
        raise DatasetError(f"resolution {image_size.text(height, width)} is above {MAX_RESOLUTION}, the largest side "
                           "this tool makes")
    return height, width


def quiet_large_images() -> None:
    """Silences Pillow's ``DecompressionBombWarning`` for this process: an image between once and twice
    ``PIL.Image.MAX_IMAGE_PIXELS`` (a large scan) is decoded all the same, and the tools' users gave it; over
    twice that, Pillow refuses to open it (``DecompressionBombError``), and the tools say so."""
    warnings.filterwarnings("ignore", category=PIL.Image.DecompressionBombWarning)


def decode(data: bytes) -> PIL.Image.Image:
    """Fully decodes an image file, applying its EXIF orientation.

    Raises:
      Exception: whatever Pillow raises for a broken file (OSError for truncated data, ...).
    """
    image = PIL.Image.open(io.BytesIO(data))
    image.load()
    return PIL.ImageOps.exif_transpose(image)


def to_channels(image: PIL.Image.Image, channels: int) -> tuple[PIL.Image.Image, str | None]:
    """Converts to mode "L" (channels=1) or "RGB" (channels=3).

    Returns:
      The converted image and what it was converted from ("16-bit", or a Pillow mode such as "RGBA",
      "P", "LA"), or None when no conversion was needed.
    """
    target = "L" if channels == 1 else "RGB"
    if image.mode == target:
        return image, None
    if image.mode.startswith("I"):  # 16-bit (or 32-bit int) grayscale: Pillow's convert would clip at 255.
        values = np.asarray(image, dtype=np.float64) / 257.0
        image = PIL.Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8))
        return image.convert(target), "16-bit"
    try:
        return image.convert(target), image.mode
    except ValueError:  # LAB and the like: Pillow converts them to L only through RGB
        return image.convert("RGB").convert(target), image.mode


def fit(image: PIL.Image.Image, transform: str, width: int, height: int) -> tuple[np.ndarray, bool]:
    """Crops and resizes (Lanczos) to the dataset's images.

    Args:
      image: mode "L" or "RGB".
      transform: "none" (resize to width x height), "center-crop" (largest centred width:height box, a
        square for square sizes, resized) or "center-crop-wide" (the same box, resized, letterboxed into
        width x width: NVIDIA's).
      width, height: resolution in pixels (validated by `output_shape`).

    Returns:
      uint8 (H, W, C) as `output_shape` says, and whether the picture was enlarged.
    """
    w, h = image.size
    if transform == "none":
        box = (0, 0, w, h)
    else:
        cw, ch = (round(h * width / height), h) if w * height > h * width else (w, round(w * height / width))
        cw, ch = max(cw, 1), max(ch, 1)  # a sliver of an image still gives a box of a pixel
        box = ((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)
    upscaled = box[2] - box[0] < width or box[3] - box[1] < height
    if box != (0, 0, w, h):  # crop, then resize, as NVIDIA's: Lanczos reads no pixel outside the box
        image = image.crop(box)
    if image.size != (width, height):
        image = image.resize((width, height), PIL.Image.Resampling.LANCZOS)
    pixels = np.asarray(image, dtype=np.uint8).reshape(height, width, -1)
    if transform == "center-crop-wide" and height != width:
        canvas = np.zeros((width, width, pixels.shape[2]), np.uint8)
        top = (width - height) // 2
        canvas[top : top + height] = pixels
        pixels = canvas
    return pixels, upscaled


def encode_png(pixels: np.ndarray) -> bytes:
    """uint8 (H, W, 1 or 3) -> PNG bytes."""
    image = PIL.Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()
