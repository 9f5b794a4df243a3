"""Compare average power spectra of real and generated images, or of several generators (StyleGAN3's
avg_spectra.py, with its commands and flags).

    python -m stylegan_jax.avg_spectra stats --source ffhq256                    # prints --mean=... --std=...
    python -m stylegan_jax.avg_spectra calc --source ffhq256 --dest spectra/data.npz --mean 112.684 --std 69.509
    python -m stylegan_jax.avg_spectra calc --source sg3r.pkl --dest spectra/sg3r.npz --mean 112.684 \\
        --std 69.509 --num 70000
    python -m stylegan_jax.avg_spectra heatmap spectra/data.npz --save spectra/data.png
    python -m stylegan_jax.avg_spectra slices spectra/data.npz spectra/sg3r.npz --save spectra/slices.png

``--source`` is a network (an NVIDIA pickle or a snapshot directory; ``--num`` images, image i drawn as
NVIDIA draws it: ``z = RandomState(seed + i).randn(z_dim)``, then a uniform class from the same generator for a
conditional network, random noise, no truncation) or a dataset (a name or directory; all its images, or a
random ``--num`` of them chosen by ``--seed``). `stylegan_jax.spectra` says what ``calc`` computes; its
``.npz`` files are NVIDIA's, so spectra of either codebase can be drawn together. ``heatmap`` and ``slices``
need matplotlib (the ``plots`` extra); without ``--save`` they open a window. ``calc`` takes square images
only; ``stats`` takes W x H ones too.

Bad flags and files are one line on stderr and exit status 1, before anything is written.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from stylegan_jax import image_size
from stylegan_jax.atomic import atomic_write
from stylegan_jax.cli import (
    MAX_SEED,
    ArgumentParser,
    UsageError,
    add_runtime_flags,
    finite_float,
    nonnegative_float,
    output_file,
    parse_seed,
    path_arg,
    positive_float,
    positive_int,
    read_npz,
    run,
)
from stylegan_jax.data import DatasetError, make_iterator, read_dataset_info, resolve_dataset
from stylegan_jax.network_snapshot import INDEX, NetworkLoadError, load_network
from stylegan_jax.runtime import configure_runtime
from stylegan_jax.sampling import pad_rows, started
from stylegan_jax.spectra import Moments, full_spectrum, heatmap, kaiser_window, power_sum

PROG = "python -m stylegan_jax.avg_spectra"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see ``--help``."""
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].replace("\n", " "),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = p.add_subparsers(dest="command", required=True, metavar="{stats,calc,heatmap,slices}")

    def source_flags(q: argparse.ArgumentParser) -> None:
        add_runtime_flags(q)
        q.add_argument("--source", required=True, type=path_arg,
                       help="network pickle (.pkl) or snapshot directory, or dataset name or directory")
        q.add_argument("--num", type=positive_int, help="images to process (default: all of a dataset; "
                       "required for a network)")
        q.add_argument("--seed", type=parse_seed, default=0, help="seed of the images chosen (default 0)")
        q.add_argument("--batch-size", type=positive_int, default=8, help="images per jitted batch (default 8)")

    stats = commands.add_parser("stats", help="the source's mean and standard deviation, which calc needs")
    source_flags(stats)
    calc = commands.add_parser("calc", help="the average power spectrum, stored in a .npz file")
    source_flags(calc)
    calc.add_argument("--dest", required=True, type=output_file, help="where to store the result (.npz)")
    calc.add_argument("--mean", required=True, type=finite_float, help="dataset mean for whitening")
    calc.add_argument("--std", required=True, type=positive_float, help="dataset standard deviation for whitening")
    calc.add_argument("--beta", type=nonnegative_float, default=8.0, help="Kaiser window shape (default 8)")
    calc.add_argument("--interp", type=positive_int, default=4, help="frequency-domain interpolation factor "
                      "(default 4)")

    def plot_flags(q: argparse.ArgumentParser, smooth: float) -> None:
        q.add_argument("--save", type=output_file, help="save the plot to this file (.png, .pdf...) and exit")
        q.add_argument("--dpi", type=positive_float, default=100.0, help="figure resolution (default 100)")
        q.add_argument("--smooth", type=nonnegative_float, default=smooth, help=f"amount of smoothing "
                       f"(default {smooth:g})")

    hmap = commands.add_parser("heatmap", help="draw one .npz file's spectrum as a 2-D heatmap")
    hmap.add_argument("npz_file", type=path_arg)
    plot_flags(hmap, 1.25)
    slices = commands.add_parser("slices", help="draw 0 and 45 degree slices of one or more .npz files")
    slices.add_argument("npz_files", nargs="+", type=path_arg)
    plot_flags(slices, 0.0)
    return p.parse_args(argv)


