"""``train --dry-run``: the resolved config and NVIDIA's parameter counts (``tests/fixtures/
nvidia_param_counts.json``, from NVIDIA's own networks) without a dataset or a compiled step."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stylegan_jax.cli import run
from stylegan_jax.data.images import encode_png
from stylegan_jax.data.tfds_builder import DatasetSpec, write_dataset
from stylegan_jax.train import main

COUNTS = json.loads((Path(__file__).parents[1] / "fixtures" / "nvidia_param_counts.json").read_text())


@pytest.mark.parametrize("experiment,case", [("ffhq256", "paper256"), ("ffhq1024", "paper1024"),  # = stylegan2's nets
                                             ("cifar10", "cifar")])
def test_dry_run_prints_nvidias_parameter_counts_without_the_dataset(experiment, case, capsys, tmp_path):
    empty = tmp_path / "no-datasets"
    assert main(["--experiment", experiment, "--dry-run", f"--config.data_dir={empty}"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [f"G: {COUNTS[case]['G_params']} parameters", f"D: {COUNTS[case]['D_params']} parameters"]
    config = json.loads("\n".join(out[: out.index("}") + 1]))
    assert config["name"] == experiment and config["conv_grad"] in ("xla", "forward")
    if case == "cifar":
        assert "classes: 10" in out
    assert not empty.exists()  # nothing built, nothing downloaded


def test_dry_run_of_a_conditional_run_without_a_class_count_needs_the_dataset(capsys, tmp_path):
    args = ["--experiment", "cifar10", "--dry-run", "--config.c_dim=0", f"--config.data_dir={tmp_path}"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "--config.c_dim" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("experiment, extra, expected", [
    ("ffhq256", ["--config.resolution=24"], "img_resolution must be a power of two >= 4, got 24 (--config.resolution)"),
    ("pggan", ["--config.resolution=48"], "img_resolution must be a power of two >= 4, got 48 (--config.resolution)"),
    ("gan", ["--config.resolution=24"], "DCGAN resolution must be a power of two >= 8, got 24 (--config.resolution)"),
    ("ffhq256", ["--config.G.z_dim=0"], "the mapping network needs z (z_dim > 0) or labels (c_dim > 0), got z_dim 0 "
     "and c_dim 0 (--config.G.z_dim)"),
])
def test_dry_run_of_networks_the_config_cannot_build_is_one_line(capsys, tmp_path, experiment, extra, expected):
    """Values the networks refuse (checked where they are built) are the config's error, as the run's."""
    assert main(["--experiment", experiment, "--dry-run", f"--config.data_dir={tmp_path}", *extra]) == 1
    assert capsys.readouterr().err == f"train: error: {expected}\n"


def test_dry_run_of_a_conditional_run_on_a_dataset_without_labels_is_refused_as_the_run(capsys, tmp_path):
    spec = DatasetSpec(resolution=32, channels=1)
    write_dataset(tmp_path / "plain", spec, [{"image": encode_png(np.zeros((32, 32, 1), np.uint8))}])
    args = ["--experiment", "quickstart", "--cond", "1", "--data", str(tmp_path / "plain")]
    for extra in (["--dry-run"], ["--outdir", str(tmp_path / "run")]):
        assert main([*args, *extra]) == 1
        assert capsys.readouterr().err == (f"train: error: --cond 1 / --config.conditional=True but the dataset at "
                                           f"{tmp_path / 'plain'} has no labels\n")


def test_dry_run_into_a_closed_pipe_ends_quietly():
    """``train --dry-run | head -1``: a reader gone before the output comes is no error and no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "stylegan_jax.train", "--experiment", "quickstart", "--dry-run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the config is resolved and printed
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and err == b""


def test_a_bug_keeps_its_traceback_and_user_errors_resolve_lazily(capsys):
    """`cli.run`: only the tool's own error types are one line; error types may come from a function called
    only when the body raised."""

    class KnownError(ValueError):
        pass

    def fail(error):
        def body():
            raise error
        return body

    looked_up = []

    def errors():
        looked_up.append(True)
        return (KnownError,)

    assert run("tool", lambda: None, errors) == 0 and not looked_up
    assert run("tool", fail(KnownError("bad --flag")), errors) == 1
    assert capsys.readouterr().err == "tool: error: bad --flag\n"
    with pytest.raises(ZeroDivisionError):
        run("tool", fail(ZeroDivisionError("a bug")), errors)
    with pytest.raises(ValueError):  # a plain ValueError is not a user error
        run("tool", fail(ValueError("a bug")), KnownError)
    assert run("tool", fail(KeyboardInterrupt()), KnownError) == 130
    assert capsys.readouterr().err == "tool: interrupted\n"
    assert run("tool", fail(IsADirectoryError(21, "Is a directory", "out/seed0000.png")), KnownError) == 1
    assert capsys.readouterr().err == "tool: error: out/seed0000.png: Is a directory\n"  # the file system's refusal
    assert run("tool", fail(PermissionError(13, "Permission denied", "a", None, "b")), KnownError) == 1
    assert capsys.readouterr().err == "tool: error: a -> b: Permission denied\n"
    with pytest.raises(OSError):  # an OSError naming no file stays a traceback
        run("tool", fail(OSError("a bug")), KnownError)
    with pytest.raises(FileNotFoundError):  # a file our code expected: a bug (the tools check what they are given)
        run("tool", fail(FileNotFoundError(2, "No such file or directory", "ours.json")), KnownError)


