"""Process-wide runtime choices, made once by a run (a CLI or the trainer's caller), never on import."""

from __future__ import annotations

import os

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
