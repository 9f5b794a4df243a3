import os
import subprocess
import sys

from stylegan_jax.runtime import CPU_FUSION_FLAG, configure_runtime


def test_importing_the_package_leaves_the_environment_unchanged():
    code = ("import os; before = dict(os.environ); import stylegan_jax, stylegan_jax.training.loop, "
            "stylegan_jax.generate, stylegan_jax.metrics; assert dict(os.environ) == before, "
            "set(os.environ.items()) ^ set(before.items())")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_configure_runtime_adds_the_cpu_fusion_flag_unless_chosen(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    configure_runtime(cpu_fusion=True)
    assert os.environ["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=2 {CPU_FUSION_FLAG}"
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=none")
    configure_runtime(cpu_fusion=True)
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type=none"
    monkeypatch.setenv("XLA_FLAGS", "")
    configure_runtime(cpu_fusion=False)
    assert os.environ["XLA_FLAGS"] == ""
