import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stylegan_jax.runtime import CPU_FUSION_FLAG, configure_runtime


def test_importing_the_package_leaves_the_environment_unchanged():
    """Our modules set nothing at import (XLA_FLAGS is the run's choice: `configure_runtime`). The libraries
    under them set variables of their own when imported (JAX: TF_CPP_MIN_LOG_LEVEL, TPU_SKIP_MDS_QUERY;
    tensorboardX: CRC32C_SW_MODE), so they are imported before the environment is taken."""
    code = ("import os, jax, grain, orbax.checkpoint, tensorflow_datasets, tensorboardX; "
            "before = dict(os.environ); import stylegan_jax, stylegan_jax.training.loop, "
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


@pytest.mark.parametrize("flag,fusion", [([], True), (["--no-cpu-fusion"], False),
                                         (["--config.cpu_fusion=False"], False)])
def test_train_sets_the_cpu_fusion_flag_as_its_config_says(flag, fusion):
    """``train``'s choice reaches the resolved config it prints (and records) and the process's XLA_FLAGS."""
    code = ("import os; from stylegan_jax import train; "
            f"train.main(['--experiment', 'quickstart', '--dry-run', *{flag!r}]); "
            "print('XLA_FLAGS=' + os.environ.get('XLA_FLAGS', ''))")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    assert f'"cpu_fusion": {str(fusion).lower()},' in out
    assert (CPU_FUSION_FLAG in out.splitlines()[-1]) is fusion


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_ships_every_experiment_and_train_finds_them(tmp_path):
    """``pip install .`` (not editable) installs experiments/ as stylegan_jax.experiments, ablations/ included.
    Builds from a copy (pip builds in the source tree) with pip's isolated build: needs the package index."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for name in ("stylegan_jax", "experiments"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                    str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("stylegan_jax-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    experiments = sorted(p.relative_to(REPO / "experiments").as_posix() for p in (REPO / "experiments").rglob("*.py"))
    assert "ablations/stylegan2_c.py" in experiments
    assert [e for e in experiments if f"stylegan_jax/experiments/{e}" not in names] == []

    # The unpacked wheel, away from the repository: the experiments are found in the package.
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    code = "import stylegan_jax.training.config as c; print(c.EXPERIMENTS_DIR)"
    where = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, capture_output=True,
                           text=True).stdout.strip()
    assert where == str(tmp_path / "site" / "stylegan_jax" / "experiments")
    for experiment in ("quickstart", "ablations/stylegan2_c"):
        out = subprocess.run([sys.executable, "-m", "stylegan_jax.train", "--experiment", experiment, "--dry-run"],
                             cwd=tmp_path, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "G: " in out.stdout and " parameters" in out.stdout
