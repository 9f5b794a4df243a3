"""gen_video (StyleGAN3's tool): NVIDIA's keyframe seeds and looping cubic paths, frames that show each grid
cell's keyframe images where its path passes them, and bad input as one line with nothing written."""

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import scipy.interpolate

from stylegan_jax import gen_video
from stylegan_jax.cli import UsageError
from stylegan_jax.network_snapshot import load_network
from stylegan_jax.sampling import keyframe_seeds, looping_path, seed_images
from tests.cli.usage import expect_usage_error

PICKLES = Path(__file__).parent / "fixtures" / "nvidia_pickles"


def test_keyframe_seeds_fill_the_cells_in_order_then_shuffle_as_nvidias():
    assert keyframe_seeds([5, 6, 7, 8, 9, 10], cells=3).tolist() == [5, 6, 7, 8, 9, 10]
    assert keyframe_seeds([5, 6, 7], cells=2, num_keyframes=4).tolist() == [5, 6, 7, 5, 6, 7, 5, 6]
    expected = np.array([5, 6, 7, 5, 6, 7, 5, 6], np.int64)
    np.random.RandomState(11).shuffle(expected)  # gen_video.py: RandomState(shuffle_seed).shuffle(all_seeds)
    assert keyframe_seeds([5, 6, 7], cells=2, num_keyframes=4, shuffle_seed=11).tolist() == expected.tolist()
    with pytest.raises(UsageError, match="5 seeds for a grid of 2 videos"):
        keyframe_seeds(range(5), cells=2)


def test_the_looping_path_is_a_not_a_knot_cubic_spline_through_the_repeated_keyframes():
    keyframes = np.random.default_rng(0).standard_normal((3, 2, 4))
    path = looping_path(keyframes)
    np.testing.assert_allclose(path(np.arange(4.0)), keyframes[[0, 1, 2, 0]], atol=1e-12)  # closes at t = K
    knots = np.arange(-6, 9)  # the keyframes five times over, t = -2K .. 3K - 1
    spline = scipy.interpolate.CubicSpline(knots, np.tile(keyframes, (5, 1, 1)), bc_type="not-a-knot")
    t = np.linspace(0, 3, 37)
    np.testing.assert_allclose(path(t), spline(t), atol=1e-10)
    np.testing.assert_allclose(path(t[:12] + 3), path(t[:12]), atol=1e-2)  # nearly periodic past the loop


def test_frames_show_each_cells_keyframe_images_where_its_path_passes_them(tmp_path, capsys):
    pkl = PICKLES / "ada_skip16.pkl"
    out = tmp_path / "v" / "lerp.mp4"
    assert gen_video.main(["--network", str(pkl), "--seeds", "0-3", "--grid", "2x1", "--w-frames", "3",
                           "--batch-size", "4", "--output", str(out)]) == 0
    frames_dir = tmp_path / "v" / "lerp_frames"  # no video encoder in the test environment
    assert "no video encoder installed" in capsys.readouterr().err
    frames = [np.asarray(PIL.Image.open(frames_dir / f"frame{i:05d}.png")) for i in range(6)]
    assert sorted(p.name for p in frames_dir.iterdir())[-1] == "frame00005.png"  # 2 keyframes x 3 frames
    network = load_network(pkl)
    G = network.sampler()
    _, images = next(seed_images(G, network.G_ema, [0, 1, 2, 3], np.zeros((1, 0), np.float32), 1.0))
    images = images.astype(int)
    for frame, (left, right) in ((0, (0, 2)), (3, (1, 3))):  # cell 0 through seeds 0, 1; cell 1 through 2, 3
        expected = np.concatenate([images[left], images[right]], axis=1)
        assert frames[frame].shape == (16, 32, 3)
        assert np.abs(frames[frame].astype(int) - expected).max() <= 1  # ws through float64 and back
    assert np.abs(frames[1].astype(int) - frames[0]).max() > 0  # between keyframes: moving
    out1 = tmp_path / "v1" / "lerp.mp4"  # more cells (2) than images per call (1): one frame over two calls
    assert gen_video.main(["--network", str(pkl), "--seeds", "0-3", "--grid", "2x1", "--w-frames", "3",
                           "--batch-size", "1", "--output", str(out1)]) == 0
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(np.asarray(PIL.Image.open(tmp_path / "v1" / "lerp_frames" / f"frame{i:05d}.png")),
                                      frame)
    out2 = tmp_path / "v2" / "lerp.mp4"  # a batch far above the frames' images: as many rows as they have
    assert gen_video.main(["--network", str(pkl), "--seeds", "0-3", "--grid", "2x1", "--w-frames", "3",
                           "--batch-size", "100000000", "--output", str(out2)]) == 0
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(np.asarray(PIL.Image.open(tmp_path / "v2" / "lerp_frames" / f"frame{i:05d}.png")),
                                      frame)
    capsys.readouterr()
    assert gen_video.main(["--network", str(pkl), "--seeds", "0-3", "--grid", "2x1", "--w-frames", "2",
                           "--batch-size", "4", "--output", str(out)]) == 0  # a shorter video, the same name
    assert sorted(p.name for p in frames_dir.iterdir()) == [f"frame{i:05d}.png" for i in range(4)]
    assert f"removed 2 frames of an earlier, longer sequence from {frames_dir}" in capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["--seeds", "0-4", "--grid", "2x1"], "5 seeds for a grid of 2 videos: give a multiple of 2 seeds"),
    (["--seeds", "0-3", "--grid", "2x0"], "not a grid: '2x0'"),
    (["--seeds", "0-3", "--output", "{root}/x.gif"], "expected a file name ending in .mp4"),
    (["--seeds", "0-3", "--class", "1"], "the network is unconditional"),
    (["--seeds", "0-3", "--network", "{root}/gone.pkl"], "gone.pkl: no such file"),
    (["--seeds", "0-4294967295"], "4294967296 keyframes would need"),
    (["--seeds", "0-3", "--trunc", "3e38"], "the network's images hold NaN or inf (a diverged network"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, expected):
    argv = ["--network", str(PICKLES / "ada_skip16.pkl"), "--output", "{root}/out/v.mp4", *argv]
    expect_usage_error("gen_video", gen_video.main, [a.format(root=tmp_path) for a in argv], expected, tmp_path,
                       capsys)


