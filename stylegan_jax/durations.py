"""Durations as NVIDIA's tools print them (``dnnlib.util.format_time``): the status line's ``time`` and the
metric results' ``total_time_str``."""

from __future__ import annotations


def format_time(seconds: float) -> str:
    """``42s``, ``3m 05s``, ``2h 03m 05s``, ``1d 02h 03m``: rounded to the second, half to even (NumPy's rint)."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02}s"
    if s < 86400:
        return f"{s // 3600}h {s // 60 % 60:02}m {s % 60:02}s"
    return f"{s // 86400}d {s // 3600 % 24:02}h {s // 60 % 60:02}m"
