"""The calc_metrics CLI: swd on a snapshot in a run directory appends metric-swd.jsonl; errors are one line."""

import json

import pytest

from stylegan_jax import calc_metrics
from stylegan_jax.metrics import METRICS, has_result
from stylegan_jax.network_snapshot import load_network, save_network
from tests.metrics.conftest import G_KWARGS


@pytest.fixture
def run_dir(tmp_path, dataset, generator):
    """A training run directory: config.json naming the dataset, and one network snapshot."""
    run = tmp_path / "run"
    save_network(run / "network-snapshot-000000", model="stylegan2", G_kwargs=G_KWARGS, D_kwargs=None,
                 G_ema=generator[1])
    (run / "config.json").write_text(json.dumps({"dataset": str(dataset), "data_dir": "", "xflip": False}))
    return run


def test_swd_on_a_snapshot_appends_to_the_run_directory(run_dir, tmp_path, capsys):
    args = ["--metrics", "swd", "--network", str(run_dir / "network-snapshot-000000"), "--batch-size", "8",
            "--cache-dir", str(tmp_path / "cache")]
    assert calc_metrics.main(args) == 0
    assert calc_metrics.main(args) == 0
    lines = (run_dir / "metric-swd.jsonl").read_text().splitlines()
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    assert first["metric"] == "swd" and first["snapshot_pkl"] == "network-snapshot-000000"
    assert first["results"] == second["results"] and first["results"]["swd"] > 0  # seeded: reproducible
    printed = json.loads(capsys.readouterr().out.splitlines()[0])
    assert printed == first  # NVIDIA's report_metric prints the line it appends
    huge = [*args[:4], "--batch-size", "100000000", *args[6:]]  # far above the images: padded to them only
    assert calc_metrics.main(huge) == 0
    assert json.loads((run_dir / "metric-swd.jsonl").read_text().splitlines()[2])["results"] == first["results"]


def test_a_result_against_another_dataset_names_it_and_is_not_the_runs_own(run_dir, dataset, tmp_path, capsys):
    """A line of --data names that dataset: a run resumed at the snapshot (which computes the metrics it has
    no line for, `has_result`) does not take it for its own result; without --data the line is the run's."""
    snapshot = run_dir / "network-snapshot-000000"
    args = ["--metrics", "swd", "--network", str(snapshot), "--batch-size", "8", "--cache-dir", str(tmp_path / "c")]
    assert calc_metrics.main([*args, "--data", str(dataset)]) == 0
    line = json.loads((run_dir / "metric-swd.jsonl").read_text())
    assert line["data"] == str(dataset.resolve()) and line["snapshot_pkl"] == "network-snapshot-000000"
    assert json.loads(capsys.readouterr().out) == line
    assert not has_result(run_dir, "swd", str(snapshot))
    assert calc_metrics.main(args) == 0
    assert has_result(run_dir, "swd", str(snapshot))
    assert "data" not in json.loads((run_dir / "metric-swd.jsonl").read_text().splitlines()[1])  # NVIDIA's line


def test_a_runs_subset_leaves_the_reals_of_its_metrics_whole(run_dir, dataset, tmp_path):
    """NVIDIA scores a limited-data run (--subset) against the whole dataset (its FID, KID, PR and IS set
    max_size=None; ours swd too): the run's snapshot gets the values of the same network against all images."""
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps(dict(config, subset=10, seed=4)))
    args = ["--metrics", "swd", "--network", str(run_dir / "network-snapshot-000000"), "--batch-size", "8",
            "--cache-dir", str(tmp_path / "cache")]
    assert calc_metrics.main(args) == 0
    (run_dir / "config.json").write_text(json.dumps(config))
    assert calc_metrics.main([*args[:-1], str(tmp_path / "cache2")]) == 0  # a run without --subset, no cache
    on_subset_run, on_whole_run = (json.loads(line)["results"] for line in
                                   (run_dir / "metric-swd.jsonl").read_text().splitlines())
    assert on_subset_run == on_whole_run


def test_a_runs_subset_reaches_only_the_metrics_nvidia_draws_from_it(run_dir, monkeypatch, capsys):
    """PPL draws its labels from the run's training set (NVIDIA leaves its max_size); the others see all."""
    from stylegan_jax.metrics import metric_main

    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps(dict(config, subset=10, seed=4)))
    seen = {}
    for fn in ("compute_fid", "compute_kid", "compute_pr", "compute_is", "compute_ppl"):
        def record(opts, *args, fn=fn, **kwargs):
            seen.setdefault(fn, []).append((opts.subset, opts.subset_seed))
            return (0.5, 0.5) if fn in ("compute_pr", "compute_is") else 0.5
        monkeypatch.setattr(metric_main, fn, record)
    names = "fid50k_full,kid50k_full,pr50k3_full,is50k,fid50k,kid50k,pr50k3,ppl2_wend,ppl_zend"
    assert calc_metrics.main(["--metrics", names, "--network", str(run_dir / "network-snapshot-000000")]) == 0
    assert seen == {"compute_fid": [(None, 4)] * 2, "compute_kid": [(None, 4)] * 2, "compute_pr": [(None, 4)] * 2,
                    "compute_is": [(None, 4)], "compute_ppl": [(10, 4)] * 2}


@pytest.mark.parametrize("flags, mirror", [([], True), (["--data", "DATA"], False),
                                           (["--data", "DATA", "--mirror"], True), (["--no-mirror"], False)])
def test_mirror_defaults_to_the_runs_unless_data_is_given(run_dir, dataset, monkeypatch, flags, mirror):
    """NVIDIA's calc_metrics: the run's x-flips; a --data given is a new dataset, flipped only with --mirror."""
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps(dict(config, xflip=True)))
    seen = []
    monkeypatch.setattr(calc_metrics, "calc_metric", lambda name, **kw: seen.append(kw["mirror"]) or {})
    monkeypatch.setattr(calc_metrics, "result_line", lambda *a, **k: "")
    monkeypatch.setattr(calc_metrics, "append_result", lambda *a, **k: "")
    flags = [str(dataset) if f == "DATA" else f for f in flags]
    assert calc_metrics.main(["--metrics", "swd", "--network", str(run_dir / "network-snapshot-000000"),
                              *flags]) == 0
    assert seen == [mirror]


def test_help_lists_the_metric_names(capsys):
    with pytest.raises(SystemExit):
        calc_metrics.parse_args(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in METRICS)


def test_user_errors_are_one_line(run_dir, tmp_path, capsys):
    snapshot = str(run_dir / "network-snapshot-000000")
    assert calc_metrics.main(["--metrics", "fid50k_full", "--network", snapshot, "--detector-dir",
                              str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "inception-2015-12-05.pt not found in" in err
    outside = tmp_path / "elsewhere" / "net"
    net = load_network(snapshot)
    save_network(outside, model="stylegan2", G_kwargs=net.G_kwargs, D_kwargs=None, G_ema=net.G_ema)
    assert calc_metrics.main(["--metrics", "swd", "--network", str(outside)]) == 1
    assert "pass --data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        calc_metrics.parse_args(["--metrics", "fid,swd", "--network", snapshot])
    assert e.value.code == 1 and "unknown metric fid; valid: fid50k_full" in capsys.readouterr().err
