import os

import stylegan_jax


def test_ynn_flag_is_on_unless_opted_out(monkeypatch):
    assert stylegan_jax.YNN_FLAG in os.environ["XLA_FLAGS"]  # imported by the tests before any backend ran
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=none")
    stylegan_jax._enable_ynn_on_cpu()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type=none"
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("STYLEGAN_JAX_CPU_YNN", "0")
    stylegan_jax._enable_ynn_on_cpu()
    assert os.environ["XLA_FLAGS"] == ""
