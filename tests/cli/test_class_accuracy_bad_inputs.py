"""The class_accuracy CLI on bad input: one error line, exit status 1, nothing written."""

import pytest

from stylegan_jax.metrics import class_accuracy
from tests.cli.usage import expect_usage_error

NET = ["--network", "{root}/run/snap"]  # conditional, 3 classes, 16x16x1

# (argv with {placeholders}: `root` (conftest) and `uncond`, a substring of the error line)
CASES = {
    "unconditional network": (["--network", "{uncond}", "--dataset", "{dataset}"], "--network {uncond} is "
                              "unconditional: class accuracy needs a conditional one"),
    "unlabelled dataset": ([*NET, "--dataset", "{root}/uncond"], "--dataset {root}/uncond holds 16x16x1 images "
                           "with no labels; the network makes 16x16x1 images of 3 classes"),
    "dataset of other classes": ([*NET, "--dataset", "{root}/cond5"], "with class labels of c_dim 5"),
    "dataset of another resolution": ([*NET, "--dataset", "{root}/small"], "holds 8x8x1 images"),
    "dataset of one class in use": ([*NET, "--dataset", "{root}/oneclass"], "the classifier trains on 80% of the "
                                    "dataset's 6 image(s): 4 image(s) of 1 class(es); it needs images of two classes "
                                    "or more there"),
    "dataset does not exist": ([*NET, "--dataset", "{root}/nodata"], "dataset '{root}/nodata' not found"),
    "network does not exist": (["--network", "{root}/nothere", "--dataset", "{dataset}"], "{root}/nothere: no "
                               "such file or directory"),
    "unknown model": ([*NET, "--dataset", "{dataset}", "--model", "stylegan9"], "stylegan9"),
    "another model": ([*NET, "--dataset", "{dataset}", "--model", "r3gan"], "--model r3gan: --network "
                      "{root}/run/snap holds a stylegan2 network"),
    "another model, a pickle that records none": (["--network", "{cond}", "--dataset", "{dataset}", "--model",
                                                   "r3gan"], "{cond}: its G_kwargs build no r3gan generator ("),
    "another model whose kwargs build": (["--network", "{cond}", "--dataset", "{dataset}", "--model", "stylegan3"],
                                         "{cond}: its G_kwargs build no stylegan3 generator (TypeError: "),
    "per-class zero": ([*NET, "--dataset", "{dataset}", "--per-class", "0"], "argument --per-class: 0 is not a "
                       "positive integer"),
    "network empty": (["--network", "", "--dataset", "{dataset}"], "argument --network: empty path"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_error_line_and_writes_nothing(case, root, dataset, uncond_pkl, cond_pkl, capsys):
    argv, expected = CASES[case]
    paths = dict(root=root, dataset=dataset, uncond=uncond_pkl, cond=cond_pkl)
    expect_usage_error("class_accuracy", class_accuracy.main, [a.format_map(paths) for a in argv],
                       expected.format_map(paths), root, capsys)
