"""Durations as NVIDIA's tools print them."""

import pytest

from stylegan_jax.durations import format_time


@pytest.mark.parametrize("seconds, shown", [
    (0, "0s"), (0.5, "0s"), (1.5, "2s"), (2.5, "2s"), (59.4, "59s"), (59.5, "1m 00s"), (61, "1m 01s"),
    (3599.5, "1h 00m 00s"), (3661, "1h 01m 01s"), (86399, "23h 59m 59s"), (86400, "1d 00h 00m"),
    (90061, "1d 01h 01m"), (10 * 86400 + 5, "10d 00h 00m"),
])
def test_times_read_as_on_nvidias_status_line(seconds, shown):
    """dnnlib.util.format_time's forms, rounded to the second half to even (NumPy's rint)."""
    assert format_time(seconds) == shown