def test_without_an_encoder_a_folder_where_a_frame_goes_is_refused_before_any_frame(tmp_path, capsys):
    (tmp_path / "v_frames" / "frame00007.png").mkdir(parents=True)
    argv = ["--network", str(PICKLES / "ada_skip16.pkl"), "--seeds", "0-1", "--w-frames", "4", "--output",
            str(tmp_path / "v.mp4")]
    expect_usage_error("gen_video", gen_video.main, argv, f"{tmp_path / 'v_frames' / 'frame00007.png'}: Is a "
                       "directory", tmp_path, capsys)


def test_the_mp4_suffix_is_taken_in_any_case(tmp_path):
    args = gen_video.parse_args(["--network", str(PICKLES / "ada_skip16.pkl"), "--seeds", "0-1", "--output",
                                 str(tmp_path / "v.MP4")])
    assert args.output == str(tmp_path / "v.MP4")


class RecordingWriter:
    """A stand-in for imageio's ffmpeg writer: the path, options and frames each video was given."""

    videos: list = []

    def __init__(self, path, **options):
        self.path, self.options, self.frames = path, options, []
        RecordingWriter.videos.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def append_data(self, frame):
        self.frames.append(np.array(frame))


@pytest.mark.parametrize("tool", ["gen_video", "generate"])
def test_with_an_encoder_the_mp4_gets_the_frames_the_fallback_writes(tmp_path, monkeypatch, tool):
    """Users with the `video` extra: imageio's writer (stood in for: no ffmpeg here) gets NVIDIA's fps, codec and
    bitrate, and frame by frame the images the PNG fallback writes, grayscale as [H, W] as imageio takes it."""
    import imageio.v2 as imageio

    from stylegan_jax import generate, images

    pkl = str(PICKLES / ("tf_stylegan1_tuned_baseline.pkl" if tool == "generate" else "ada_skip16.pkl"))  # gray, RGB
    if tool == "gen_video":
        def run(output):
            return gen_video.main(["--network", pkl, "--seeds", "0-3", "--grid", "2x1", "--w-frames", "3",
                                   "--output", str(output / "lerp.mp4")])
        fallback, expected = "lerp_frames", dict(fps=60, codec="libx264", bitrate="12M")
    else:
        def run(output):
            return generate.main(["--network", pkl, "--seeds", "0,5", "--interpolate", "3", "--outdir", str(output)])
        fallback, expected = "", dict(fps=30)
    assert run(tmp_path / "png") == 0
    pngs = sorted((tmp_path / "png" / fallback).glob("frame*.png"))
    RecordingWriter.videos = []
    monkeypatch.setattr(images.importlib.util, "find_spec", lambda name: object())  # "installed"
    monkeypatch.setattr(imageio, "get_writer", RecordingWriter)
    assert run(tmp_path / "mp4") == 0
    (video,) = RecordingWriter.videos
    assert video.path.endswith(".mp4") and {k: video.options[k] for k in expected} == expected
    assert video.options["macro_block_size"] == 1  # frames keep their size
    assert len(video.frames) == len(pngs) > 1
    for frame, png in zip(video.frames, pngs, strict=True):
        np.testing.assert_array_equal(frame, np.asarray(PIL.Image.open(png)))


def test_a_file_where_the_frames_folder_goes_is_one_line(tmp_path, capsys):
    """Without a video encoder the frames go to <output>_frames: a file there is refused before any frame is
    rendered, the refusal the only line (no progress bar before it)."""
    (tmp_path / "v_frames").write_text("not a folder")
    argv = ["--network", str(PICKLES / "ada_skip16.pkl"), "--seeds", "0-1", "--output", str(tmp_path / "v.mp4")]
    expect_usage_error("gen_video", gen_video.main, argv, f"{tmp_path / 'v_frames'}: exists and is not a directory "
                       "(without a video encoder the frames are written there)", tmp_path, capsys)
