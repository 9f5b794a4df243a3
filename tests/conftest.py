"""Test harness: CPU only, four fake devices, set before jax is imported anywhere."""

import os

os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["MPLBACKEND"] = "agg"  # no windows: the plots' tests run as on a machine without a display
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()

from stylegan_jax.runtime import configure_runtime  # noqa: E402

configure_runtime(cpu_fusion=True)  # the CLIs' default numerics

import jax  # noqa: E402

jax.config.update("jax_enable_x64", False)

# Tests measure no speed: LLVM -O0 and XLA:CPU's loop emitters for the elementwise fusions compile faster
# (docs/performance.md, "Tests: LLVM -O0" and "Test suite"); `tests.fixtures.make_training_states` records its
# fixture with the same flags (`TEST_FLAGS`).
os.environ["XLA_FLAGS"] += " --xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"

#: The slowest test files, slowest first (seconds on 2 cores: docs/performance.md, "Test suite"). They are
#: collected first so that the two xdist workers (`--dist loadfile` hands out files in collection order) take
#: them at the start and finish together, instead of one worker running a long file alone at the end.
SLOWEST_FIRST = (
    "training/test_r3gan_training.py", "training/test_preemption.py", "training/test_stylegan3_training.py",
    "training/test_train.py", "training/test_lineage_step_reference.py", "training/test_stylegan3_step_reference.py",
    "training/test_resume.py", "training/test_non_square.py",
    "training/test_transfer.py", "training/test_multiprocess.py", "training/test_ablations.py",
    "training/test_ada.py", "training/test_refactor_fixture.py", "training/test_run_choices.py",
    "training/test_r3gan_step_reference.py",
    "test_projector.py", "training/test_train_bad_inputs.py", "models/test_non_square_networks.py",
    "training/test_interrupt.py", "training/test_d_passes.py", "training/test_growing.py",
)


def pytest_collection_modifyitems(items):
    """Slowest files first (`SLOWEST_FIRST`), every other test in its collected order."""
    rank = {path: i for i, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0].removeprefix("tests/"), len(rank)))
