"""Bad input to ``python -m stylegan_jax.train`` (in-process ``main``): status 1 and one line naming the flag,
key or file, checked before anything is trained or written; and what a run directory can go through
(checkpoints of another run, corrupted or half-deleted steps, a second process, a full disk, a re-run)."""

import errno
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp
import pytest

from stylegan_jax import cli
from stylegan_jax import train as train_cli
from stylegan_jax.training import checkpoint, loop
from stylegan_jax.training.loop import RunDirectory, Trainer
from tests.cli.usage import assert_one_error_line, listing, run_tool
from tests.training.conftest import tiny_config
from tests.training.test_preemption import cli_overrides


def argv(data_dir, outdir, *extra):
    """A tiny digits run of 2 iterations, a checkpoint after each."""
    return ["--experiment", "digits", "--outdir", outdir, "--kimg", "0.016", "--tick", "0.008", "--snap", "1",
            *cli_overrides(tiny_config(data_dir)), *extra]


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
    """A finished run directory (checkpoints 1 and 2): copy it before changing it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert train_cli.main([str(a) for a in argv(data_dir, run)]) == 0
    return run


@pytest.fixture
def run(finished, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


def test_a_minibatch_stddev_group_over_the_per_device_batch_is_said_at_the_start(data_dir, tmp_path, capsys):
    """NVIDIA's stylegan2-ada layer takes min(group, batch) silently (its stylegan3 train.py refuses
    --batch-gpu < --mbstd): the run does as the first, and its start line says so."""
    run = tmp_path / "run"
    code, _, err = run_tool(train_cli.main, argv(data_dir, run, "--kimg", "0.008", "--config.D.mbstd_group_size=4"),
                            capsys)
    assert code == 0, err
    (start,) = [line for line in (run / "log.txt").read_text().splitlines() if line.startswith("Starting digits")]
    assert start.endswith("4 device(s), batch 8 (4 x 2); D's minibatch-stddev groups of 2 (its mbstd_group_size 4 "
                          "is more than the per-device batch, which NVIDIA's layer takes then)"), start


CASES = [  # (extra arguments, expected in the one line)
    (["--snap", "0"], "--snap: expected a whole number >= 1, got 0"),
    (["--kimg", "0"], "--kimg: expected a positive number of kimg, got 0.0"),
    (["--kimg", "-1"], "--kimg: expected a positive number of kimg, got -1.0"),
    (["--kimg", "nan"], "argument --kimg: 'nan' is not a finite number"),
    (["--seed", "-1"], "argument --seed: seed -1 is outside"),
    (["--outdir", ""], "argument --outdir: empty path"),
    (["--tick", "0"], "--tick: expected a positive number of kimg, got 0.0"),
    (["--config.tick_by_resolution=((8, 0.0),)"], "--config.tick_by_resolution: expected (resolution, positive "
                                                  "kimg) pairs, got ((8, 0.0),)"),
    (["--config.keep=0"], "--config.keep: expected a whole number >= 1, got 0"),
    (["--config.keep_every=-4"], "--config.keep_every: expected a whole number of steps >= 0 (0: the newest"),
    (["--config.image_snap=-1"], "--config.image_snap: expected a whole number of ticks >= 0 (0: grids at the "),
    (["--config.grid=0"], "--config.grid: expected a whole number >= 1, got 0"),
    (["--metrics", "none,swd"], "argument --metrics: 'none,swd': 'none' (no metrics) stands alone, not beside "
                                "metric names"),
    (["--config.grid_noise=none"], "--config.grid_noise: expected 'const' or 'random', got 'none'"),
    (["--subset", "-3"], "--subset: expected a whole number of images >= 0 (0: all), got -3"),
    (["--config.growing.initial_resolution=8", "--config.decay_kimg=10", "--config.decay.beta2=0.99"],
     "--config.decay.G_lr/D_lr/beta2: a growing run takes its learning rates from growing.G_lr/D_lr, and no Adam"),
    (["--config.freeze_d=-1"], "--config.freeze_d: expected a whole number of D's layers >= 0, got -1"),
    (["--metrics", "fid50k_ful"], "--metrics: unknown metric 'fid50k_ful'; valid: "),
    (["--metrics", "swd,swd"], "argument --metrics: 'swd,swd': swd given twice; give each metric once"),
    (["--config.metrics=('swd', 'swd')"], "--metrics: swd given twice; give each metric once"),
    (["--config.resume_from=gone.pkl"], "--config.resume_from=gone.pkl: no such file or directory"),
    (["--config.resume_from=/dev/null"], "/dev/null: the file is empty; expected an NVIDIA network pickle"),
    (["--config.resume_from=ffhq256"], "NVIDIA's transfer source ffhq-res256-mirror-paper256-noaug.pkl is not in"),
    ([f"--config.resume_from={Path(__file__).parents[1] / 'fixtures' / 'r3gan_pickles' / 'uncond16.pkl'}"],
     "uncond16.pkl: the network's model is 'r3gan', this run's 'stylegan2'; a transfer starts from a network of"),
    (["--mirror", "maybe"], "argument --mirror: 'maybe' is not a boolean (expected 1 or 0, true or false)"),
    (["--mbstd-group", "0"], "argument --mbstd-group: 0 is not a positive integer"),
    (["--gamma", "-1"], "argument --gamma: -1 is negative (expected a number >= 0)"),
    (["--experiment", "r3gan_ffhq64", "--cbase", "8192"], "--cbase: model 'r3gan' has no G.channel_base"),
    (["--glr", "0.001", "--config.G_lr=0.002"], "--glr sets G_lr, and --config.G_lr is given too; give one of "
                                                 "them"),
    (["--cmax", "32"], "--cmax sets G.channel_max, and --config.G.channel_max is given too"),
    (["--fp32", "1", "--config.D.num_fp16_res=2"], "--fp32 sets D.num_fp16_res, and --config.D.num_fp16_res is "
                                                    "given too"),
    (["--subset", "100000"], "--subset 100000: the dataset at "),
    (["--config.G.channel_base=0"], "has the empty shape"),
    (["--config.G.architecture=foo"], "--config.G.architecture: expected one of ('orig', 'skip', 'resnet'), got 'foo'"),
    (["--config.D.architecture=foo"], "--config.D.architecture: expected one of ('orig', 'skip', 'resnet'), got 'foo'"),
    # NVIDIA's fails on the ws' shape
    (["--config.G.mapping_layers=0"], "--map-depth / --config.G.mapping_layers 0 passes z and the label "
     "embedding through as w: 32 features, not w_dim 16; give the mapping at least one layer"),
    (["--config.G.w_avg_beta=2.0"], "--config.G.w_avg_beta: expected a finite number in [0, 1], got 2.0"),
    (["--config.workers=-1"], "--config.workers: expected a whole number of data workers >= 0 (0: none), got -1"),
    (["--config.batch_size=3", "--config.batch_gpu=0"],
     "--batch / --config.batch_size=3 cannot be split over 4 devices; use a multiple of 4 or set --batch-gpu / "
     "--config.batch_gpu"),
    (["--config.batch_size=8", "--config.batch_gpu=3"], "--batch / --config.batch_size=8 is not a multiple of "
                                                        "--batch-gpu / --config.batch_gpu=3"),
    (["--config.batch_size=12", "--config.batch_gpu=0"], "the per-device batch 3 (--batch 12 over 4 device(s)) is "
                                                         "not a multiple of D's minibatch-stddev group 2 (--mbstd-group"
                                                         " 2): change either"),
    (["--config.batch_size=12", "--config.batch_gpu=3"], "the per-device batch 3 (--batch-gpu 3) is not a multiple"),
    # the hyper-parameters' ranges, as the flags that set some of them check theirs
    (["--config.D_lr=-0.005"], "--config.D_lr: expected a finite number >= 0, got -0.005"),
    (["--config.G_lr=1e400"], "--config.G_lr: expected a finite number >= 0, got inf"),
    (["--config.ema_kimg=-5.0"], "--config.ema_kimg: expected a finite number >= 0, got -5.0"),
    (["--config.ema_beta=1.5"], "--config.ema_beta: expected a finite number in [0, 1], got 1.5"),
    (["--config.style_mixing_prob=2.0"], "--config.style_mixing_prob: expected a finite number in [0, 1], got 2.0"),
    (["--config.decay.G_lr=-1.0"], "--config.decay.G_lr: expected a finite number >= 0, got -1.0"),
    (["--config.betas=(0.0, 1.5)"], "--config.betas: expected Adam's two betas in [0, 1), got (0.0, 1.5)"),
    (["--config.betas=(0.0,)"], "--config.betas: expected Adam's two betas in [0, 1), got (0.0,)"),
    (["--config.pl_batch_shrink=0"], "--config.pl_batch_shrink: expected a whole number >= 1, got 0"),
    (["--config.G.channel_base=-4096"], "--config.G.channel_base: expected a number >= 0, got -4096"),
    (["--config.D.mbstd_num_channels=-1"], "--config.D.mbstd_num_channels: expected a number >= 0, got -1"),
    (["--config.D.mbstd_group_size=0"], "--config.D.mbstd_group_size: expected None (the whole per-device batch) "
                                        "or a group of at least 1, got 0"),
    (["--config.loss=hinged"], "--config.loss: unknown objective 'hinged'"),
    (["--config.model=stylegan9"], "stylegan9"),
    (["--compile-cache", "/dev/null"], "the compilation cache /dev/null (--compile-cache /dev/null) is not a "
                                       "directory this process can write"),
    (["--config.conv_grad=fast"], "--config.conv_grad: expected 'auto', 'xla' or 'forward', got 'fast'"),
    (["--config.optimizer=sgd"], "--config.optimizer: expected 'adam' or 'rmsprop', got 'sgd'"),
    (["--config.no_such_key=1"], "no_such_key"),
    (["--config.dataset=no-such-dataset"], "no-such-dataset"),
    (["--experiment", "no_such_experiment"], "unknown experiment 'no_such_experiment'"),
    # The augmentation flags only where they apply (NVIDIA's train.py); the config's values checked without
    # augmentation too: the checkpoint records them, and a resume must give the same.
    (["--aug", "noaug", "--augpipe", "bgc"], "--augpipe applies only with --aug ada or fixed (this run's aug is "
                                             "'noaug')"),
    (["--aug", "fixed", "--target", "0.5"], "--target applies only with --aug ada (this run's aug is 'fixed')"),
    (["--aug", "noaug", "--p", "0.5"], "--p applies only with --aug ada or fixed"),
    (["--aug", "noaug", "--config.augpipe=nosuch"], "--augpipe: expected a preset name (bg, bgc, bgcf"),
    (["--aug", "noaug", "--config.ada_target=-1"], "--target=-1.0: expected an interval >= 1"),
    (["--aug", "noaug", "--config.p=1.5"], "--p: expected a probability in [0, 1], got 1.5"),
    (["--aug", "fixed"], "--aug=fixed requires specifying --p"),  # stylegan2-ada's train.py
    # AugmentPipe's ValueErrors, as its TypeErrors; imgfilter's 21-pixel reflect padding on this 16x16 run
    (["--aug", "ada", "--config.augpipe={'imgfilter': 1, 'imgfilter_bands': (1, 1)}"],
     "--augpipe: imgfilter_bands needs 4 values"),
    (["--aug", "ada", "--config.augpipe={'xflip': 'yes'}"], "--augpipe: could not convert string to float"),
    (["--aug", "ada", "--config.augpipe=1"], "--augpipe: expected a preset name (bg, bgc, bgcf"),
    (["--aug", "ada", "--augpipe", "bgcf"], "imgfilter needs images whose short side is over 21 pixels (it "
     "reflect-pads by 21 pixels); this run trains at 16 on the short side"),
    # NVIDIA's None (the regulariser in the main phase) is not built: 0 only where the regulariser is off
    (["--config.G_reg_interval=0"], "--config.G_reg_interval: expected a whole number >= 1 (0 only without its"),
    (["--config.D_reg_interval=-16"], "--config.D_reg_interval: expected a whole number >= 1"),
    (["--config.ema_before_g_step=True"], "--config.ema_before_g_step=True needs d_first=True"),
    (["--config.adam_epsilon_hat=True", "--config.optimizer=rmsprop"],
     "--config.adam_epsilon_hat=True needs --config.optimizer=adam, got 'rmsprop'"),
    (["--config.adam_epsilon_hat=True", "--config.decay_kimg=10", "--config.decay.G_lr=0.001"],
     "--config.adam_epsilon_hat=True (TensorFlow's Adam) takes no lr or beta2 schedule"),
    (["--config.G_lr=nan"], "--config.G_lr=nan: expected a Python float literal (the config holds 0.0025)"),
    (["--coordinator", "nocolon", "--num-processes", "2", "--process-id", "0"],
     "--coordinator: expected host:port (e.g. 10.0.0.1:1234), got 'nocolon'"),
    (["--coordinator", "localhost:1234", "--num-processes", "1", "--process-id", "5"],
     "--process-id: expected 0 ... 0 (--num-processes 1), got 5"),
    (["--coordinator", "localhost:1234", "--num-processes", "-2", "--process-id", "0"],
     "--num-processes: expected a whole number >= 1, got -2"),
    (["--process-id", "-1"], "--process-id: expected a whole number >= 0, got -1"),
]

DRY_RUN_CASES = [  # what a run refuses, its dry run refuses
    (["--config.batch_size=0"], "--config.batch_size=0, --config.batch_gpu=2: expected a positive batch"),
    (["--aug", "ada", "--target", "5"], "--target=5.0: expected an interval >= 1"),
    (["--config.grid=-1"], "--config.grid: expected a whole number >= 1, got -1"),
    (["--config.G.channel_base=0"], "has the empty shape (0, 16, 16): check --config.G widths (channel_base, "),
    (["--config.D.architecture=resnet2"], "D.architecture: expected one of ('orig', 'skip', 'resnet')"),
    (["--config.G.mapping_layers=0"], "--config.G.mapping_layers 0 passes z and the label embedding through"),
    (["--config.metrics=swd"], "--config.metrics=swd: expected a Python tuple literal (the config holds ()); e.g. "
     "--config.metrics=\"('swd',)\""),
    (["--config.metrics=swd,pr50k3_full"], "e.g. --config.metrics=\"('swd', 'pr50k3_full')\""),
    (["--config.betas=0.99"], "--config.betas=0.99: expected a Python tuple literal (the config holds (0.0, 0.99)); "
     "e.g. --config.betas=\"(0.99,)\""),
]


@pytest.mark.parametrize("extra, expected", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_values_are_one_line_and_write_nothing(data_dir, tmp_path, capsys, extra, expected):
    outdir = tmp_path / "runs" / "run"  # --outdir's parent is created with it, and removed with it
    code, out, err = run_tool(train_cli.main, argv(data_dir, outdir, *extra), capsys)
    assert_one_error_line("train", code, out, err, expected)
    assert listing(tmp_path) == {}


@pytest.mark.parametrize("extra, expected", DRY_RUN_CASES, ids=[" ".join(c[0]) for c in DRY_RUN_CASES])
def test_a_dry_run_refuses_what_a_run_refuses(data_dir, tmp_path, capsys, extra, expected):
    code, out, err = run_tool(train_cli.main, [*argv(data_dir, tmp_path / "run", *extra), "--dry-run"], capsys)
    assert_one_error_line("train", code, out, err, expected)


@pytest.mark.parametrize("given, expected", [
    (["--cfg", "stylegan3-t"], "--cfg: NVIDIA's --cfg is --experiment here (stylegan3_t, stylegan3_r, ffhq256 for "
     "paper256, auto, ...: the files in experiments/)"),
    (["--cfg=paper256"], "--cfg: NVIDIA's --cfg is --experiment here"),
    (["--gpus", "8"], "--gpus: every device JAX sees trains (NVIDIA's --gpus); choose them with CUDA_VISIBLE_DEVICES"),
    (["--desc", "mine"], "--desc: the run directory is --outdir"),
    (["--nobench", "1"], "--nobench: NVIDIA's cuDNN benchmarking switch has no counterpart: XLA chooses its kernels"),
    (["--nhwc", "1"], "--nhwc: NVIDIA's memory-layout switch has no counterpart: XLA chooses the layouts"),
    (["--resu", "ffhq.pkl"], "unrecognised argument '--resu'"),  # no abbreviations, as NVIDIA's click
    (["--resume", "ffhq.pkl"], "--resume takes no value here (it continues the run in --outdir); NVIDIA's --resume "
     "PKL, a network to start from, is --config.resume_from=PKL"),
    (["--resume=ffhq.pkl"], "--resume takes no value here"),
    (["--bogus"], "unrecognised argument '--bogus'; config values are given as --config.KEY=VALUE"),
])
def test_nvidias_flags_this_cli_lacks_say_what_does_their_job(capsys, given, expected):
    code, out, err = run_tool(train_cli.main, ["--experiment", "digits", *given, "--dry-run"], capsys)
    assert_one_error_line("train", code, out, err, expected)


def test_an_outdir_that_is_a_file_or_cannot_be_created(data_dir, tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    for outdir, expected in ((tmp_path / "file", "is a file, not a directory"),
                             (tmp_path / "file" / "run", "cannot write there (Not a directory)")):
        code, out, err = run_tool(train_cli.main, argv(data_dir, outdir), capsys)
        assert_one_error_line("train", code, out, err, expected)
    assert (tmp_path / "file").read_text() == "mine"


def test_an_outdir_in_a_dataset_directory_is_refused_before_writing(data_dir, capsys):
    """The run's files would lie among the dataset's (the one it trains on here, or any other)."""
    dataset = data_dir / "digits-16"
    before = listing(data_dir)
    for outdir, expected in ((dataset, f"--outdir {dataset} is the dataset directory {dataset}; choose another"),
                             (dataset / "runs" / "a", f"--outdir {dataset / 'runs' / 'a'} is inside the dataset "
                                                      f"directory {dataset}; choose another --outdir")):
        code, out, err = run_tool(train_cli.main, argv(data_dir, outdir), capsys)
        assert_one_error_line("train", code, out, err, expected)
    assert listing(data_dir) == before


def test_the_dataset_directory_check_follows_where_the_run_writes(data_dir, tmp_path, monkeypatch):
    """'..' out of a dataset directory is outside it; a link into one is inside it."""
    from stylegan_jax.training.loop import RunDirectory, RunDirectoryError

    dataset = data_dir / "digits-16"
    monkeypatch.chdir(dataset)
    with RunDirectory(Path("..") / ".." / tmp_path.name / "run") as made:  # tmp_path/run, beside data_dir
        assert made.resolve() == (tmp_path / "run").resolve()
    (tmp_path / "link").symlink_to(dataset)
    with pytest.raises(RunDirectoryError, match=f"--outdir {tmp_path / 'link' / 'run'} is inside the dataset "
                                                f"directory {dataset.resolve()}; choose another --outdir"):
        RunDirectory(tmp_path / "link" / "run").__enter__()
    assert not (dataset / "run").exists()


@pytest.mark.parametrize("metric, detector", [("fid50k_full", "inception-2015-12-05.pt"), ("ppl2_wend", "vgg16.pt")])
def test_a_metric_whose_detector_is_missing_is_refused_before_training(data_dir, tmp_path, capsys, monkeypatch,
                                                                       metric, detector):
    """Named before the first step (the files are the user's to download), not as a traceback at tick 0."""
    from stylegan_jax.metrics import DETECTOR_DIR_ENV

    (tmp_path / "detectors").mkdir()
    monkeypatch.setenv(DETECTOR_DIR_ENV, str(tmp_path / "detectors"))
    before = listing(tmp_path)
    code, out, err = run_tool(train_cli.main, argv(data_dir, tmp_path / "run", "--metrics", f"swd,{metric}"), capsys)
    assert_one_error_line("train", code, out, err,
                          f"--metrics {metric}: detector {detector} not found in {tmp_path / 'detectors'}")
    assert listing(tmp_path) == before
    # A dry run describes a run meant for another machine: this one's detector files are not its business
    code, out, err = run_tool(train_cli.main, [*argv(data_dir, tmp_path / "run", "--metrics", f"swd,{metric}"),
                                               "--dry-run"], capsys)
    assert code == 0 and f'"{metric}"' in out, err


def test_a_run_directory_drops_the_temporary_files_a_killed_run_left(tmp_path):
    """`atomic_write`'s temporary files and `save_network`'s temporary and replaced directories of processes
    that no longer run (a kill mid-write leaves them) are removed once the directory is locked; the run's own
    files, a running process's temporary file (another tool's write beside the run's files) and files merely
    named alike stay."""
    run = tmp_path / "run"
    run.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    left = [f".stats.jsonl.tmp-{gone.pid}", f".fakes000008.png.tmp-{gone.pid}"]
    kept = ["stats.jsonl", "fakes000008.png", f".metric.npz.tmp-{os.getpid()}", ".notes.tmp-draft", "log.txt.tmp-1"]
    for name in left + kept:
        (run / name).write_text("x")
    for name in (f".network-snapshot-000008.tmp-{gone.pid}", f".network-snapshot-000004.old-{gone.pid}"):
        (run / name / "variables").mkdir(parents=True)  # save_network's, killed before its renames
    with RunDirectory(run):
        assert sorted(p.name for p in run.iterdir()) == sorted(kept + [".lock"])


def test_a_second_process_on_the_same_outdir_is_refused(data_dir, run, capsys):
    before = listing(run)
    with RunDirectory(run):  # what a running trainer holds
        code, out, err = run_tool(train_cli.main, argv(data_dir, run, "--kimg", "0.032"), capsys)
    assert_one_error_line("train", code, out, err, "is in use by another training process")
    assert listing(run) == before


@pytest.mark.parametrize("extra, expected", [
    (["--config.batch_size=16"], "belongs to another run (batch_size: checkpoint 8, config 16)"),
    (["--config.G.channel_max=32"], "G.channel_max: checkpoint 16, config 32"),
    (["--seed", "5"], "seed: checkpoint 0, config 5"),
    (["--no-resume"], "--no-resume: "),
])
def test_a_run_directory_is_continued_only_by_its_own_run(data_dir, run, capsys, extra, expected):
    before = listing(run)
    code, out, err = run_tool(train_cli.main, argv(data_dir, run, "--kimg", "0.032", *extra), capsys)
    assert_one_error_line("train", code, out, err, expected)
    assert listing(run) == before  # config.json included: a refused resume writes nothing


@pytest.mark.slow
def test_a_refused_resume_is_one_line_from_the_process(data_dir, run):
    """As users run it, in a process of its own: what libraries log reaches stderr there (under pytest it goes to
    the log capture), and a run refused after its checkpoint manager is made still prints one line."""
    proc = subprocess.run([sys.executable, "-m", "stylegan_jax.train",
                           *map(str, argv(data_dir, run, "--kimg", "0.032", "--no-resume"))],
                          capture_output=True, text=True, timeout=600)
    assert_one_error_line("train", proc.returncode, proc.stdout, proc.stderr, "--no-resume: ")


@pytest.mark.parametrize("extra", [[], ["--no-resume"]])
def test_a_run_directory_whose_checkpoints_were_removed_is_not_overwritten(data_dir, run, capsys, extra):
    """Removing ``checkpoints/`` to free space keeps the snapshots: a new run there would replace them."""
    shutil.rmtree(run / "checkpoints")
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    code, out, err = run_tool(train_cli.main, argv(data_dir, run, "--glr", "0.02", *extra), capsys)
    assert_one_error_line("train", code, out, err, f"{run} holds a run's network snapshots (network-snapshot-000000."
                          "008 ... network-snapshot-000000.016) but no checkpoint to continue it from")
    assert {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} == before


def test_a_finished_run_run_again_is_a_no_op(data_dir, run, capsys):
    before, events = listing(run / "checkpoints"), sorted(run.glob("events.out.tfevents.*"))
    code, out, err = run_tool(train_cli.main, argv(data_dir, run), capsys)
    assert code == 0, err
    assert "is finished (0.016 kimg of 0.016); nothing to do" in out
    assert listing(run / "checkpoints") == before
    assert sorted(run.glob("events.out.tfevents.*")) == events  # no new, empty TensorBoard file


def test_a_checkpoint_from_before_a_config_key_continues_the_run_that_does_what_it_did(data_dir, run):
    """Without ``subset``: the run of all images. Without ``real_labels_for_d_fakes`` or
    ``skip_nonfinite_updates``: a run with TensorFlow's Adam (``adam_epsilon_hat``: the TF lineages) continues
    with it on, any other with it off."""
    tf_keys = ("real_labels_for_d_fakes", "skip_nonfinite_updates")
    for tf_adam in (False, True):
        for step in (1, 2):  # as written before these keys were keys
            path = run / "checkpoints" / str(step) / "meta" / "metadata"
            meta = json.loads(path.read_text())
            for key in ("subset", *tf_keys):
                meta["config"].pop(key, None)
            meta["config"]["adam_epsilon_hat"] = tf_adam
            path.write_text(json.dumps(meta))
        for overrides, refused in (({}, None), ({"subset": 5}, "subset: checkpoint 0, config 5"),
                                   *(({key: not tf_adam}, f"{key}: checkpoint {tf_adam}, config {not tf_adam}")
                                     for key in tf_keys)):
            settings = {"adam_epsilon_hat": tf_adam, **dict.fromkeys(tf_keys, tf_adam), **overrides}
            trainer = Trainer(tiny_config(data_dir, kimg=0.024, tick=0.008, snap=1, **settings), run)
            try:
                if refused is None:
                    state, resumed = trainer.restore_or_init(resume=True, warn=print)
                    assert resumed and int(state.step) == 2
                else:
                    with pytest.raises(checkpoint.CheckpointError, match=refused):
                        trainer.restore_or_init(resume=True, warn=print)
            finally:
                trainer.manager.close()


def test_a_checkpoint_from_before_tick_0_keeps_its_tick_numbers_and_cadence(data_dir, run):
    """Checkpoints written before NVIDIA's tick 0 count the ticks after it: resumed, they count one more, so that
    the next tick prints the number and falls on the snapshot cadence it had."""
    path = run / "checkpoints" / "2" / "meta" / "metadata"
    meta = json.loads(path.read_text())
    assert meta["tick0"] and meta["tick"] == 2
    for tick0, expected in ((True, 2), (False, 3)):
        path.write_text(json.dumps({**meta, "tick0": tick0} if tick0 else {k: v for k, v in meta.items()
                                                                           if k != "tick0"}))
        trainer = Trainer(tiny_config(data_dir, kimg=0.024, tick=0.008, snap=1), run)
        try:
            trainer.restore_or_init(resume=True, warn=print)
            assert trainer.start_tick == expected
        finally:
            trainer.manager.close()


def corrupt(step_dir, how):
    if how == "truncated arrays":
        for f in (step_dir / "state").rglob("*"):
            if f.is_file() and f.stat().st_size > 1000:
                f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif how == "truncated data file":  # the largest of the arrays' data files cut short
        f = max((step_dir / "state").glob("ocdbt.process_*/d/*"), key=lambda f: f.stat().st_size)
        f.write_bytes(f.read_bytes()[:100])
    elif how == "deleted metadata":
        shutil.rmtree(step_dir / "meta")
    elif how == "garbage metadata":
        (step_dir / "meta" / "metadata").write_text("{ garbage")
    elif how == "garbage iterator position":
        (step_dir / "data" / "process_0-of-1.json").write_text("{ garbage")
    elif how == "deleted state":
        shutil.rmtree(step_dir / "state")
    elif how in ("deleted _CHECKPOINT_METADATA", "deleted state/_METADATA"):
        (step_dir / how.split()[1]).unlink()
    elif how in ("garbage _CHECKPOINT_METADATA", "garbage state/_METADATA"):
        (step_dir / how.split()[1]).write_text("{ garbage")


CORRUPTIONS = ["truncated arrays", "truncated data file", "deleted metadata", "garbage metadata", "deleted state",
               "garbage iterator position", "deleted _CHECKPOINT_METADATA", "deleted state/_METADATA",
               "garbage _CHECKPOINT_METADATA", "garbage state/_METADATA"]


def restore_run(data_dir, run, warn):
    """(state, resumed, trainer) of `Trainer.restore_or_init` on ``run``, its warnings through ``warn``."""
    trainer = Trainer(tiny_config(data_dir, kimg=0.024, tick=0.008, snap=1), run)
    try:
        state, resumed = trainer.restore_or_init(resume=True, warn=warn)
    finally:
        trainer.manager.close()
    return state, resumed, trainer


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_a_corrupted_newest_checkpoint_is_set_aside_for_the_previous_one(data_dir, run, how):
    corrupt(run / "checkpoints" / "2", how)
    warnings = []
    state, resumed, trainer = restore_run(data_dir, run, warnings.append)
    assert resumed and int(state.step) == 1 and trainer.start_nimg == 8
    assert len(warnings) == 1 and warnings[0].startswith(
        f"warning: skipping the unreadable checkpoint {run.absolute()}/checkpoints/2 (")
    assert (run / "checkpoints" / "2.unreadable").is_dir()  # kept for a post-mortem, out of the way
    if how == "truncated data file":  # TensorStore's reason, under Orbax's message that names no file
        assert "Requested byte range" in warnings[0] and "bound method" not in warnings[0]


def test_a_save_cut_off_is_cleaned_up_when_the_run_goes_on(data_dir, run, capsys):
    """Orbax's temporary directory of a step never saved again (a full disk at step 7, say) is gone once the
    resumed run has saved."""
    (run / "checkpoints" / "7.orbax-checkpoint-tmp" / "state").mkdir(parents=True)
    code, out, err = run_tool(train_cli.main, argv(data_dir, run, "--kimg", "0.024"), capsys)
    assert code == 0, err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["1", "2", "3"]


def test_a_checkpoint_of_a_dataset_of_another_size_is_refused(data_dir, run):
    """A resume on other images (``--data`` naming another dataset) would take the data position in them, not
    continue the run: refused, naming both; a checkpoint saved before the dataset was recorded continues."""
    metas = [run / "checkpoints" / str(step) / "meta" / "metadata" for step in (1, 2)]
    for path in metas:
        meta = json.loads(path.read_text())
        assert meta["dataset"] == {"path": str(data_dir.absolute() / "digits-16"), "num_images": 1797,
                                   "source": "scikit-learn load_digits()"}
        meta["dataset"] = {"path": "/elsewhere/digits", "num_images": 1000}
        path.write_text(json.dumps(meta))
    with pytest.raises(checkpoint.CheckpointError, match=(
            rf"checkpoints/2 was trained on the 1000 images of /elsewhere/digits; the dataset at "
            rf"{data_dir.absolute() / 'digits-16'} holds 1797: resume with the run's own dataset \(--data, "
            r"--config.data_dir\)$")):
        restore_run(data_dir, run, pytest.fail)
    for path in metas:
        meta = json.loads(path.read_text())
        del meta["dataset"]
        path.write_text(json.dumps(meta))
    state, resumed, _ = restore_run(data_dir, run, pytest.fail)
    assert resumed and int(state.step) == 2


def test_a_checkpoint_of_a_dataset_converted_otherwise_is_a_warning(data_dir, run):
    """As many images under the same name but converted from another source (or with another --transform):
    other images, or the same ones converted again from a moved folder, which only the user can tell apart:
    the run continues and says so once; the same conversion made again (a new dataset_id, which the checkpoint
    does not record) continues without a word."""
    metas = [run / "checkpoints" / str(step) / "meta" / "metadata" for step in (1, 2)]
    for path in metas:
        meta = json.loads(path.read_text())
        meta["dataset"].update(source="/home/me/other-digits", transform="center-crop")
        path.write_text(json.dumps(meta))
    warnings = []
    state, resumed, _ = restore_run(data_dir, run, warnings.append)
    assert resumed and int(state.step) == 2
    assert warnings == [
        f"warning: {run.absolute()}/checkpoints/2 was trained on a dataset of as many images converted otherwise "
        "(source '/home/me/other-digits', now 'scikit-learn load_digits()'; --transform 'center-crop', now 'none'); "
        f"continuing on the dataset at {data_dir.absolute() / 'digits-16'}: if these are other images, stop and "
        "resume with the run's own dataset (--data, --config.data_dir)"]
    for path in metas:
        meta = json.loads(path.read_text())
        meta["dataset"].update(source="scikit-learn load_digits()", dataset_id="0" * 32)
        del meta["dataset"]["transform"]
        path.write_text(json.dumps(meta))
    state, resumed, _ = restore_run(data_dir, run, pytest.fail)
    assert resumed and int(state.step) == 2


def test_a_checkpoint_of_another_process_count_names_it(data_dir, run):
    """Not damage to fall back from: the run's checkpoints hold one data position per process."""
    for step in (1, 2):
        data = run / "checkpoints" / str(step) / "data"
        (data / "process_0-of-1.json").rename(data / "process_0-of-2.json")
        (data / "process_1-of-2.json").write_text((data / "process_0-of-2.json").read_text())
    with pytest.raises(checkpoint.CheckpointError, match=r"2 was saved by 2 process\(es\) .*; resume with 2, "
                                                         r"this run has 1"):
        restore_run(data_dir, run, pytest.fail)


def test_a_step_damaged_again_is_set_aside_beside_the_one_set_aside_before(data_dir, run):
    (run / "checkpoints" / "2.unreadable").mkdir()  # step 2, damaged in an earlier start, saved again since
    (run / "checkpoints" / "2.unreadable" / "state").mkdir()
    corrupt(run / "checkpoints" / "2", CORRUPTIONS[0])
    warnings = []
    state, resumed, _ = restore_run(data_dir, run, warnings.append)
    assert resumed and int(state.step) == 1
    assert len(warnings) == 1 and warnings[0].endswith("it is moved to 2.unreadable-2")
    assert (run / "checkpoints" / "2.unreadable" / "state").is_dir()  # the earlier one kept
    assert (run / "checkpoints" / "2.unreadable-2").is_dir()


@pytest.mark.slow
def test_a_run_with_a_truncated_newest_checkpoint_continues_from_the_previous_one(data_dir, run):
    """As a process, as users run it: the warning is the one thing said of the damage (Orbax's abandoned reads
    reported thousands of lines of tracebacks on stderr)."""
    corrupt(run / "checkpoints" / "2", "truncated data file")
    proc = subprocess.run([sys.executable, "-m", "stylegan_jax.train",
                           *map(str, argv(data_dir, run, "--kimg", "0.024"))], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"warning: skipping the unreadable checkpoint {run.absolute()}/checkpoints/2" in proc.stdout
    assert "Traceback" not in proc.stderr and "exception" not in proc.stderr.lower(), proc.stderr[-3000:]
    with ocp.CheckpointManager((run / "checkpoints").absolute()) as manager:
        assert manager.all_steps() == [1, 2, 3]
        meta = manager.restore(3, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    assert meta["nimg"] == 24  # steps 2 and 3 trained again from step 1's 8 images


def test_a_directory_of_unreadable_checkpoints_is_an_error_not_a_fresh_start(data_dir, run, capsys):
    for step in (1, 2):
        corrupt(run / "checkpoints" / str(step), "deleted metadata")
    code, out, err = run_tool(train_cli.main, argv(data_dir, run, "--kimg", "0.032"), capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and "Traceback" not in err
    assert lines[-1].startswith("train: error: ") and "none of the checkpoints [2, 1] can be read (the newest, 2: " \
        in lines[-1]


def test_a_second_signal_while_the_newest_checkpoint_loads_stops_the_run_and_keeps_the_checkpoint(
        data_dir, run, capsys, monkeypatch):
    """Ctrl-C twice (or SIGTERM twice) during a resume's restore stops the run at once, as at any other moment
    of its start; the checkpoint that was loading is the run's, not one to set aside as unreadable."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are the main thread's")
    restore = ocp.CheckpointManager.restore

    def interrupted(self, step, *args, **kwargs):
        if step == 2:
            for _ in range(2):
                os.kill(os.getpid(), signal.SIGINT)
        return restore(self, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "restore", interrupted)
    code, out, err = run_tool(train_cli.main, argv(data_dir, run, "--kimg", "0.032"), capsys)
    assert code == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == ("train: stopped by SIGINT; nothing new to save; run the same command to "
                                            "resume")
    assert "unreadable" not in out + err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["1", "2"]


@pytest.mark.slow
@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "No space left on device"),
                                          (errno.EROFS, "Read-only file system")])
def test_a_full_or_read_only_disk_ends_the_run_with_one_line_and_keeps_the_last_checkpoint(
        data_dir, run, capsys, monkeypatch, code, reason):
    def full(*args, **kwargs):
        raise OSError(code, reason)

    monkeypatch.setattr(ocp.CheckpointManager, "save", full)
    status, out, err = run_tool(train_cli.main, argv(data_dir, run, "--kimg", "0.032"), capsys)
    lines = [line for line in err.splitlines() if line.strip() and "train: error" in line]
    assert status == 1 and "Traceback" not in err
    assert lines == [f"train: error: cannot write a checkpoint in {run.absolute()}/checkpoints ({reason}); the "
                     "newest complete one (2) is intact"]
    with ocp.CheckpointManager((run / "checkpoints").absolute()) as manager:
        assert manager.all_steps() == [1, 2]


@pytest.mark.slow
@pytest.mark.parametrize("write", ["checkpoint", "network snapshot"])
def test_a_write_the_file_system_refuses_in_orbax_ends_the_run_with_one_line(data_dir, run, capsys, monkeypatch,
                                                                            write):
    """Orbax's arrays are written by TensorStore, which reports the file system's refusal as a ValueError
    ("... [os_error_code=27]"): here a real one, from a file size limit (RLIMIT_FSIZE, as a quota would) set
    around the write alone. One line (Orbax's threads' reports of it dropped), and the checkpoints before it
    intact."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are the main thread's")
    target = (checkpoint, "save") if write == "checkpoint" else (loop, "save_network")
    original = getattr(*target)

    def limited(*args, **kwargs):
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
        try:
            return original(*args, **kwargs)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, handler)

    monkeypatch.setattr(*target, limited)
    status, out, err = run_tool(train_cli.main, argv(data_dir, run, "--kimg", "0.032"), capsys)
    lines = [line for line in err.splitlines() if line.strip() and "train: error" in line]
    assert status == 1 and "Traceback" not in err and "Logging error" not in err, err[-3000:]
    where = (f"a checkpoint in {run.absolute()}/checkpoints (File too large); the newest complete one (2) is intact"
             if write == "checkpoint" else f"the network snapshot {run}/network-snapshot-000000.024 (File too large); "
             "the checkpoint before it is complete: run the same command to write it")
    assert lines == [f"train: error: cannot write {where}"]
    with ocp.CheckpointManager((run / "checkpoints").absolute()) as manager:
        assert manager.all_steps() == ([1, 2] if write == "checkpoint" else [1, 2, 3])


def test_orbax_threads_reports_of_a_refused_write_are_dropped_and_other_records_kept(caplog):
    """Orbax's writing threads log a refused write as ``"... raised an exception: %s"`` with TensorStore's
    error as the argument (its whole spec, a page long), when they do it before the tool's one line: dropped;
    an unrelated error logged so is kept."""
    cli._drop_reports_of_failed_io()
    refused = ValueError('OUT_OF_RANGE: Error opening "zarr" driver: Error writing "D.params.b16.conv0.bias/'
                         '.zarray" in OCDBT database at local file "/run/x": Failed to write 2 bytes to file 30: '
                         "File too large [os_error_code='27'] [tensorstore_spec='{...}']")
    message = "[process=%d][thread=%s][operation_id=%s] _SignalingThread.run() raised an exception: %s"
    with caplog.at_level(logging.ERROR):
        logging.getLogger("absl").error(message, 0, "write_metadata_after_commits", "23", refused)
        logging.getLogger("absl").error(message, 0, "save", "24", ValueError("a bug of ours"))
    assert [r.getMessage() for r in caplog.records] == [
        "[process=0][thread=save][operation_id=24] _SignalingThread.run() raised an exception: a bug of ours"]


def test_tiny_keeps_the_values_given_on_the_command_line(data_dir, tmp_path, capsys):
    code, out, err = run_tool(train_cli.main, ["--experiment", "ffhq256", "--dry-run", "--config.tiny=True",
                                               "--kimg", "0.5", "--config.batch_size=16", "--snap", "7",
                                               "--config.D.channel_max=32"], capsys)
    assert code == 0, err
    resolved = json.loads(out[: out.rindex("}") + 1])
    assert (resolved["kimg"], resolved["batch_size"], resolved["snap"]) == (0.5, 16, 7)
    assert resolved["D"]["channel_max"] == 32  # a width given on the command line wins too
    assert resolved["resolution"] == 16 and resolved["G"]["channel_max"] == 16  # the rest is tiny


def test_checkpoint_metadata_names_the_images_and_ticks(finished):
    with ocp.CheckpointManager((finished / "checkpoints").absolute()) as manager:
        meta = manager.restore(2, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    assert (meta["nimg"], meta["tick"], meta["config"]["kimg"]) == (16, 2, 0.016)
    assert set(checkpoint.RESUMABLE) <= set(meta["config"])
    assert np.isclose(meta["kimg"], 0.016)


def test_the_default_run_directory_is_named_after_the_experiment_file(tmp_path):
    """Two experiment files of one's own that keep the name of the config they build on get a run directory
    each (the config's ``name`` would give both ``runs/digits``, and the resume check would refuse the second)."""
    mine = tmp_path / "my_digits.py"
    mine.write_text("from stylegan_jax.training.config import load_experiment\n\n\n"
                    "def get_config():\n    return load_experiment('digits')\n")
    assert train_cli.default_outdir(str(mine)) == Path("runs") / "my_digits"
    assert train_cli.default_outdir("ablations/stylegan2_c") == Path("runs") / "stylegan2_c"
    assert train_cli.default_outdir("quickstart") == Path("runs") / "quickstart"


def test_tiny_keeps_a_dict_augpipe(capsys):
    """shrink_to_tiny's copy holds a dict augpipe as a ConfigDict; the overrides applied again still set it."""
    code = train_cli.main(["--experiment", "quickstart", "--config.tiny=True", "--aug", "ada",
                           "--config.augpipe={'xflip': 1}", "--dry-run"])
    assert code == 0, capsys.readouterr().err
