"""Fixtures of the data tests."""

from pathlib import Path

import pytest
from imagefiles import write_mixed_folder


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """The mixed folder of `write_mixed_folder` under tmp_path."""
    return write_mixed_folder(tmp_path / "mixed")
