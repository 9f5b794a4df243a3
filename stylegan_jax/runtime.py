"""Process-wide runtime choices, made once by a run (a CLI or the trainer's caller), never on import."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

#: XLA:CPU's YNNPACK fusion of convolutions, matmuls and reductions (speed-ups: docs/performance.md).
CPU_FUSION_FLAG = "--xla_cpu_experimental_ynn_fusion_type=dot,reduce"


def configure_runtime(cpu_fusion: bool = True) -> None:
    """Set the process's XLA flags before JAX starts its backends (it reads ``XLA_FLAGS`` once, when the
    first computation runs; later calls have no effect on a started process).

    ``cpu_fusion``: add `CPU_FUSION_FLAG` to ``XLA_FLAGS`` unless the user chose a
    ``xla_cpu_experimental_ynn_fusion_type`` there already (GPU and TPU backends ignore it).
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if cpu_fusion and "xla_cpu_experimental_ynn_fusion_type" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {CPU_FUSION_FLAG}".strip()


@contextlib.contextmanager
def compilation_cache(path: Path | None) -> Iterator[None]:
    """JAX's persistent compilation cache in ``path`` while the block runs (None: no cache): every
    compilation is looked up there first and written there after, however short, so that a resumed or
    repeated run with the same cache compiles nothing. JAX keeps one cache per process; the setting before
    the block is restored after it. XLA's own caches beside JAX's (``jax_persistent_cache_enable_xla_caches``:
    by default the GPU autotuning results, in a folder inside the cache) are off: their path is part of every
    program's cache key, so that a run directory moved or copied elsewhere found none of its programs.

    JAX trusts the cache: executables are loaded from it, so it belongs where the user's own files are (a
    run directory), never in a directory others may write to."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cache

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes", "jax_persistent_cache_enable_xla_caches")
    previous = {name: getattr(jax.config, name) for name in names}
    cache.reset_cache()
    for name, value in zip(names, (None if path is None else str(path), 0.0, -1, None), strict=True):
        jax.config.update(name, value)
    try:
        yield
    finally:
        cache.reset_cache()
        for name, value in previous.items():
            jax.config.update(name, value)
