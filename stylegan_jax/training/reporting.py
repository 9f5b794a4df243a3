"""What a run shows (process 0 only): a status line per tick, a text log, NVIDIA's ``stats.jsonl``, TensorBoard
scalars and image grids (tensorboardX), and the same grids as PNG files (``reals.png``, ``fakes000040.png``)."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from tensorboardX import SummaryWriter

from stylegan_jax.atomic import atomic_write
from stylegan_jax.images import image_grid, save_png, to_uint8

#: One JSON object per tick, as NVIDIA's training loop writes it: ``{name: {"num", "mean", "std"}, ...,
#: "timestamp": seconds since the epoch}``.
STATS_FILE = "stats.jsonl"


#: The statistics of `STATS_FILE` that the loop measures at each tick, not the phases' reports.
TICK_MEASURES = ("Progress/", "Timing/", "Resources/", "timestamp")


def keep_stats_until(path: Path, nimg: int) -> dict[str, dict]:
    """Drop the lines of ``path`` (a `STATS_FILE`) of ticks past ``nimg`` images (and a line cut short by a
    kill), so that a run resumed from the checkpoint at ``nimg`` writes each tick once, as a run that never
    stopped. Returns the phases' statistics of the last line kept (without `TICK_MEASURES`), what the
    next tick repeats of those it does not report (`stats.tick_stats`), or {}."""
    if not path.exists():
        return {}
    text = path.read_text()
    kept, last = [], {}
    for line in text.splitlines():
        try:
            stats = json.loads(line)
            kimg = stats["Progress/kimg"]["mean"]
        except (ValueError, KeyError, TypeError):
            continue
        if round(kimg * 1000) <= nimg:
            kept.append(line + "\n")
            last = {k: v for k, v in stats.items() if not k.startswith(TICK_MEASURES)}
    if "".join(kept) != text:  # else untouched: a run that resumes where it stopped rewrites nothing
        with atomic_write(path, "w") as f:  # a kill during the rewrite keeps every tick
            f.write("".join(kept))
    return last


def format_kimg(nimg: int) -> str:
    """``nimg`` images in kimg with every digit they have (whole images: 3 decimals at most), ``0.048``,
    ``1000.032``, ``25``; the tick line keeps NVIDIA's one decimal."""
    return f"{nimg / 1000:.3f}".rstrip("0").rstrip(".")


def resident_memory_gb() -> float:
    """This process's resident memory in GiB (NVIDIA's ``Resources/cpu_mem_gb``); the peak where the current
    value is not readable (outside Linux)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return peak / (2**30 if sys.platform == "darwin" else 2**20)


class Reporter:
    """Writes logs and images on process 0; on other processes every call does nothing."""

    def __init__(self, workdir: Path, enabled: bool, start_nimg: int = 0):
        """``start_nimg``: where the run starts (the restored checkpoint's images); the ticks of
        `STATS_FILE` past it are dropped (`keep_stats_until`), TensorBoard hides the events of its kimg steps
        past it (``purge_step``: what a killed run wrote after its checkpoint, which the resumed run writes
        again; all of them for a new run: an attempt killed before its first checkpoint), and ``last_stats``
        holds the phases' statistics of the tick it ends with ({} for a new run and on other processes).
        ``log.txt`` keeps every line, a history of the starts and stops."""
        self.workdir, self.enabled = workdir, enabled
        self._purge_step = start_nimg // 1000 + 1 if start_nimg else 0
        self._writer: SummaryWriter | None = None
        self.log = open(workdir / "log.txt", "a") if enabled else None  # noqa: SIM115
        self.stats_file, self.last_stats = None, {}
        if enabled:
            self.last_stats = keep_stats_until(workdir / STATS_FILE, start_nimg)
            self.stats_file = open(workdir / STATS_FILE, "a")  # noqa: SIM115 - closed in close()

    @property
    def writer(self) -> SummaryWriter:
        """TensorBoard's event writer, made at the first event: a start that reports none (a finished run run
        again) leaves no empty events file."""
        if self._writer is None:
            self._writer = SummaryWriter(str(self.workdir), purge_step=self._purge_step)
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

    def stats(self, stats: dict[str, dict[str, float]], nimg: int) -> None:
        """One tick's statistics (``{name: {"num", "mean", "std"}}``) as a line of `STATS_FILE` and their
        means as TensorBoard scalars."""
        if self.enabled:
            self.stats_file.write(json.dumps({**stats, "timestamp": time.time()}) + "\n")
            self.stats_file.flush()
            self.scalars({name: value["mean"] for name, value in stats.items()}, nimg)

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
            self.stats_file.close()
