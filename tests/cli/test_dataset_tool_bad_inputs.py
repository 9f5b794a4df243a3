"""dataset_tool on bad input: one error line, exit status 1, nothing written, and above all nothing of the
user's lost: --overwrite replaces only a dataset the tool wrote, never a file, a folder of other things or the
source."""

import subprocess
import sys
import zipfile

import pytest

from stylegan_jax import dataset_tool
from stylegan_jax.data import read_dataset_info
from stylegan_jax.data.convert import convert_images
from tests.cli.usage import assert_one_error_line, expect_usage_error
from tests.data.imagefiles import random_pixels, save, write_labels

SRC = ["--source", "{src}"]
TO = [*SRC, "--dest", "{out}"]
NAN = float("nan")

# (argv with {placeholders} of the `paths` fixture, a substring of the error line, labels of {src}'s 3 images)
CASES = {
    "dest is a file": ([*SRC, "--dest", "{file}", "--overwrite"], "{file} is a file, not a dataset directory; it "
                       "is never replaced", None),
    "dest is a user folder": ([*SRC, "--dest", "{mine}", "--overwrite"], "{mine} is a folder holding other files "
                              "than a dataset (e.g. 'notes.txt'); --overwrite replaces only a dataset", None),
    "dest is a dataset with a user file in it": ([*SRC, "--dest", "{dsplus}", "--overwrite"], "{dsplus} is a "
                                                 "folder holding other files than a dataset (e.g. 'notes.txt')", None),
    "dest is a link": ([*SRC, "--dest", "{link}", "--overwrite"], "{link} is a symbolic link", None),
    "dest is the source": ([*SRC, "--dest", "{src}", "--overwrite"], "--dest {src} is --source {src}", None),
    "dest inside the source": ([*SRC, "--dest", "{src}/ds"], "--dest {src}/ds lies inside --source {src}", None),
    "dest contains the source": (["--source", "{nested}/images", "--dest", "{nested}", "--overwrite"],
                                 "--dest {nested} contains --source {nested}/images", None),
    "dest is the source zip": (["--source", "{zip}", "--dest", "{zip}", "--overwrite"], "--dest {zip} is --source",
                               None),
    "dest under a file": ([*SRC, "--dest", "{file}/ds"], "{file}/ds lies under {file}, which is a file", None),
    "dest is a dataset, no --overwrite": ([*SRC, "--dest", "{ds}"], "{ds} already exists (pass --overwrite", None),
    "dest empty": ([*SRC, "--dest", ""], "argument --dest: empty path", None),
    "source empty": (["--source", "", "--dest", "{out}"], "argument --source: empty path", None),
    "source does not exist": (["--source", "{missing}", "--dest", "{out}"], "source {missing} does not exist", None),
    "source is neither folder nor zip": (["--source", "{file}", "--dest", "{out}"], "source {file} is neither a "
                                         "folder nor a .zip archive", None),
    "source is a truncated zip": (["--source", "{cutzip}", "--dest", "{out}"], "source {cutzip} is not a "
                                  "readable .zip archive", None),
    "source is empty": (["--source", "{empty}", "--dest", "{out}"], "source {empty} holds no files", None),
    "class label of a million": (TO, "gives '0.png' the label 1000000: labels must be all integer classes in "
                                 "[0, 100000)", [1_000_000, 0, 1]),
    "negative class label": (TO, "gives '1.png' the label -1: labels must be", [0, -1, 1]),
    "fractional label": (TO, "gives '0.png' the label 1.5:", [1.5, 0, 1]),
    "fractional label after whole ones": (TO, "gives '2.png' the label 1.25:", [0, 2.0, 1.25]),
    "string label": (TO, "gives '0.png' the label '3':", ["3", 0, 1]),
    "boolean label": (TO, "gives '0.png' the label True:", [True, 0, 1]),
    "label vector with nan": (TO, "gives '1.png' the label [nan, 1.0] (the first has 2 numbers)",
                              [[0.5, 1.0], [NAN, 1.0], [0.0, 0.0]]),
    "label beyond float32": (TO, "gives '0.png' the label [1e+300, 1.0] (the first has 2 numbers)",
                             [[1e300, 1.0], [0.0, 1.0], [0.0, 0.0]]),
    "integer label beyond float32": (TO, f"gives '1.png' the label [0, {10**40}] (the first has 2 numbers)",
                                     [[0.0, 1.0], [0, 10**40], [0.0, 0.0]]),
    "label vectors of two lengths": (TO, "gives '2.png' the label [1.0] (the first has 2 numbers)",
                                     [[0.5, 1.0], [0.0, 1.0], [1.0]]),
    "empty label vector": (TO, "gives '0.png' the label []:", [[], [], []]),
    "class and vector labels mixed": (TO, "gives '1.png' the label [0.5]:", [1, [0.5], 0]),
    "resolution not a number": ([*TO, "--resolution", "abc"], "bad --resolution 'abc': expected N or WxH", None),
    "resolution zero": ([*TO, "--resolution", "0"], "bad --resolution '0'", None),
    "resolution negative": ([*TO, "--resolution=-16"], "bad --resolution '-16'", None),
    "resolution of three numbers": ([*TO, "--resolution", "16x16x3"], "bad --resolution '16x16x3'", None),
    "resolution not a power of two": ([*TO, "--resolution", "24"], "resolution 24 is not a power of two >= 4 (the "
                                      "networks need one); give --resolution (and --transform) such a size", None),
    "resolution too large": ([*TO, "--resolution", "1048576"], "resolution 1048576 is above 4096", None),
    "resolution of an unsupported ratio": ([*TO, "--resolution", "16x3"], "resolution 16x3 is not a small base "
                                           "doubled: width and height must be w0 * 2^k and h0 * 2^k", None),
    "unknown transform": ([*TO, "--transform", "crop"], "argument --transform: invalid choice: 'crop'", None),
    "channels 2": ([*TO, "--channels", "2"], "argument --channels: invalid choice: 2", None),
    "max-images zero": ([*TO, "--max-images", "0"], "bad --max-images 0: expected a positive number", None),
    "max-images not a number": ([*TO, "--max-images", "all"], "argument --max-images: invalid int value", None),
    "no dest": (SRC, "the following arguments are required: --dest", None),
}