def test_nvidias_train_flags_set_the_config_keys_they_name(capsys, tmp_path):
    """stylegan3's README command for StyleGAN3-T, as flags here (--gpus is every device, --resume PKL is
    --config.resume_from)."""
    args = ["--experiment", "stylegan3_t", "--dry-run", f"--config.data_dir={tmp_path}", "--data", "afhqv2-512",
            "--config.resolution=512", "--batch", "32", "--batch-gpu", "4", "--gamma", "8.2", "--mirror", "1",
            "--cond", "0", "--glr", "0.0025", "--dlr", "0.002", "--cbase", "16384", "--cmax", "256",
            "--map-depth", "2", "--mbstd-group", "4", "--metrics", "none", "--freezed", "2", "--workers", "3",
            "--fp32", "1", "--allow-tf32", "0"]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    c = json.loads("\n".join(out[: out.index("}") + 1]))
    assert (c["dataset"], c["batch_size"], c["batch_gpu"], c["r1_gamma"], c["xflip"], c["conditional"]) == (
        "afhqv2-512", 32, 4, 8.2, True, False)
    assert (c["G_lr"], c["D_lr"], c["metrics"], c["freeze_d"], c["workers"]) == (0.0025, 0.002, [], 2, 3)
    assert c["G"]["channel_base"] == c["D"]["channel_base"] == 16384
    assert c["G"]["channel_max"] == c["D"]["channel_max"] == 256
    assert (c["G"]["mapping_layers"], c["D"]["mbstd_group_size"]) == (2, 4)
    assert c["G"]["num_fp16_res"] == c["D"]["num_fp16_res"] == 0
    assert c["G"]["conv_clamp"] is c["D"]["conv_clamp"] is None
    assert c["allow_tf32"] is False  # stylegan2-ada's flag (stylegan3 sets it False in its loop)



def resolved(capsys, *args) -> dict:
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    return json.loads("\n".join(out[: out.index("}") + 1]))


def test_fixed_augmentation_takes_stylegan3s_default_p(capsys, tmp_path):
    """stylegan3's train.py defaults --p to 0.2 (stylegan2-ada's requires it: test_train_bad_inputs)."""
    data = f"--config.data_dir={tmp_path}"
    for experiment in ("stylegan3_t", "stylegan3_r"):
        assert resolved(capsys, "--experiment", experiment, data, "--aug", "fixed")["p"] == 0.2
        assert resolved(capsys, "--experiment", experiment, data, "--aug", "fixed", "--p", "0.5")["p"] == 0.5
        assert resolved(capsys, "--experiment", experiment, data, "--aug", "ada")["p"] == 0.0  # ADA starts at 0


def test_nvidias_batch_moves_what_its_train_py_derives_from_the_batch(capsys, tmp_path):
    """stylegan3's train.py: EMA batch * 10 / 32 kimg, R's blur fade batch * 200 / 32, batch_gpu batch / gpus;
    R doubles G's --cbase and --cmax."""
    data = f"--config.data_dir={tmp_path}"
    c = resolved(capsys, "--experiment", "stylegan3_t", data)
    assert (c["batch_size"], c["ema_kimg"]) == (32, 10.0)
    c = resolved(capsys, "--experiment", "stylegan3_r", data, "--batch", "64", "--cbase", "16384", "--cmax", "256")
    assert (c["batch_size"], c["batch_gpu"], c["ema_kimg"], c["blur_fade_kimg"]) == (64, 0, 20.0, 400.0)
    assert (c["G"]["channel_base"], c["G"]["channel_max"], c["D"]["channel_base"], c["D"]["channel_max"]) == (
        32768, 512, 16384, 256)
    c = resolved(capsys, "--experiment", "stylegan3_r", data, "--batch", "64", "--config.ema_kimg=3.0")
    assert c["ema_kimg"] == 3.0 and c["blur_fade_kimg"] == 400.0  # a value given outright stays
    c = resolved(capsys, "--experiment", "stylegan3_r", data, "--batch", "64", "--config.batch_gpu=4")
    assert (c["batch_size"], c["batch_gpu"]) == (64, 4)  # --batch's batch_gpu 0 is derived: --config's stays
    c = resolved(capsys, "--experiment", "r3gan_ffhq64", data, "--fp32", "yes")
    assert c["G"]["fp16_stages"] == c["D"]["fp16_stages"] == []
