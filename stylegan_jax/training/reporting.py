"""What a run shows (process 0 only): a status line per tick, a text log, TensorBoard scalars and image
grids (tensorboardX), and the same grids as PNG files (``reals.png``, ``fakes000040.png``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tensorboardX import SummaryWriter

from stylegan_jax.images import image_grid, save_png, to_uint8


class Reporter:
    """Writes logs and images on process 0; on other processes every call does nothing."""

    def __init__(self, workdir: Path, enabled: bool):
        self.workdir, self.enabled = workdir, enabled
        self._writer: SummaryWriter | None = None
        self.log = open(workdir / "log.txt", "a") if enabled else None  # noqa: SIM115

    @property
    def writer(self) -> SummaryWriter:
        """TensorBoard's event writer, made at the first event: a start that reports none (a finished run run
        again) leaves no empty events file."""
        if self._writer is None:
            self._writer = SummaryWriter(str(self.workdir))
        return self._writer

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
        grid = image_grid(np.asarray(to_uint8(images)), cols)
        path = self.workdir / f"{name}.png"
        save_png(grid, path)
        if nimg is not None:
            self.writer.add_image("fakes", grid, global_step=nimg // 1000, dataformats="HWC")
            self.writer.flush()
        return path

    def close(self) -> None:
        if self.enabled:
            if self._writer is not None:
                self._writer.close()
            self.log.close()