@pytest.fixture
def paths(tmp_path):
    """The placeholders of `CASES`: a source of three 8x8 images (and its zip), a dataset the tool made, that
    dataset with a user's file added, a user's folder, a link to it, a plain file, an empty folder."""
    src = tmp_path / "src"
    for i in range(3):
        save(src / f"{i}.png", random_pixels(i, (8, 8, 3)))
    with zipfile.ZipFile(tmp_path / "src.zip", "w") as z:
        for i in range(3):
            z.write(src / f"{i}.png", f"{i}.png")
    for i in range(2):
        save(tmp_path / "nested" / "images" / f"{i}.png", random_pixels(i, (8, 8, 3)))
    for name in ("ds", "dsplus"):
        convert_images(src, tmp_path / name, progress=False)
    (tmp_path / "dsplus" / "notes.txt").write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "mine")
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "empty").mkdir()
    (tmp_path / "cut.zip").write_bytes((tmp_path / "src.zip").read_bytes()[:100])
    names = ["src", "zip", "nested", "ds", "dsplus", "mine", "link", "file", "empty", "out", "missing", "cutzip"]
    files = ["src", "src.zip", "nested", "ds", "dsplus", "mine", "link", "afile", "empty", "out", "nothere",
             "cut.zip"]
    return {name: tmp_path / file for name, file in zip(names, files, strict=True)}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_error_line_and_loses_nothing(case, paths, tmp_path, capsys):
    argv, expected, labels = CASES[case]
    if labels is not None:
        write_labels(paths["src"], {f"{i}.png": label for i, label in enumerate(labels)})
    expect_usage_error("dataset_tool", dataset_tool.main, [a.format_map(paths) for a in argv],
                       expected.format_map(paths), tmp_path, capsys)


def test_overwrite_replaces_a_dataset_the_tool_made(paths, capsys):
    assert dataset_tool.main(["--source", str(paths["src"]), "--dest", str(paths["ds"]), "--overwrite",
                              "--max-images", "2"]) == 0
    assert read_dataset_info(paths["ds"])["num_images"] == 2
    assert sorted(p.name for p in paths["ds"].parent.glob(".ds.partial-*")) == []


def test_an_empty_directory_is_a_destination(paths):
    paths["empty"].rmdir()
    paths["empty"].mkdir()
    assert dataset_tool.main(["--source", str(paths["src"]), "--dest", str(paths["empty"])]) == 0
    assert read_dataset_info(paths["empty"])["num_images"] == 3


def test_labels_up_to_the_limit_are_classes(paths):
    write_labels(paths["src"], {"0.png": 0, "1.png": 99_999, "2.png": 1})
    assert dataset_tool.main(["--source", str(paths["src"]), "--dest", str(paths["out"])]) == 0
    assert read_dataset_info(paths["out"])["c_dim"] == 100_000


@pytest.mark.slow
def test_bad_input_as_a_process(paths, tmp_path):
    argv, expected, _ = CASES["dest is a user folder"]
    proc = subprocess.run([sys.executable, "-m", "stylegan_jax.dataset_tool", *(a.format_map(paths) for a in argv)],
                          capture_output=True, text=True, timeout=300)
    assert_one_error_line("dataset_tool", proc.returncode, proc.stdout, proc.stderr, expected.format_map(paths))
    assert (paths["mine"] / "notes.txt").read_text() == "mine"
