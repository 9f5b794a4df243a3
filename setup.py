"""What setup.cfg cannot say: the repository's ``experiments/`` (one file per experiment, ``ablations/`` with the
ladders) ships as the package ``stylegan_jax.experiments``, so ``--experiment NAME`` works from a wheel too
(``stylegan_jax.training.config.EXPERIMENTS_DIR`` looks there first, then at the repository root). The
experiment files are loaded by path, not imported: their folders need no ``__init__.py``."""

from setuptools import find_namespace_packages, find_packages, setup

EXPERIMENTS = ["stylegan_jax.experiments"] + [
    f"stylegan_jax.experiments.{name}" for name in find_namespace_packages("experiments", exclude=["*__pycache__*"])
]

setup(
    packages=find_packages(include=["stylegan_jax", "stylegan_jax.*"]) + EXPERIMENTS,
    package_dir={"stylegan_jax.experiments": "experiments"},
)
