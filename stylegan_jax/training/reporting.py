"""What a run shows (process 0 only): a status line per tick, a text log, TensorBoard scalars and image
grids (tensorboardX), and the same grids as PNG files (``reals.png``, ``fakes000040.png``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
from tensorboardX import SummaryWriter


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] float images -> uint8 exactly as NVIDIA converts them (x * 127.5 + 128, clamp, truncate)."""
    return np.clip(np.asarray(images, np.float32) * 127.5 + 128, 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, cols: int) -> np.ndarray:
    """[N, H, W, C] uint8 -> one [rows * H, cols * W, C] grid, row-major."""
    n, h, w, c = images.shape
    rows = -(-n // cols)
    padded = np.zeros((rows * cols, h, w, c), images.dtype)
    padded[:n] = images
    return padded.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def save_png(grid: np.ndarray, path: Path) -> None:
    """A uint8 grid [H, W, C] as PNG, grayscale when C == 1."""
    PIL.Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid).save(path)


class Reporter:
    """Writes logs and images on process 0; on other processes every call does nothing."""

    def __init__(self, workdir: Path, enabled: bool):
        self.workdir, self.enabled = workdir, enabled
        self.writer = SummaryWriter(str(workdir)) if enabled else None
        self.log = open(workdir / "log.txt", "a") if enabled else None  # noqa: SIM115

    def line(self, text: str, echo: bool = True) -> None:
        if self.enabled:
            if echo:
                print(text, flush=True)
            self.log.write(text + "\n")
            self.log.flush()

    def scalars(self, values: dict[str, float], nimg: int) -> None:
        if self.enabled:
            for name, value in values.items():
                self.writer.add_scalar(name, value, global_step=nimg // 1000)
            self.writer.flush()

    def grid(self, images: np.ndarray, cols: int, name: str, nimg: int | None) -> Path | None:
        """Save [N, H, W, C] images in [-1, 1] as ``<name>.png`` and, with ``nimg``, to TensorBoard."""
        if not self.enabled:
            return None
        grid = image_grid(to_uint8(images), cols)
        path = self.workdir / f"{name}.png"
        save_png(grid, path)
        if nimg is not None:
            self.writer.add_image("fakes", grid, global_step=nimg // 1000, dataformats="HWC")
            self.writer.flush()
        return path

    def close(self) -> None:
        if self.enabled:
            self.writer.close()
            self.log.close()
