"""Test harness: CPU only, four fake devices, set before jax is imported anywhere."""

import os

os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()

from stylegan_jax.runtime import configure_runtime  # noqa: E402

configure_runtime(cpu_fusion=True)  # the CLIs' default numerics

import jax  # noqa: E402

jax.config.update("jax_enable_x64", False)

# Tests measure no speed: LLVM -O0 compiles faster (docs/performance.md, "Tests: LLVM -O0").
os.environ["XLA_FLAGS"] += " --xla_backend_optimization_level=0"
