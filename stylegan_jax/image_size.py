"""Image sizes, square and not: one convention for every module.

- What a user types, a config holds (``cfg.resolution``) and a dataset records (``"resolution"``): ``N`` for
  N x N images, or the string ``"WxH"`` (width first, NVIDIA's ``--resolution WxH``) for others.
- What arrays and networks use: ``(height, width)`` (arrays are NHWC); a network's ``img_resolution`` is the
  int ``N`` for a square (NVIDIA's networks, bit for bit) or the tuple ``(height, width)``.
- A network grows from a small *base* ``(h0, w0)`` doubled ``k`` times: 4 x 4 for a square power of two,
  3 x 4 for 512x384 (W x H), 4 x 3 for 24x32. Its *nominal* resolution ``4 * 2**k`` names its blocks and sets
  their widths, as the square network of that resolution (the same layers, wider or narrower canvases).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from stylegan_jax.errors import ConfigError

#: The sides a base may have: the largest k is taken, so the short side of a base is 3..5 (an odd number, or
#: 4 for a power of two), and the long side at most this bound (aspect ratios from 3:8 to 8:3).
BASE_SIDES = (3, 8)


class ImageSizeError(ConfigError):
    """An image size the networks cannot make; the message says which sizes work."""


def parse(value: int | str | Sequence[int]) -> tuple[int, int]:
    """``N`` or ``"N"`` -> (N, N); ``"WxH"`` (or ``"W,H"``) -> (H, W); a ``(height, width)`` pair (a network's
    ``img_resolution``, or its JSON list) -> itself. Raises ImageSizeError for anything else."""
    if isinstance(value, bool):
        raise ImageSizeError(f"bad image size {value!r}: expected N, 'WxH' or (height, width)")
    if isinstance(value, int):
        h = w = value
    elif isinstance(value, str):
        parts = re.split("[x,]", value.lower())  # NVIDIA's dataset_tool also takes "W,H"
        if len(parts) not in (1, 2) or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
            raise ImageSizeError(f"bad image size {value!r}: expected N or WxH with positive integers, e.g. 256 "
                                 "or 512x384")
        w, h = int(parts[0]), int(parts[-1])
    elif isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) for v in value):
        h, w = value
    else:
        raise ImageSizeError(f"bad image size {value!r}: expected N, 'WxH' or (height, width)")
    if h <= 0 or w <= 0:
        raise ImageSizeError(f"bad image size {value!r}: sides must be positive")
    return int(h), int(w)


def text(height: int, width: int) -> int | str:
    """The user-facing form of (height, width): ``N`` for a square, ``"WxH"`` otherwise."""
    return height if height == width else f"{width}x{height}"


def network_resolution(value: int | str | Sequence[int]) -> int | tuple[int, int]:
    """A network's ``img_resolution`` for a size in any form: the int N for a square, else (height, width)."""
    h, w = parse(value)
    return h if h == w else (h, w)


def is_power_of_two(side: int, minimum: int = 4) -> bool:
    """Whether ``side`` is a power of two >= ``minimum`` (what NVIDIA's square networks take)."""
    return side >= minimum and not side & (side - 1)


def base(height: int, width: int) -> tuple[int, int, int]:
    """(h0, w0, k) with height = h0 * 2**k, width = w0 * 2**k and k as large as leaves both base sides >= 3.

    A square must be a power of two >= 4 (base 4 x 4, NVIDIA's networks); other sizes need base sides in
    `BASE_SIDES`. Raises ImageSizeError naming the size (W x H) and what works."""
    if height == width:
        if not is_power_of_two(height):
            raise ImageSizeError(f"resolution {height} is not a power of two >= 4 (the networks need one)")
        return 4, 4, height.bit_length() - 3
    k = 0
    while height % 2 ** (k + 1) == 0 and width % 2 ** (k + 1) == 0 and min(height, width) // 2 ** (k + 1) >= 3:
        k += 1
    h0, w0 = height >> k, width >> k
    lo, hi = BASE_SIDES
    if not (lo <= min(h0, w0) and max(h0, w0) <= hi):
        raise ImageSizeError(
            f"resolution {width}x{height} is not a small base doubled: width and height must be w0 * 2^k and "
            f"h0 * 2^k with w0, h0 in {lo}..{hi} (e.g. 512x384 = 4x3 doubled 7 times, 24x32, 64x32)")
    return h0, w0, k


def nominal(height: int, width: int) -> int:
    """The square resolution whose network has the same blocks: 4 * 2**k (`base`)."""
    return 4 * 2 ** base(height, width)[2]


def block_shape(height: int, width: int, block_resolution: int) -> tuple[int, int]:
    """(h, w) of the block that the square network calls ``block_resolution`` (4, 8, ...): the base doubled
    log2(block_resolution / 4) times."""
    h0, w0, _ = base(height, width)
    return h0 * block_resolution // 4, w0 * block_resolution // 4
