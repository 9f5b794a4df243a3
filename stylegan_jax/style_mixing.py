"""Style mixing: the ws of ``--styles`` (coarse layers by default) from a column seed, the rest from a row
seed, as NVIDIA's style_mixing.py.

    python -m stylegan_jax.style_mixing --network ffhq.pkl --rows 85,100,75 --cols 55,821 --outdir out

Writes ``{row}-{col}.png`` for every pair, ``{seed}-{seed}.png`` for every seed unmixed, and ``grid.png``
(column seeds across the top, row seeds down the left, mixes inside). ``--row-ws`` and ``--col-ws`` add the
ws of projector outputs (``projected_w.npz``) as rows or columns, after the seeds; they are named ``proj00``,
``proj01``... in the order given (rows' files first), as ``generate --projected-w`` names its images, and take
the noise of seed 0. All images are held in memory for the
grid, so a grid that would need more than `stylegan_jax.cli.MAX_GRID_BYTES` is refused. Bad flags and files are
one line on stderr and exit status 1, before anything is written.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Mapping, Sequence

import numpy as np

from stylegan_jax import image_size
from stylegan_jax.cli import (
    ArgumentParser,
    UsageError,
    add_network_flags,
    add_runtime_flags,
    check_grid,
    check_output_files,
    load_sampled_network,
    path_arg,
    run,
)
from stylegan_jax.images import save_png
from stylegan_jax.network_snapshot import Network, NetworkLoadError
from stylegan_jax.nn.mapping import truncate
from stylegan_jax.runtime import configure_runtime
from stylegan_jax.sampling import (
    class_labels,
    load_projected_ws,
    map_latents,
    parse_seeds,
    seed_latents,
    synthesize_images,
)

#: A row or column: a seed, or the name of projected ws.
Source = int | str
#: The column seeds' layers without --styles (NVIDIA's style_mixing.py: the coarse styles of a 1024 px network).
DEFAULT_STYLES = list(range(7))


def mix_styles(row_ws: np.ndarray, col_ws: np.ndarray, styles: Sequence[int]) -> np.ndarray:
    """ws [num_ws, w_dim] of the row seed with the layers in ``styles`` taken from the column seed."""
    mixed = np.array(row_ws, copy=True)
    mixed[list(styles)] = col_ws[list(styles)]
    return mixed


def style_mix(network: Network, rows: Sequence[Source], cols: Sequence[Source], styles: Sequence[int],
              truncation_psi: float = 1.0, truncation_cutoff: int | None = None, class_idx: int | None = None,
              noise_mode: str = "const", batch_size: int = 16,
              projected: Mapping[str, np.ndarray] | None = None) -> dict[tuple[Source, Source], np.ndarray]:
    """{(row, col): uint8 image} for every pair, plus (source, source) for each row and column unmixed. Rows
    and columns are seeds (mapped with the truncation and class) or names of ``projected`` ws [num_ws, w_dim]
    (used as they are). Flags that do not fit the network (styles, class, grid size) are a `UsageError`."""
    G = network.generator
    if not styles or any(not 0 <= s < G.num_ws for s in styles):  # stops at the first bad one
        raise UsageError(f"--styles must lie in 0..{G.num_ws - 1} (the network has {G.num_ws} ws)")
    image_bytes = math.prod(image_size.parse(G.img_resolution)) * G.img_channels
    check_grid((len(rows) + 1) * (len(cols) + 1), 2 * image_bytes + G.num_ws * G.w_dim * 4, "--rows x --cols")
    seeds = sorted({s for s in [*rows, *cols] if isinstance(s, int)})
    names = list(dict.fromkeys(s for s in [*rows, *cols] if isinstance(s, str)))
    ws: dict[Source, np.ndarray] = {name: (projected or {})[name] for name in names}
    if seeds:
        z = seed_latents(seeds, G.z_dim)
        mapped = map_latents(G, network.G_ema, z, class_labels(G.c_dim, class_idx, len(seeds)), 1.0)
        # NVIDIA's style_mixing.py truncates after the mapping, psi 1 included (its mapping skips psi 1)
        mapped = truncate(mapped, network.G_ema["buffers"]["mapping"]["w_avg"], truncation_psi, truncation_cutoff)
        ws.update(zip(seeds, np.asarray(mapped), strict=True))
    keys = [(s, s) for s in [*seeds, *names]] + [(r, c) for r in rows for c in cols]
    batch = np.stack([ws[r] if r == c else mix_styles(ws[r], ws[c], styles) for r, c in keys])
    noise_seeds = [r if isinstance(r, int) else 0 for r, _ in keys]
    images = synthesize_images(G, network.G_ema, batch, noise_mode, noise_seeds, batch_size)
    return dict(zip(keys, images, strict=True))


def grid(images: dict[tuple[Source, Source], np.ndarray], rows: Sequence[Source],
         cols: Sequence[Source]) -> np.ndarray:
    """NVIDIA's layout: a black corner, column seeds' images across the top, row seeds' down the left."""
    h, w, c = next(iter(images.values())).shape
    canvas = np.zeros(((len(rows) + 1) * h, (len(cols) + 1) * w, c), np.uint8)
    for i, r in enumerate([None, *rows]):
        for j, col in enumerate([None, *cols]):
            if r is not None or col is not None:
                key = (col, col) if r is None else (r, r) if col is None else (r, col)
                canvas[i * h:(i + 1) * h, j * w:(j + 1) * w] = images[key]
    return canvas


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see ``--help``."""
    p = ArgumentParser(prog="python -m stylegan_jax.style_mixing", description=__doc__.split("\n")[0])
    add_network_flags(p, family_truncation=False)  # NVIDIA's StyleGAN1 figure mixes untruncated ws too
    add_runtime_flags(p)
    p.add_argument("--rows", type=parse_seeds, default=[], help="row seeds (their fine styles), e.g. 85,100,75")
    p.add_argument("--cols", type=parse_seeds, default=[], help="column seeds (their --styles layers)")
    p.add_argument("--row-ws", type=path_arg, nargs="+", action="extend", default=[], metavar="FILE",
                   help="projected_w.npz files whose ws are further rows")
    p.add_argument("--col-ws", type=path_arg, nargs="+", action="extend", default=[], metavar="FILE",
                   help="projected_w.npz files whose ws are further columns")
    p.add_argument("--styles", type=parse_styles, help="ws taken from the column seed (default 0-6)")
    args = p.parse_args(argv)
    for axis in ("rows", "cols"):
        if not getattr(args, axis) and not getattr(args, axis[:3] + "_ws"):
            p.error(f"no {axis[:-1]}s: give --{axis} seeds or --{axis[:3]}-ws files")
    if not args.rows and not args.cols:  # projected ws only: nothing is mapped, so nothing takes these
        given = [flag for flag, value in (("--class", args.class_idx), ("--trunc-cutoff", args.truncation_cutoff),
                                          ("--trunc", None if args.truncation_psi == 1.0 else args.truncation_psi))
                 if value is not None]
        if given:
            p.error(f"{given[0]} applies to seeds (--rows, --cols), not to --row-ws/--col-ws, whose ws are used "
                    "as they are")
    return args


def parse_styles(text: str) -> list[int]:
    """``--styles``: layer indices as a seed list is written (e.g. 0-6 or 0,2,4)."""
    try:
        return list(parse_seeds(text))
    except argparse.ArgumentTypeError as e:
        if not str(e).startswith("not a seed list"):  # a reversed range: its own advice
            raise
        raise argparse.ArgumentTypeError(f"not a list of layers: {text!r} (use e.g. 0-6 or 0,2,4)") from None


def projected_sources(network: Network, row_files: Sequence[str],
                      col_files: Sequence[str]) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """(row names, column names, {name: ws [num_ws, w_dim]}) of the ws in the ``--row-ws`` and ``--col-ws``
    files, named ``proj00``, ``proj01``... in order."""
    G = network.generator
    named: dict[str, np.ndarray] = {}
    out: list[list[str]] = []
    for files in (row_files, col_files):
        out.append([])
        for path in files:
            for w in load_projected_ws(path, G.num_ws, G.w_dim):
                name = f"proj{len(named):02d}"
                named[name] = w
                out[-1].append(name)
    return out[0], out[1], named


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 done, 1 user error)."""
    args = parse_args(argv)
    configure_runtime(cpu_fusion=args.cpu_fusion)

    def body() -> None:
        network = load_sampled_network(args, needs_mapping=True)
        row_names, col_names, projected = projected_sources(network, args.row_ws, args.col_ws)
        rows, cols = [*args.rows, *row_names], [*args.cols, *col_names]
        styles = args.styles
        if styles is None:
            styles, num_ws = DEFAULT_STYLES, network.generator.num_ws
            if max(styles) >= num_ws:
                raise UsageError(f"--styles defaults to 0-6 (NVIDIA's), beyond this network's {num_ws} ws "
                                 f"(0..{num_ws - 1}): pass --styles")
        images = style_mix(network, rows, cols, styles, args.truncation_psi, args.truncation_cutoff,
                           args.class_idx, args.noise_mode, args.batch_size, projected)
        check_output_files(args.outdir, {*(f"{r}-{c}.png" for r, c in images), "grid.png"}.__contains__)
        os.makedirs(args.outdir, exist_ok=True)
        for (r, c), image in images.items():
            save_png(image, os.path.join(args.outdir, f"{r}-{c}.png"))
        save_png(grid(images, rows, cols), os.path.join(args.outdir, "grid.png"))
        print(f"wrote {len(images) + 1} images to {args.outdir}")

    return run("style_mixing", body, NetworkLoadError, UsageError)


if __name__ == "__main__":
    sys.exit(main())
