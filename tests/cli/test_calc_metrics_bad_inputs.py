"""calc_metrics on bad input: one error line, exit status 1, nothing written (no metric line appended, no
statistics cached)."""

import subprocess
import sys

import pytest

from stylegan_jax import calc_metrics
from tests.cli.usage import assert_one_error_line, expect_usage_error

SWD = ["--metrics", "swd", "--cache-dir", "{root}/cache", "--batch-size", "8"]
RUN = [*SWD, "--network", "{root}/run/snap"]  # conditional (3 classes), 16x16x1, in a run dir naming `dataset`

# (argv with {placeholders} of the `root` fixture (conftest), a substring of the error line)
CASES = {
    "unknown metric": (["--metrics", "fid,swd", "--network", "{root}/run/snap"], "argument --metrics: unknown "
                       "metric fid; valid: fid50k_full"),
    "no metric": (["--metrics", ",", "--network", "{root}/run/snap"],
                  "argument --metrics: ',' names no metric; valid: "),
    "a metric twice": (["--metrics", "swd, fid50k_full,swd", "--network", "{root}/run/snap"],
                       "argument --metrics: 'swd, fid50k_full,swd': swd given twice; give each metric once"),
    "network does not exist": ([*SWD, "--network", "{root}/nothere", "--data", "{root}/uncond"],
                               "{root}/nothere: no such file or directory"),
    "network is not a network": ([*SWD, "--network", "{root}/afile", "--data", "{root}/uncond"],
                                 "{root}/afile: not a readable pickle"),
    "network directory without a snapshot": ([*SWD, "--network", "{root}/uncond", "--data", "{root}/uncond"],
                                             "{root}/uncond: no readable network.json"),
    "network empty": ([*SWD, "--network", ""], "argument --network: empty path"),
    "data does not exist": ([*RUN, "--data", "{root}/nodata"], "dataset '{root}/nodata' not found"),
    "data is a file": ([*RUN, "--data", "{root}/afile"], "{root}/afile is a file, not a dataset directory"),
    "data is an empty directory": ([*RUN, "--data", "{root}/emptydir"], "{root}/emptydir is an empty directory, "
                                   "not a dataset directory"),
    "data is a folder of other files": ([*RUN, "--data", "{root}/outside"], "{root}/outside is not a dataset (no "
                                        "dataset_info.json in it); convert images into a new directory"),
    "data empty": ([*RUN, "--data", ""], "argument --data: empty path"),
    "no data outside a run": ([*SWD, "--network", "{root}/outside/snap"], "is not in a training run directory: "
                              "pass --data"),
    "run config not JSON": ([*SWD, "--network", "{root}/badrun/snap"], "badrun/config.json: not a readable "
                            "training run config"),
    "run config of another type": ([*SWD, "--network", "{root}/typerun/snap"], "typerun/config.json: its xflip is "
                                   "'no'; expected true or false (fix it, or move the network out of this directory)"),
    "run config subset a bool": ([*SWD, "--network", "{root}/boolrun/snap"], "boolrun/config.json: its subset is "
                                 "True; expected a whole number of images >= 0"),
    "run config not an object": ([*SWD, "--network", "{root}/listrun/snap"], "listrun/config.json: not a "
                                 "training run config (a JSON list"),
    "run dataset gone": ([*SWD, "--network", "{root}/gonerun/snap"], "dataset '{root}/gone' not found"),
    "conditional network, unlabelled data": ([*RUN, "--data", "{root}/uncond"], "the network is conditional "
                                             "(c_dim 3) but dataset {root}/uncond has no labels"),
    "conditional network, other classes": ([*RUN, "--data", "{root}/cond5"], "has labels of c_dim 5"),
    "data of another resolution": ([*RUN, "--data", "{root}/small"], "holds 8x8x1 images but the generator "
                                   "makes 16x16x1"),
    "batch-size zero": ([*RUN, "--batch-size", "0"], "argument --batch-size: 0 is not a positive integer"),
    "batch-size negative": ([*RUN, "--batch-size", "-4"], "argument --batch-size: -4 is not a positive"),
    "negative seed": ([*RUN, "--seed", "-1"], "argument --seed: seed -1 is outside 0..4294967295"),
    "seed not a number": ([*RUN, "--seed", "x"], "argument --seed: 'x' is not an integer"),
    "cache-dir is a file": ([*RUN, "--cache-dir", "{root}/afile"], "--cache-dir: {root}/afile exists and is not"),
    "detector missing": (["--metrics", "fid50k_full", "--network", "{root}/run/snap", "--detector-dir",
                          "{root}/nodetectors"], "inception-2015-12-05.pt not found in {root}/nodetectors"),
    "detector-dir is a file": (["--metrics", "fid50k_full", "--network", "{root}/run/snap", "--detector-dir",
                                "{root}/afile"], "detector directory {root}/afile is a file, not a directory"),
    "no network": (["--metrics", "swd"], "the following arguments are required: --network"),
    "a later metric the network cannot take": ([*RUN[:1], "swd,eqt50k_int", *RUN[2:]], "eqt50k_int transforms the "
                                                "generator's input; model 'stylegan2' takes no input transform"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_error_line_and_writes_nothing(case, root, capsys):
    argv, expected = CASES[case]
    paths = {"root": root}
    expect_usage_error("calc_metrics", calc_metrics.main, [a.format_map(paths) for a in argv],
                       expected.format_map(paths), root, capsys)


@pytest.mark.slow
def test_bad_input_as_a_process(root):
    argv, expected = CASES["conditional network, unlabelled data"]
    proc = subprocess.run([sys.executable, "-m", "stylegan_jax.calc_metrics",
                           *(a.format(root=root) for a in argv)], capture_output=True, text=True, timeout=300)
    assert_one_error_line("calc_metrics", proc.returncode, proc.stdout, proc.stderr, expected.format(root=root))


def test_with_data_given_the_run_configs_dataset_keys_are_neither_read_nor_checked(root):
    """--data names the dataset: the run's dataset, data_dir, xflip and subset are not read, so a config with
    other types there (written by something else than training) is no error; its seed is still read."""
    run_dir, config = calc_metrics.run_config(str(root / "typerun" / "snap"), data_given=True)
    assert run_dir == root / "typerun" and config["xflip"] == "no"
    with pytest.raises(calc_metrics.MetricError, match="its xflip is 'no'"):
        calc_metrics.run_config(str(root / "typerun" / "snap"))