def is_network(source: str) -> bool:
    """A pickle (``.pkl``, or any file but a .zip) or a snapshot directory, rather than a dataset."""
    if source.endswith(".zip"):
        return False  # NVIDIA's datasets are zips: ours are directories, and the dataset error says so
    return source.endswith(".pkl") or os.path.isfile(source) or os.path.isfile(os.path.join(source, INDEX))


def _square(height: int, width: int, what: str) -> int:
    if height != width:
        raise UsageError(f"{what} has {width}x{height} images; average spectra are taken of square images only")
    return height


def network_images(source: str, num: int | None, seed: int, batch_size: int
                   ) -> tuple[tuple[int, int], int, Iterator[np.ndarray]]:
    """((H, W), the batch size: ``batch_size`` or ``num`` if fewer, uint8 image batches [<= that, H, W, C]) of
    ``num`` images of the network's G_ema."""
    import jax

    from stylegan_jax.metrics.features import generate_uint8

    if num is None:
        raise UsageError("--num is required when --source is a network")
    if seed + num - 1 > MAX_SEED:
        raise UsageError(f"--seed {seed} --num {num}: image i draws with seed + i, which must stay <= {MAX_SEED}")
    network = load_network(source)
    G = network.generator
    size = image_size.parse(G.img_resolution)
    generate = jax.jit(functools.partial(generate_uint8, G))
    batch_size = min(batch_size, num)  # no rows past the images

    def batches() -> Iterator[np.ndarray]:
        for start in range(0, num, batch_size):
            count = min(batch_size, num - start)
            z, c = np.zeros((batch_size, G.z_dim), np.float32), np.zeros((batch_size, G.c_dim), np.float32)
            for i in range(count):
                rnd = np.random.RandomState(seed + start + i)  # NVIDIA's draws: z, then a class from the same
                z[i] = rnd.randn(G.z_dim)
                if G.c_dim:
                    c[i, rnd.randint(G.c_dim)] = 1
            key = jax.random.fold_in(jax.random.key(seed), start)
            yield np.asarray(generate(network.G_ema, z, c, key))[:count]

    return size, batch_size, batches()


def dataset_images(source: str, num: int | None, seed: int, batch_size: int
                   ) -> tuple[int, tuple[int, int], int, Iterator[np.ndarray]]:
    """(image count, (H, W), the batch size: ``batch_size`` or the count if fewer, uint8 image batches) of the
    dataset in stored order: all of it, or a random ``num`` of its images chosen by ``seed`` as NVIDIA's
    ``max_size`` chooses them (`data.subset_indices`)."""
    from stylegan_jax.images import to_uint8

    path = resolve_dataset(source)
    info = read_dataset_info(path)
    size = image_size.parse(info["resolution"])
    if num is not None and num > info["num_images"]:
        raise UsageError(f"--num {num}: dataset {path} holds only {info['num_images']} images")
    total = info["num_images"] if num is None else num
    batch_size = min(batch_size, total)

    def batches() -> Iterator[np.ndarray]:
        done = 0
        for batch in make_iterator(path, batch_size=batch_size, shuffle=False, num_epochs=1, drop_remainder=False,
                                   max_size=num, random_seed=seed):
            images = np.asarray(to_uint8(batch["image"]))[: total - done]
            yield images
            done += len(images)
            if done == total:
                return

    return total, size, batch_size, batches()


