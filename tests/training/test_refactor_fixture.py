"""The before/after fixture: a few experiments' fixed-seed training states after a few iterations equal, bit
for bit, the digests ``tests/fixtures/make_training_states.py`` recorded on a CPU like this one (same numerical
settings: 4 fake devices, XLA's conv gradient rule, YNNPACK fusion, LLVM -O0); on every CPU they agree with the
recorded fingerprints."""

import json

import pytest

from tests.fixtures.make_training_states import (
    CASES,
    FIXTURE,
    cpu_signature,
    digests,
    final_leaves,
    fingerprint_mismatches,
    fingerprints,
)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_state_equals_the_recorded_one(case, data_dir, tmp_path):
    fixture = json.loads(FIXTURE.read_text())
    leaves = final_leaves(case, str(data_dir), tmp_path)
    assert sorted(leaves) == sorted(fixture["fingerprints"][case])
    assert fingerprint_mismatches(fingerprints(leaves), fixture["fingerprints"][case]) == []
    # bits are reproducible on the CPU kind that recorded them only; a case whose bits a change moved keeps the
    # digests of the kinds it was recorded on again (`make_training_states --add-machine`)
    recorded = fixture["digests"].get(cpu_signature(), {}).get(case)
    if recorded is not None:
        got = digests(leaves)
        assert [k for k in recorded if got[k] != recorded[k]] == []
