"""The before/after fixture: a few experiments' fixed-seed training states after a few iterations equal, bit
for bit, the digests ``tests/fixtures/make_training_states.py`` recorded before the architecture refactor
(same numerical settings: 4 fake devices, XLA's conv gradient rule, YNNPACK fusion, LLVM -O0)."""

import json

import pytest

from tests.fixtures.make_training_states import CASES, FIXTURE, digests


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_state_is_bit_identical_to_the_recorded_one(case, data_dir, tmp_path):
    expected = json.loads(FIXTURE.read_text())[case]
    got = digests(case, str(data_dir), tmp_path)
    assert sorted(got) == sorted(expected)
    assert [k for k in expected if got[k] != expected[k]] == []
