"""Built-in datasets, made offline from image data that installed packages ship.

- ``lfw-faces``: the 100 aligned Labeled Faces in the Wild faces of scikit-image's
  ``skimage/data/lfw_subset.npy`` (its first 100 entries; the other 100 are non-faces), 25x25 grayscale
  resized to 32x32 (Lanczos); unconditional. The quickstart's data.
- ``lfw-faces-portrait``: the same faces as 24x32 (W x H) portraits: the centred 3:4 box of each 25x25 face
  (the middle 18.75 columns, all rows) resized to 24x32 (Lanczos); the ``quickstart_portrait`` data.
- ``digits``, ``digits-16``: scikit-learn's 1,797 handwritten digits (8x8, ink 0..16) resized to 32x32 or
  16x16 (Lanczos), white ink on black, with their class (10 classes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from stylegan_jax import image_size
from stylegan_jax.data.images import encode_png
from stylegan_jax.data.tfds_builder import DatasetSpec, write_dataset

LFW_FACES = 100


def _resize(pixels: np.ndarray, width: int, height: int | None = None) -> np.ndarray:
    """float (h, w) in [0, 1] -> uint8 (height, width, 1) (height None: square), Lanczos in float then rounded,
    from the largest centred box of the output's aspect ratio (the whole picture when both are square)."""
    height = width if height is None else height
    h, w = pixels.shape
    box_w, box_h = min(w, h * width / height), min(h, w * height / width)
    box = ((w - box_w) / 2, (h - box_h) / 2, (w + box_w) / 2, (h + box_h) / 2)
    image = PIL.Image.fromarray(pixels.astype(np.float32), mode="F")
    resized = np.asarray(image.resize((width, height), PIL.Image.Resampling.LANCZOS, box=box))
    return np.clip(np.round(resized * 255), 0, 255).astype(np.uint8)[..., None]


def _lfw_faces(width: int = 32, height: int = 32) -> tuple[DatasetSpec, Iterator[dict[str, Any]]]:
    import skimage

    faces = np.load(Path(skimage.__file__).parent / "data" / "lfw_subset.npy")[:LFW_FACES]
    spec = DatasetSpec(resolution=image_size.text(height, width), channels=1,
                       source=f"scikit-image lfw_subset.npy[:{LFW_FACES}]")
    return spec, ({"image": encode_png(_resize(face, width, height))} for face in faces)


def _digits(side: int) -> tuple[DatasetSpec, Iterator[dict[str, Any]]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    spec = DatasetSpec(resolution=side, channels=1, label_kind="class", c_dim=10, source="scikit-learn load_digits()")
    examples = (
        {"image": encode_png(_resize(image / 16.0, side)), "label": int(label)}
        for image, label in zip(digits.images, digits.target, strict=True)
    )
    return spec, examples


BUILTINS: dict[str, Callable[[], tuple[DatasetSpec, Iterator[dict[str, Any]]]]] = {
    "lfw-faces": _lfw_faces,
    "lfw-faces-portrait": lambda: _lfw_faces(24, 32),
    "digits": lambda: _digits(32),
    "digits-16": lambda: _digits(16),
}


def build_builtin(name: str, dest: str | os.PathLike) -> Path:
    """Writes the built-in dataset `name` (a key of `BUILTINS`) to `dest`, atomically; returns `dest`.

    When another process finishes the same dataset first, its copy is kept and this one discarded.
    """
    spec, examples = BUILTINS[name]()
    dest = Path(dest)
    try:
        return write_dataset(dest, spec, examples)
    except Exception:
        if (dest / "dataset_info.json").is_file():
            return dest.absolute()
        raise
