"""Tiny image folders for the data tests, written by the tests."""

import json
from pathlib import Path

import numpy as np
import PIL.Image


def save(path: Path, pixels: np.ndarray, **kwargs) -> Path:
    """Writes `pixels` (uint8/uint16, (H, W) or (H, W, C)) as an image file; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(pixels).save(path, **kwargs)
    return path


def random_pixels(seed: int, shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max, shape, dtype=dtype)


def write_mixed_folder(src: Path) -> Path:
    """11 files: 8 images that convert to 16x16 RGB (4 of them need a mode conversion, 1 an upscale) and
    3 that do not (truncated, not an image, text named .png)."""
    save(src / "a" / "good.png", random_pixels(0, (16, 16, 3)))
    save(src / "b" / "photo.jpg", random_pixels(1, (16, 16, 3)), quality=95)
    save(src / "wide.png", random_pixels(2, (16, 24, 3)))
    save(src / "gray.png", random_pixels(3, (16, 16)))
    save(src / "rgba.png", random_pixels(4, (16, 16, 4)))
    save(src / "gray16.png", random_pixels(5, (16, 16), np.uint16))
    save(src / "palette.png", random_pixels(6, (16, 16, 3)))
    PIL.Image.open(src / "palette.png").convert("P").save(src / "palette.png")
    save(src / "small.png", random_pixels(7, (8, 8, 3)))
    whole = (src / "a" / "good.png").read_bytes()
    (src / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (src / "notes.txt").write_text("not an image")
    (src / "fake.png").write_text("not a png either")
    return src


def write_labels(src: Path, labels: dict[str, object] | None) -> None:
    """NVIDIA's dataset.json: {"labels": [[name, label], ...]} (or null)."""
    pairs = None if labels is None else [[k, v] for k, v in labels.items()]
    (src / "dataset.json").write_text(json.dumps({"labels": pairs}))
