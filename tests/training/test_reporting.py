"""stats.jsonl across a resume: the ticks past the checkpoint, and a line a kill cut short, are dropped; a file
with nothing to drop is left as it was. (The whole path, a killed run resumed: test_preemption.py.)"""

import json

from stylegan_jax.training.reporting import keep_stats_until


def tick(nimg: int) -> str:
    return json.dumps({"Progress/kimg": {"num": 1, "mean": nimg / 1000, "std": 0.0}, "timestamp": 0.0})


def test_ticks_past_the_checkpoint_and_a_cut_line_are_dropped(tmp_path):
    path = tmp_path / "stats.jsonl"
    path.write_text("\n".join([tick(8), tick(16), tick(24)]) + "\n" + tick(32)[:20])
    keep_stats_until(path, 16)
    assert path.read_text() == tick(8) + "\n" + tick(16) + "\n"
    before = path.stat().st_mtime_ns
    keep_stats_until(path, 16)
    assert path.stat().st_mtime_ns == before
    keep_stats_until(path, 0)  # a run restarted from scratch
    assert path.read_text() == ""
    keep_stats_until(tmp_path / "none.jsonl", 0)
    assert not (tmp_path / "none.jsonl").exists()
