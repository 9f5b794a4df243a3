"""What the command-line tools share: user errors as one line and exit status 1 (`run`), and the network flags
of the tools that sample a generator (`add_network_flags`, `load_sampled_network`).

Imports nothing heavy (no JAX), so a tool can use it before deciding its runtime.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stylegan_jax.network_snapshot import Network

#: The ``--noise-mode`` choices: the noise modes of the generators' synthesis.
NOISE_MODES = ("const", "random", "none")


class UsageError(ValueError):
    """A flag does not fit the network (missing class, bad seed list...); one line for the user."""


def run(prog: str, body: Callable[[], int | None], *errors: type[BaseException]) -> int:
    """Runs a tool's ``body()`` and returns its exit status (``None`` counts as 0).

    An exception of one of ``errors`` (the tool's user errors, whose message is one line saying what is
    wrong) is printed to stderr as ``<prog>: error: <message>`` and gives status 1. Any other exception
    propagates with its traceback: it is a bug, not a user error.
    """
    try:
        status = body()
    except errors as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    return 0 if status is None else status


def add_network_flags(p: argparse.ArgumentParser) -> None:
    """The flags generate and style_mixing share (NVIDIA's names)."""
    p.add_argument("--network", required=True, help="NVIDIA network pickle (.pkl) or stylegan_jax snapshot dir")
    p.add_argument("--trunc", dest="truncation_psi", type=float, help="truncation psi (default 1; StyleGAN1 "
                   "networks: 0.7 on the first 8 ws, as NVIDIA's)")
    p.add_argument("--trunc-cutoff", dest="truncation_cutoff", type=int, help="truncate only the first N ws")
    p.add_argument("--class", dest="class_idx", type=int, help="class label (conditional networks)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="noise inputs (default const)")
    p.add_argument("--outdir", required=True, help="where to write the images")
    p.add_argument("--batch-size", type=int, default=16, help="images per jitted batch")


def load_sampled_network(args: argparse.Namespace) -> Network:
    """The ``--network`` of a tool that samples ws (`add_network_flags`): loaded, its family checked for a
    mapping network (a `UsageError` otherwise), and ``--trunc``/``--trunc-cutoff`` left unset filled in with
    the family's generation default (StyleGAN1's (0.7, 8); none for the others)."""
    from stylegan_jax.network_snapshot import load_network

    network = load_network(args.network)
    if not network.family.has_mapping:
        raise UsageError(f"the network's model {network.model!r} has no mapping network (z -> ws); this tool "
                         "samples the StyleGAN families")
    psi, cutoff = network.family.truncation
    if args.truncation_psi is None:
        args.truncation_psi = psi
        if args.truncation_cutoff is None:
            args.truncation_cutoff = cutoff
    return network
