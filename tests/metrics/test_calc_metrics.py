"""The calc_metrics CLI: swd on a snapshot in a run directory appends metric-swd.jsonl; errors are one line."""

import json

import numpy as np
import pytest

from stylegan_jax import calc_metrics
from stylegan_jax.data import make_iterator, subset_indices
from stylegan_jax.data.images import encode_png
from stylegan_jax.data.tfds_builder import DatasetSpec, write_dataset
from stylegan_jax.images import to_uint8
from stylegan_jax.metrics import METRICS, calc_metric
from stylegan_jax.models.stylegan2 import Generator
from stylegan_jax.network_snapshot import load_network, save_network
from tests.metrics.conftest import G_KWARGS


@pytest.fixture
def run_dir(tmp_path, dataset, generator):
    """A training run directory: config.json naming the dataset, and one network snapshot."""
    run = tmp_path / "run"
    save_network(run / "network-snapshot-000000", G_kwargs=G_KWARGS, D_kwargs=None, G_ema=generator[1])
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
    assert printed["results"] == first["results"]


def test_a_runs_subset_is_what_its_metrics_hold_the_generator_against(run_dir, dataset, generator, tmp_path):
    """NVIDIA's calc_metrics takes a run's training set as it trained on it: its --subset."""
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps(dict(config, subset=10, seed=4)))
    args = ["--metrics", "swd", "--network", str(run_dir / "network-snapshot-000000"), "--batch-size", "8",
            "--cache-dir", str(tmp_path / "cache")]
    assert calc_metrics.main(args) == 0
    assert calc_metrics.main([*args, "--data", str(dataset)]) == 0  # another dataset given: all of it
    lines = (run_dir / "metric-swd.jsonl").read_text().splitlines()
    on_subset, on_all = (json.loads(line)["results"] for line in lines)
    batch = next(make_iterator(dataset, batch_size=24, shuffle=False, num_epochs=1))
    kept = subset_indices(24, 10, 4)
    spec = DatasetSpec(resolution=16, channels=1, label_kind="class", c_dim=3)
    examples = [{"image": encode_png(np.asarray(to_uint8(batch["image"][i]))), "label": int(batch["label"][i].argmax())}
                for i in kept]
    part = write_dataset(tmp_path / "part", spec, examples)
    G = Generator(**G_KWARGS)
    alone = calc_metric("swd", G=G, G_vars=generator[1], dataset=part, batch_size=8, cache_dir=str(tmp_path / "c2"))
    assert on_subset == alone["results"] != on_all


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
    save_network(outside, G_kwargs=net.G_kwargs, D_kwargs=None, G_ema=net.G_ema)
    assert calc_metrics.main(["--metrics", "swd", "--network", str(outside)]) == 1
    assert "pass --data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        calc_metrics.parse_args(["--metrics", "fid,swd", "--network", snapshot])
    assert e.value.code == 1 and "unknown metric fid; valid: fid50k_full" in capsys.readouterr().err