def source_images(args: argparse.Namespace) -> tuple[int, tuple[int, int], int, Iterator[np.ndarray]]:
    """(image count, (H, W), the batch size: ``--batch-size`` or the count if fewer, uint8 batches) of
    ``--source``."""
    if is_network(args.source):
        return args.num, *network_images(args.source, args.num, args.seed, args.batch_size)
    return dataset_images(args.source, args.num, args.seed, args.batch_size)


def _progress(total: int) -> tqdm:
    return tqdm(total=total, unit="img", file=sys.stderr)


def stats(args: argparse.Namespace) -> None:
    """Prints the flags ``calc`` needs: ``--mean=<m> --std=<s>`` of every pixel value of the source."""
    total, _, _, batches = source_images(args)
    moments = Moments()
    with _progress(total) as bar:
        for images in batches:
            moments.add(images)
            bar.update(len(images))
    mean, std = moments.mean_std()
    print(f"--mean={mean:g} --std={std:g}")


def calc(args: argparse.Namespace) -> None:
    """Writes the source's average power spectrum to ``--dest`` (NVIDIA's .npz keys)."""
    import jax

    if not args.dest.endswith(".npz"):
        raise UsageError(f"--dest {args.dest}: expected a file name ending in .npz")
    total, (height, width), batch_size, batches = source_images(args)
    size = _square(height, width, f"--source {args.source}")
    spectrum_size = size * args.interp
    window = jax.numpy.asarray(kaiser_window(size, args.beta), jax.numpy.float32)
    step = jax.jit(power_sum, static_argnames="spectrum_size")
    try:
        half = np.zeros((spectrum_size, spectrum_size // 2 + 1), np.float64)
        powers = ((len(images), np.asarray(step(pad_rows(images, batch_size),
                                                (np.arange(batch_size) < len(images)).astype(np.float32), args.mean,
                                                args.std, window, spectrum_size=spectrum_size), np.float64))
                  for images in batches)
        powers = started(powers)  # a batch the device cannot hold fails before the progress bar shows
        with _progress(total) as bar:
            for count, power in powers:
                half += power
                bar.update(count)
        spectrum = full_spectrum(half) / total
    except (MemoryError, jax.errors.JaxRuntimeError) as e:
        if not isinstance(e, MemoryError) and "RESOURCE_EXHAUSTED" not in str(e):
            raise
        # the host's sums do not depend on the batch: a smaller one helps only where the device ran out
        batched = not isinstance(e, MemoryError) and batch_size > 1
        raise UsageError(f"--interp {args.interp}: spectra of {spectrum_size}x{spectrum_size} ({size} pixels x "
                         f"{args.interp}){f' in batches of {batch_size}' if batched else ''} need more memory than "
                         f"there is; use a smaller --interp{' or --batch-size' if batched else ''}") from None
    _save_npz(args.dest, spectrum=spectrum, image_size=np.int64(size))


def _save_npz(dest: str, **arrays: np.ndarray) -> None:
    """``np.savez`` to ``dest`` whole or not at all (`atomic_write`), its folder made if needed."""
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    with atomic_write(dest) as f:
        np.savez(f, **arrays)


def load_spectrum(path: str) -> tuple[np.ndarray, int]:
    """(spectrum [S, S] float64, image size) of a ``calc`` .npz file (ours or NVIDIA's); anything else is a
    `UsageError` naming it."""
    arrays = read_npz(path, "a spectrum that avg_spectra calc writes")
    if not {"spectrum", "image_size"} <= set(arrays):
        raise UsageError(f"{path}: holds {sorted(arrays)}, not the spectrum and image_size of avg_spectra calc")
    spectrum, size = np.asarray(arrays["spectrum"], np.float64), arrays["image_size"]
    if size.shape != () or not np.issubdtype(size.dtype, np.integer) or size < 1:
        raise UsageError(f"{path}: image_size is {size!r}; expected a positive integer")
    if spectrum.ndim != 2 or spectrum.shape[0] != spectrum.shape[1] or spectrum.shape[0] < int(size):
        raise UsageError(f"{path}: spectrum has shape {list(spectrum.shape)}; expected [S, S] with S >= "
                         f"image_size {int(size)}")
    if not (np.isfinite(spectrum).all() and (spectrum > 0).all()):  # its decibels are drawn
        raise UsageError(f"{path}: the spectrum holds values that are not finite positive powers (NaN, inf, zero "
                         "or negative); expected what avg_spectra calc writes")
    return spectrum, int(size)


def _heatmap(args: argparse.Namespace, spectrum: np.ndarray, size: int) -> np.ndarray:
    """`spectra.heatmap` with ``--smooth``, which must not exceed the image size (a wider blur only flattens the
    map, and SciPy refuses the largest)."""
    if args.smooth > size:
        raise UsageError(f"--smooth {args.smooth:g}: expected at most the image size, {size} (the map is flat past it)")
    return heatmap(spectrum, size, args.smooth)


#: matplotlib's built-in backends that draw to files only: pyplot's ``show`` does nothing with them.
FILE_ONLY_BACKENDS = ("agg", "cairo", "pdf", "pgf", "ps", "svg", "template")
MAX_SIDE = 2**16  # pixels: what matplotlib's Agg canvas draws on a side


def _figure(args: argparse.Namespace, figsize: tuple[float, float]):
    """A figure to draw on: a plain Agg figure when saving (no display needed), else pyplot's (shown); without
    ``--save`` and without a display (pyplot on a file-only backend) a `UsageError` asking for ``--save``."""
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError(f"{args.command} draws with matplotlib, which is not installed: pip install matplotlib (or "
                         "the plots extra)")
    pixels = [round(side * args.dpi) for side in figsize]
    if not (min(pixels) >= 1 and max(pixels) < MAX_SIDE):
        raise UsageError(f"--dpi {args.dpi:g}: the {figsize[0]:g}x{figsize[1]:g}-inch figure would be {pixels[0]}x"
                         f"{pixels[1]} pixels; expected 1 to {MAX_SIDE - 1} a side")
    if args.save:
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, dpi=args.dpi, tight_layout=True)
        formats = fig.canvas.get_supported_filetypes()
        if os.path.splitext(args.save)[1][1:].lower() not in formats:
            raise UsageError(f"--save {args.save}: expected a file name ending in one of .{', .'.join(formats)}")
        return fig
    import matplotlib.pyplot as plt

    if plt.get_backend().lower() in FILE_ONLY_BACKENDS:
        raise UsageError(f"{args.command}: no display to show the figure on (matplotlib backend "
                         f"{plt.get_backend()!r}); pass --save FILE")
    return plt.figure(figsize=figsize, dpi=args.dpi, tight_layout=True)


def _finish(args: argparse.Namespace, fig) -> None:
    if args.save:
        folder = new = os.path.dirname(os.path.abspath(args.save))
        while not os.path.exists(os.path.dirname(new)):  # the outermost folder this call creates, if any
            new = os.path.dirname(new)
        made = not os.path.exists(new)
        os.makedirs(folder, exist_ok=True)
        try:
            fig.savefig(args.save)
        except MemoryError:
            if made:
                shutil.rmtree(new, ignore_errors=True)
            raise UsageError(f"--dpi {args.dpi:g}: the figure needs more memory than there is; use a smaller "
                             "--dpi") from None
    else:
        import matplotlib.pyplot as plt

        plt.show()


def draw_heatmap(args: argparse.Namespace) -> None:
    """NVIDIA's heatmap: filled contours from -40 to 20 dB every 5 over -size/2 .. size/2 on both axes."""
    spectrum, size = load_spectrum(args.npz_file)
    hmap = _heatmap(args, spectrum, size)
    fig = _figure(args, (6, 4.8))
    ax = fig.add_subplot()
    freqs = np.linspace(-0.5, 0.5, num=hmap.shape[0], endpoint=True) * size
    ticks = np.linspace(freqs[0], freqs[-1], num=5, endpoint=True)
    levels = np.linspace(-40, 20, num=13, endpoint=True)
    ax.set_xlim(ticks[0], ticks[-1])
    ax.set_ylim(ticks[0], ticks[-1])
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    filled = ax.contourf(freqs, freqs, hmap, levels=levels, extend="both", cmap="Blues")
    ax.set_aspect("equal")
    fig.colorbar(filled, ax=ax, ticks=levels)
    ax.contour(freqs, freqs, hmap, levels=levels, extend="both", linestyles="solid", linewidths=1,
               colors="midnightblue", alpha=0.2)
    _finish(args, fig)


def draw_slices(args: argparse.Namespace) -> None:
    """NVIDIA's slices: each file's spectrum in dB along the 0 and 45 degree lines from the zero frequency."""
    cases = []
    for path in args.npz_files:
        spectrum, size = load_spectrum(path)
        cases.append((os.path.splitext(os.path.basename(path))[0], _heatmap(args, spectrum, size), size))
    if len({(size, hmap.shape[0]) for _, hmap, size in cases}) > 1:
        found = ", ".join(f"{path}: image_size {size}, spectrum {hmap.shape[0] - 1}"
                          for path, (_, hmap, size) in zip(args.npz_files, cases, strict=True))
        raise UsageError(f"the .npz files must have one resolution ({found})")
    size, bins = cases[0][2], cases[0][1].shape[0] - 1  # the spectrum's S bins per side
    # From the zero frequency (bin S // 2 of the shifted map) to the last positive one: the repeated first
    # column (+1/2 cycle per pixel) for even S; for odd S, which has no such bin, S // 2 bins on (NVIDIA's
    # slices take one point more there, and fail).
    centre = bins // 2
    along = np.arange(centre, centre + bins // 2 + 1)
    fig = _figure(args, (12, 4.6))
    yticks = np.linspace(-50, 30, num=9, endpoint=True)
    for i, (title, top, pick) in enumerate([("0\u00b0 slice", size / 2, lambda h: h[centre, along]),
                                            ("45\u00b0 slice", size / np.sqrt(2), lambda h: h[along, along])]):
        ax = fig.add_subplot(1, 2, i + 1)
        freqs = np.linspace(0, top * (bins // 2 * 2) / bins, num=bins // 2 + 1, endpoint=True)
        xticks = np.linspace(freqs[0], freqs[-1], num=9, endpoint=True)
        xticks = xticks if i == 0 else np.round(xticks)
        ax.set_title(title)
        ax.set_xlim(xticks[0], xticks[-1])
        ax.set_ylim(yticks[0], yticks[-1])
        ax.set_xticks(xticks)
        ax.set_yticks(yticks)
        for label, hmap, _ in cases:
            ax.plot(freqs, pick(hmap), label=label)
        ax.grid()
        ax.legend(loc="upper right")
    _finish(args, fig)


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 done, 1 user error)."""
    args = parse_args(argv)
    if args.command in ("stats", "calc"):
        configure_runtime(cpu_fusion=args.cpu_fusion)
    command = {"stats": stats, "calc": calc, "heatmap": draw_heatmap, "slices": draw_slices}[args.command]
    return run("avg_spectra", lambda: command(args), UsageError, NetworkLoadError, DatasetError)


if __name__ == "__main__":
    sys.exit(main())
