"""projector on bad input: one error line, exit status 1, nothing written (missing detector file, targets that
are not images, flags out of range, networks it cannot project into)."""

import PIL.Image
import pytest

from stylegan_jax import projector
from tests.cli.usage import expect_usage_error

NET = ["--network", "{uncond}", "--outdir", "{out}"]
TARGET = ["--target", "{png}"]
L2 = ["--loss", "l2"]

# (argv with {placeholders} of the `paths` fixture, a substring of the error line)
CASES = {
    "lpips without vgg16.pt": ([*NET, *TARGET, "--detector-dir", "{emptydir}"], "detector vgg16.pt not found in "
                               "{emptydir} (--detector-dir)"),
    "target missing": ([*NET, *L2, "--target", "{missing}"], "--target {missing}: no such file or directory"),
    "target not an image": ([*NET, *L2, "--target", "{file}"], "--target {file}: not a readable image (no format "
                            "Pillow reads)"),
    "target folder without images": ([*NET, *L2, "--target", "{emptydir}"], "--target {emptydir}: the folder "
                                     "holds no"),
    "two targets with one stem": ([*NET, *L2, "--target", "{png}", "{png2}"], "would both write to --outdir/face"),
    "a target given twice": ([*NET, *L2, "--target", "{png}", "{png}"], "--target: {png} is given twice"),
    "a target given twice by a link": ([*NET, *L2, "--target", "{png}", "{link}"], "--target: {link} is given "
                                       "twice (as {png})"),
    "a folder where an output goes": (["--network", "{uncond}", "--outdir", "{busy}", *L2, *TARGET],
                                      "{busy}/projected_w.npz: Is a directory"),
    "a file where a target's folder goes": (["--network", "{uncond}", "--outdir", "{busy}", *L2, "--target", "{png}",
                                             "{png3}"], "{busy}/face: exists and is not a directory (--outdir's "
                                                        "folder for {png})"),
    "a folder where a video frame goes": (["--network", "{uncond}", "--outdir", "{framebusy}", *L2, *TARGET,
                                           "--num-steps", "3"], "{framebusy}/proj_frames/frame0002.png: Is a "
                                                                "directory"),
    "no target": ([*NET, *L2], "the following arguments are required: --target"),
    "num-steps zero": ([*NET, *L2, *TARGET, "--num-steps", "0"], "argument --num-steps: 0 is not a positive"),
    "num-steps beyond the video's memory": ([*NET, *L2, *TARGET, "--num-steps", "10000000000"], "--num-steps "
                                            "10000000000: the video's ws of every step would need 2.68e+03 GiB"),
    "seed negative": ([*NET, *L2, *TARGET, "--seed", "-1"], "seed -1 is outside 0..4294967295"),
    "save-video not a boolean": ([*NET, *L2, *TARGET, "--save-video", "maybe"], "'maybe' is not a boolean"),
    "unknown loss": ([*NET, *TARGET, "--loss", "l1"], "argument --loss: invalid choice: 'l1'"),
    "unknown space": ([*NET, *L2, *TARGET, "--space", "z"], "argument --space: invalid choice: 'z'"),
    "class on an unconditional network": ([*NET, *L2, *TARGET, "--class", "1"], "--class 1: the network is "
                                          "unconditional"),
    "missing class on a conditional network": (["--network", "{cond}", "--outdir", "{out}", *L2, *TARGET],
                                               "pass --class 0..9 (no --class)"),
    "network does not exist": (["--network", "{missing}", "--outdir", "{out}", *L2, *TARGET], "{missing}: no such"),
    "outdir is a file": (["--network", "{uncond}", "--outdir", "{file}", *L2, *TARGET], "exists and is not a "
                         "directory"),
}


@pytest.fixture
def paths(tmp_path, uncond_pkl, cond_pkl):
    """The placeholders of `CASES`."""
    (tmp_path / "afile").write_text("not an image")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "other").mkdir()
    PIL.Image.new("RGB", (20, 16), (10, 200, 30)).save(tmp_path / "face.png")
    PIL.Image.new("RGB", (20, 16), (10, 200, 30)).save(tmp_path / "other" / "face.png")
    PIL.Image.new("RGB", (20, 16), (10, 200, 30)).save(tmp_path / "b.png")
    (tmp_path / "link.png").symlink_to(tmp_path / "face.png")
    (tmp_path / "busy" / "projected_w.npz").mkdir(parents=True)  # in the way of a single target's output
    (tmp_path / "busy" / "face").write_text("")  # in the way of target face.png's folder beside b.png
    (tmp_path / "framebusy" / "proj_frames" / "frame0002.png").mkdir(parents=True)  # the video's last frame
    (tmp_path / "framebusy" / "proj_frames" / "frame0003.png").mkdir()  # past it: not in the way
    return dict(uncond=uncond_pkl, cond=cond_pkl, out=tmp_path / "out", file=tmp_path / "afile",
                link=tmp_path / "link.png", framebusy=tmp_path / "framebusy", png3=tmp_path / "b.png",
                busy=tmp_path / "busy",
                emptydir=tmp_path / "emptydir", missing=tmp_path / "nothere.png", png=tmp_path / "face.png",
                png2=tmp_path / "other" / "face.png")


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_error_line_and_writes_nothing(case, paths, tmp_path, capsys):
    argv, expected = CASES[case]
    expect_usage_error("projector", projector.main, [str(a).format_map(paths) for a in argv],
                       expected.format_map(paths), tmp_path, capsys)
