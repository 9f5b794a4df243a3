"""Where a compiled call spends its time: one run under ``jax.profiler`` (an xprof trace, kept when asked),
summed per XLA operation.

Operations are the events that carry an ``hlo_op`` statistic: on the CPU one per thunk that XLA:CPU runs (a
fusion, a dot, a convolution, a copy), named as in the compiled HLO (``jitted.lower(...).compile()
.as_text()``), on whichever thread ran it; Python's, the client's and the executor's own events carry none.
An operation that Eigen or YNNPACK splits over the thread pool counts as the time of the event that runs it,
so the figures rank operations; they are not a breakdown of the whole call.
"""

from __future__ import annotations

import collections
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import jax

T = TypeVar("T")


def top_ops(run: Callable[[], T], count: int, trace_dir: Path | None = None) -> tuple[T, list[tuple[str, float]]]:
    """Run ``run()`` once (its result blocked on) under the profiler: (its result, the ``count`` operations
    with the most time as (name, milliseconds summed over the run), most first). ``trace_dir``: keep the
    trace there (for TensorBoard's or xprof's viewer) instead of a temporary directory."""
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(trace_dir or scratch)
        jax.profiler.start_trace(str(directory))
        try:
            result = jax.block_until_ready(run())
        finally:
            jax.profiler.stop_trace()
        path = max(directory.rglob("*.xplane.pb"), key=lambda p: p.stat().st_mtime)
        data = jax.profiler.ProfileData.from_file(str(path))
    totals: collections.Counter[str] = collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            for event in line.events:
                op = dict(event.stats).get("hlo_op")
                if op is not None:
                    totals[op] += event.duration_ns
    return result, [(name, round(ns / 1e6, 1)) for name, ns in totals.most_common(count)]
