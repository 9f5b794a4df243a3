"""stats.jsonl: a tick's statistics are NVIDIA's over every sample reported in it; across a resume, the ticks
past the checkpoint, and a line a kill cut short, are dropped; a file with nothing to drop is left as it was.
(The whole path, a killed run resumed: test_preemption.py.)"""

import json
import time

import jax
import numpy as np

from stylegan_jax.training.reporting import Reporter, format_kimg, keep_stats_until
from stylegan_jax.training.stats import report, tick_stats
from tests.training.test_resume import purge_steps


def tick(nimg: int) -> str:
    return json.dumps({"Loss/G/loss": {"num": nimg, "mean": nimg / 1000, "std": 0.0},
                       "Progress/kimg": {"num": 1, "mean": nimg / 1000, "std": 0.0}, "timestamp": 0.0})


def test_ticks_past_the_checkpoint_and_a_cut_line_are_dropped(tmp_path):
    path = tmp_path / "stats.jsonl"
    path.write_text("\n".join([tick(8), tick(16), tick(24)]) + "\n" + tick(32)[:20])
    assert keep_stats_until(path, 16) == {"Loss/G/loss": {"num": 16, "mean": 0.016, "std": 0.0}}  # what it repeats
    assert path.read_text() == tick(8) + "\n" + tick(16) + "\n"
    before = path.stat().st_mtime_ns
    keep_stats_until(path, 16)
    assert path.stat().st_mtime_ns == before
    keep_stats_until(path, 0)  # a run restarted from scratch
    assert path.read_text() == ""
    keep_stats_until(tmp_path / "none.jsonl", 0)
    assert not (tmp_path / "none.jsonl").exists()


def test_a_ticks_statistics_are_over_every_sample_reported_in_it():
    """Three phases' reports of different batch sizes (one [K, B, 1] as D's scores) and a scalar output: num,
    mean and std over the samples pooled, as NVIDIA's Collector has them, against NumPy float64."""
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (2, 4, 1)), rng.normal(-1.0, 0.5, (8,)), rng.normal(0.0, 1.0, (1, 3))]
    outputs = [{**report("Loss/scores/real", x), "Loss/pl_mean": np.float32(i)} for i, x in enumerate(batches)]
    outputs = jax.device_get(outputs)
    stats = tick_stats(outputs)
    samples = np.concatenate([np.asarray(x, np.float32).ravel() for x in batches]).astype(np.float64)
    assert stats["Loss/scores/real"]["num"] == 19
    np.testing.assert_allclose(stats["Loss/scores/real"]["mean"], samples.mean(), rtol=1e-6)
    np.testing.assert_allclose(stats["Loss/scores/real"]["std"], samples.std(), rtol=1e-5)
    assert stats["Loss/pl_mean"] == {"num": 3, "mean": 1.0, "std": np.std([0.0, 1.0, 2.0])}


def test_a_loss_a_tick_did_not_report_repeats_its_last_entry_and_one_sample_has_no_spread():
    """NVIDIA's keep_previous (a tick shorter than the lazy R1's interval), and std 0 for num 1 exactly."""
    previous = tick_stats(jax.device_get([report("Loss/r1_penalty", np.float32([0.1, 0.3]))]))
    stats = tick_stats(jax.device_get([report("Loss/G/loss", np.float32([0.7]))]), previous)
    assert stats["Loss/r1_penalty"] == previous["Loss/r1_penalty"] and previous["Loss/r1_penalty"]["num"] == 2
    assert stats["Loss/G/loss"]["num"] == 1 and stats["Loss/G/loss"]["std"] == 0.0


def test_a_new_run_hides_the_events_of_an_attempt_killed_before_its_first_checkpoint(tmp_path):
    """TensorBoard's purge from step 0 in a new run's events (a resumed run's starts past its checkpoint:
    test_resume.py), so that the killed attempt's tick 0 is not drawn twice."""
    for start_nimg, purge in ((0, [0]), (4000, [0, 5])):
        reporter = Reporter(tmp_path, True, start_nimg=start_nimg)
        reporter.scalars({"Loss/G/loss": 1.0}, start_nimg + 8)
        reporter.close()
        assert purge_steps(tmp_path) == purge
        time.sleep(1.1)  # the next events file's name differs (its time stamp in seconds)


def test_kimg_is_written_with_every_digit_its_images_have():
    """The start, stop and finished lines: whole images are at most 3 decimals of a kimg, none rounded away."""
    assert [format_kimg(n) for n in (0, 48, 1000, 1000032, 25000, 123456789, 64.0)] == [
        "0", "0.048", "1", "1000.032", "25", "123456.789", "0.064"]
