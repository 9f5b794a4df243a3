#!/usr/bin/env bash
# The wheels a lent GPU machine lacks for this package, downloaded here into .whl/ (git-ignored) for
# benchmarks/gpu_rows.sh to install there. That machine's image has Python 3.12 with JAX (CUDA), Flax, Optax,
# Orbax, NumPy, SciPy, scikit-image and scikit-learn, and no network; what it lacks is the data and config
# stack below, at the versions this checkout's venv runs (11 MB in all).
# Usage, in the repository root with the project's venv active: bash benchmarks/device_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
names=(ml_collections tensorflow-datasets grain array_record tensorboardX importlib_resources dm-tree
       simple-parsing tensorflow-metadata toml immutabledict termcolor portpicker docstring-parser
       googleapis-common-protos)
pins=()
for name in "${names[@]}"; do
  version=$(python3 -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
  pins+=("$name${version:+==$version}")
done
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl "${pins[@]}"
# promise (a tensorflow-datasets requirement) is published as a source archive only: build its pure-Python wheel.
python3 -m pip wheel -q --no-deps -w .whl "promise==$(python3 -m pip show promise | sed -n 's/^Version: //p')"
ls .whl
