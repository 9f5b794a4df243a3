"""generate on bad input: one error line, exit status 1, nothing written (the corpus of careless command
lines), and seeds streamed batch by batch so a huge range neither materialises nor exhausts memory."""

import importlib.util
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import PIL.Image
import pytest

from stylegan_jax import generate, sampling
from stylegan_jax.cli import Seeds, parse_seeds
from stylegan_jax.images import image_grid
from stylegan_jax.network_snapshot import load_network
from tests.cli.usage import assert_one_error_line, expect_usage_error
from tests.test_generate import path_frames

NET = ["--network", "{uncond}", "--outdir", "{out}"]
SEED = ["--seeds", "0"]

# (argv with {placeholders} of the `paths` fixture, a substring of the error line)
CASES = {
    "batch-size zero": ([*NET, *SEED, "--batch-size", "0"], "argument --batch-size: 0 is not a positive integer"),
    "batch-size negative": ([*NET, *SEED, "--batch-size", "-3"], "argument --batch-size: -3 is not a positive"),
    "batch-size not a number": ([*NET, *SEED, "--batch-size", "many"], "'many' is not an integer"),
    "reversed seed range": ([*NET, "--seeds", "5-1"], "argument --seeds: reversed range '5-1': write 1-5"),
    "reversed range in a list": ([*NET, "--seeds", "0,9-3"], "reversed range '9-3' in '0,9-3'"),
    "empty seeds": ([*NET, "--seeds", ""], "not a seed list: ''"),
    "seed list with a hole": ([*NET, "--seeds", "1,,2"], "not a seed list"),
    "negative seed": ([*NET, "--seeds", "-1"], "not a seed list"),
    "seed above 2**32-1": ([*NET, "--seeds", "4294967296"], "seed 4294967296 is above 4294967295"),
    "range ending above 2**32-1": ([*NET, "--seeds", "0-4294967296"], "seed 4294967296 is above"),
    "seed of 5000 digits": ([*NET, "--seeds", "9" * 5000], "is above 4294967295"),
    "reversed range from 5000 digits": ([*NET, "--seeds", "9" * 5000 + "-1"], "reversed range"),
    "outdir is a file": (["--network", "{uncond}", *SEED, "--outdir", "{file}"], "--outdir: {file} exists and "
                         "is not a directory"),
    "outdir under a file": (["--network", "{uncond}", *SEED, "--outdir", "{file}/sub"], "which is a file"),
    "outdir empty": (["--network", "{uncond}", *SEED, "--outdir", ""], "argument --outdir: empty path"),
    "trunc nan": ([*NET, *SEED, "--trunc", "nan"], "argument --trunc: 'nan' is not a finite number"),
    "trunc inf": ([*NET, *SEED, "--trunc", "inf"], "'inf' is not a finite number"),
    "trunc beyond float32": ([*NET, *SEED, "--trunc", "1e308"], "argument --trunc: '1e308' is beyond float32's "
                             "range (+-3.403e+38)"),
    "trunc -inf": ([*NET, *SEED, "--trunc=-inf"], "'-inf' is not a finite number"),
    "trunc not a number": ([*NET, *SEED, "--trunc", "high"], "'high' is not a number"),
    "negative trunc-cutoff": ([*NET, *SEED, "--trunc-cutoff", "-2"], "--trunc-cutoff: -2 is negative"),
    "class on an unconditional network": ([*NET, *SEED, "--class", "3"], "--class 3: the network is "
                                          "unconditional"),
    "class out of range": (["--network", "{cond}", "--outdir", "{out}", *SEED, "--class", "10"],
                           "conditional with 10 classes: pass --class 0..9 (--class 10)"),
    "negative class": (["--network", "{cond}", "--outdir", "{out}", *SEED, "--class", "-1"], "(--class -1)"),
    "missing class on a conditional network": (["--network", "{cond}", "--outdir", "{out}", *SEED],
                                               "pass --class 0..9 (no --class)"),
    "network does not exist": (["--network", "{missing}", "--outdir", "{out}", *SEED],
                               "{missing}: no such file or directory"),
    "network is not a pickle": (["--network", "{file}", "--outdir", "{out}", *SEED], "{file}: not a readable "
                                "pickle"),
    "network pickle holds no network": (["--network", "{dictpkl}", "--outdir", "{out}", *SEED],
                                        "{dictpkl}: found a dict with keys ['a']"),
    "network directory without a snapshot": (["--network", "{emptydir}", "--outdir", "{out}", *SEED],
                                             "{emptydir}: no readable network.json"),
    "network empty": (["--network", "", "--outdir", "{out}", *SEED], "argument --network: empty path"),
    "no seeds": ([*NET], "give either --seeds or --projected-w"),
    "seeds and projected-w": ([*NET, *SEED, "--projected-w", "{ws}"], "give either --seeds or --projected-w "
                              "(not both)"),
    "projected-w with grid": ([*NET, "--projected-w", "{ws}", "--grid"], "--grid does not apply with --projected-w"),
    "projected-w with trunc": ([*NET, "--projected-w", "{ws}", "--trunc", "0.5"], "--trunc does not apply"),
    "trunc overflowing float32": ([*NET, *SEED, "--trunc", "3e38"], "the network's images hold NaN or inf (a "
                                  "diverged network, a --trunc far from 1, or projected ws far from the network's"),
    "several seeds overflowing float32": ([*NET, "--seeds", "0-2", "--trunc", "3e38"], "the network's images hold "
                                          "NaN or inf"),  # the first batch before the progress bar
    "interpolation overflowing float32": ([*NET, "--seeds", "0,1", "--interpolate", "4", "--trunc", "3e38"],
                                          "the network's images hold NaN or inf"),
    "projected-w overflowing float32": ([*NET, "--projected-w", "{hugews}"], "the network's images hold NaN or inf"),
    "projected-w missing": ([*NET, "--projected-w", "{missing}"], "{missing}: not a readable .npz file"),
    "projected-w not npz": ([*NET, "--projected-w", "{file}"], "{file}: not a readable .npz file (neither a .npz "
                            "archive nor a .npy array of numbers; pickled data is never loaded)"),
    "projected-w a .npy array": ([*NET, "--projected-w", "{npy}"], "{npy}: not a readable .npz file (a .npy array)"),
    "projected-w truncated": ([*NET, "--projected-w", "{cutws}"], "{cutws}: not a readable .npz file"),
    "projected-w without w": ([*NET, "--projected-w", "{nows}"], "{nows}: no array 'w' (it holds ['x'])"),
    "projected-w of strings": ([*NET, "--projected-w", "{textws}"], "{textws}: its array 'w' holds <U1 values, not "
                               "numbers; expected a projector's projected_w.npz"),
    "projected-w of another network": ([*NET, "--projected-w", "{wrongws}"], "{wrongws}: w has shape [1, 4, 8]; "
                                       "this network takes [N, 6, 12]"),
    "unknown flag": ([*NET, *SEED, "--sedes", "1"], "unrecognized arguments: --sedes 1"),
    "unknown noise mode": ([*NET, *SEED, "--noise-mode", "off"], "argument --noise-mode: invalid choice: 'off'"),
    "interpolate zero": ([*NET, "--seeds", "0,1", "--interpolate", "0"], "--interpolate: 0 is not a positive"),
    "interpolate one seed": ([*NET, *SEED, "--interpolate", "4"], "--interpolate needs at least two --seeds"),
    "grid with interpolate": ([*NET, "--seeds", "0,1", "--interpolate", "2", "--grid"], "--grid does not apply "
                              "with --interpolate"),
    "slerp without interpolate": ([*NET, *SEED, "--slerp"], "--slerp applies only with --interpolate"),
    "fps without interpolate": ([*NET, *SEED, "--fps", "24"], "--fps applies only with --interpolate"),
    "fps zero": ([*NET, "--seeds", "0,1", "--interpolate", "2", "--fps", "0"], "--fps: 0 is not a positive"),
    "grid of a huge range": ([*NET, "--seeds", "0-99999999", "--grid"], "--grid with --seeds: a grid of "
                             "100000000 images would need"),
}


@pytest.fixture
def paths(tmp_path, uncond_pkl, cond_pkl):
    """The placeholders of `CASES`: networks, a plain file, a pickle of a dict, an empty directory."""
    (tmp_path / "afile").write_text("not a network")
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"a": 1}))
    (tmp_path / "emptydir").mkdir()
    np.savez(tmp_path / "ws.npz", w=np.zeros((1, 6, 12), np.float32))
    np.savez(tmp_path / "huge.npz", w=np.full((1, 6, 12), 1e38, np.float32))
    np.savez(tmp_path / "nows.npz", x=np.zeros(3))
    np.savez(tmp_path / "wrongws.npz", w=np.zeros((1, 4, 8), np.float32))
    np.savez(tmp_path / "textws.npz", w=np.array(["a", "b"]))
    np.save(tmp_path / "w.npy", np.zeros((1, 6, 12), np.float32))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "ws.npz").read_bytes()[:100])
    return dict(npy=tmp_path / "w.npy", cutws=tmp_path / "cut.npz",
                uncond=uncond_pkl, cond=cond_pkl, out=tmp_path / "out", file=tmp_path / "afile",
                dictpkl=tmp_path / "dict.pkl", emptydir=tmp_path / "emptydir", missing=tmp_path / "nothere.pkl",
                ws=tmp_path / "ws.npz", nows=tmp_path / "nows.npz", wrongws=tmp_path / "wrongws.npz",
                textws=tmp_path / "textws.npz", hugews=tmp_path / "huge.npz")


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_error_line_and_writes_nothing(case, paths, tmp_path, capsys):
    argv, expected = CASES[case]
    with warnings.catch_warnings(record=True) as caught:  # a warning would be lines on stderr beside the error's
        warnings.simplefilter("always")
        expect_usage_error("generate", generate.main, [a.format_map(paths) for a in argv],
                           expected.format_map(paths), tmp_path, capsys)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]


def test_seed_ranges_stay_lazy():
    seeds = parse_seeds("0-99999999,5")
    assert isinstance(seeds, Seeds) and not isinstance(seeds, list)
    assert len(seeds) == 10**8 + 1 and seeds[0] == 0 and seeds[10**8 - 1] == 99999999 and seeds[-1] == 5
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7] and str(parse_seeds("0-3,7")) == "0-3,7"
    for text in ("0-99999999,5", "1,1", "5-9,0-2,8-12,4", "3", "7-7,7"):  # the union of the ranges, lazily
        seeds = parse_seeds(text)
        assert seeds.distinct() == (10**8 if len(seeds) > 1000 else len(set(seeds))), text


def test_a_seed_given_twice_is_one_file(uncond_pkl, tmp_path, capsys):
    assert generate.main(["--network", str(uncond_pkl), "--seeds", "1,1", "--outdir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generate.json", "seed0001.png"]
    assert capsys.readouterr().out.strip() == f"wrote 1 file to {tmp_path}"


def test_huge_seed_range_is_generated_batch_by_batch(uncond_pkl, tmp_path, monkeypatch, capsys):
    """--seeds 0-99999999 starts writing at once and draws latents one batch at a time: interrupted (Ctrl-C)
    after the 5th PNG, only three batches of two latents were ever drawn, and the interrupt is one line."""
    drawn, written = [], []
    draw = sampling.seed_latents
    monkeypatch.setattr(sampling, "seed_latents", lambda seeds, z_dim: drawn.append(len(seeds)) or draw(seeds, z_dim))

    def save(image, path):
        written.append(os.path.basename(path))
        if len(written) == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(generate, "save_png", save)
    out = tmp_path / "out"
    assert generate.main(["--network", str(uncond_pkl), "--seeds", "0-99999999", "--batch-size", "2",
                          "--outdir", str(out)]) == 130
    assert written == [f"seed{s:04d}.png" for s in range(5)]
    assert drawn == [2, 2, 2]
    err = capsys.readouterr().err
    assert "Traceback" not in err  # the progress bar may precede the last line
    assert err.strip().splitlines()[-1] == f"generate: interrupted; what was written so far is in {out}"


def _pngs(directory):
    return {p.name: np.asarray(PIL.Image.open(p)) for p in sorted(directory.glob("*.png"))}


def test_streamed_grid_and_batches_give_the_same_images(uncond_pkl, tmp_path):
    """Batching is invisible: the PNGs of batch size 2 (last batch padded) equal those of one batch, and the
    grid filled batch by batch is `image_grid` of the seeds' images."""
    for batch in ("2", "16"):
        assert generate.main(["--network", str(uncond_pkl), "--seeds", "3-7", "--grid", "--batch-size", batch,
                              "--outdir", str(tmp_path / batch)]) == 0
    small, one = _pngs(tmp_path / "2"), _pngs(tmp_path / "16")
    assert small.keys() == one.keys() and all(np.array_equal(small[k], one[k]) for k in small)
    seeds = np.stack([small[f"seed{s:04d}.png"] for s in range(3, 8)])
    np.testing.assert_array_equal(small["grid.png"], image_grid(seeds, 3))


def test_streamed_slerp_interpolation_ends_at_the_keyframes(uncond_pkl, tmp_path):
    """A Z-space path over three seeds in batches of 2: 2 * 3 + 1 frames, independent of the batch size, from
    the first seed's image through the second's to the last's."""
    for batch in ("2", "16"):
        assert generate.main(["--network", str(uncond_pkl), "--seeds", "0,1,2", "--interpolate", "3", "--slerp",
                              "--batch-size", batch, "--outdir", str(tmp_path / batch)]) == 0
    small, one = _pngs(tmp_path / "2"), _pngs(tmp_path / "16")
    assert sorted(small) == [f"frame{i:05d}.png" for i in range(7)]
    assert all(np.array_equal(small[k], one[k]) for k in small)
    assert generate.main(["--network", str(uncond_pkl), "--seeds", "0-2", "--outdir", str(tmp_path / "s")]) == 0
    seeds = _pngs(tmp_path / "s")
    for frame, seed in ((0, 0), (3, 1), (6, 2)):
        diff = small[f"frame{frame:05d}.png"].astype(int) - seeds[f"seed{seed:04d}.png"]
        assert np.abs(diff).max() <= 1
    network = load_network(uncond_pkl)
    z = sampling.seed_latents([0, 1, 2], network.generator.z_dim)  # between the keyframes: the slerped zs' images
    between = np.concatenate([sampling.slerp(z[k], z[k + 1], np.array([1 / 3, 2 / 3])) for k in (0, 1)])
    for frame, image in zip((1, 2, 4, 5), path_frames(network, between), strict=True):
        assert np.abs(small[f"frame{frame:05d}.png"].astype(int) - image).max() <= 1, frame


@pytest.mark.slow
@pytest.mark.parametrize("case", ["reversed seed range", "class on an unconditional network"])
def test_bad_input_as_a_process(case, paths):
    """The real process: exit status 1 and one stderr line, with whatever JAX and friends print on import."""
    argv, expected = CASES[case]
    proc = subprocess.run([sys.executable, "-m", "stylegan_jax.generate", *(a.format_map(paths) for a in argv)],
                          capture_output=True, text=True, timeout=300)
    assert_one_error_line("generate", proc.returncode, proc.stdout, proc.stderr, expected.format_map(paths))
    assert not paths["out"].exists()


@pytest.mark.parametrize("name, flags", [
    ("grid.png", ["--seeds", "0-2", "--grid"]), ("generate.json", ["--seeds", "0-2"]),
    ("seed0002.png", ["--seeds", "0-2"]),  # the last image: the first two would have been written before it
    ("seed0099.png", ["--seeds", "0-99999999"]),  # a lazy list: the folder's entries are looked at, not the seeds
    ("frame00004.png", ["--seeds", "0,1", "--interpolate", "4"]),
    ("proj01.png", ["--projected-w", "{ws}"])])
def test_a_folder_where_a_file_goes_is_refused_before_any_image(uncond_pkl, tmp_path, capsys, name, flags):
    """Every file the tool writes is checked before the first: the images, the grid, the record of the flags."""
    np.savez(tmp_path / "ws.npz", w=np.zeros((2, 6, 12), np.float32))
    (tmp_path / "out" / name).mkdir(parents=True)
    flags = [f.format(ws=tmp_path / "ws.npz") for f in flags]
    expect_usage_error("generate", generate.main, ["--network", str(uncond_pkl), *flags, "--outdir",
                                                   str(tmp_path / "out")],
                       f"{tmp_path / 'out' / name}: Is a directory", tmp_path, capsys)


def test_a_folder_where_the_video_goes_is_refused_where_there_is_an_encoder(uncond_pkl, tmp_path, capsys,
                                                                          monkeypatch):
    """With the video extra (stood in for), interpolation.mp4 is written: a folder of its name is in the way;
    without it, the frames alone are (`test_folders_named_as_files_the_tool_does_not_write_stay`)."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name == "imageio_ffmpeg" else
                        find_spec(name))
    (tmp_path / "out" / "interpolation.mp4").mkdir(parents=True)
    expect_usage_error("generate", generate.main, ["--network", str(uncond_pkl), "--seeds", "0,1", "--interpolate",
                                                   "4", "--outdir", str(tmp_path / "out")],
                       f"{tmp_path / 'out' / 'interpolation.mp4'}: Is a directory", tmp_path, capsys)


def test_folders_named_as_files_the_tool_does_not_write_stay(uncond_pkl, tmp_path):
    others = ["seed0003.png", "seed2.png", "seed00002.png", "frame00000.png", "proj00.png", "grid.png",
              "interpolation.mp4"]
    for name in others:
        (tmp_path / name).mkdir()
    assert generate.main(["--network", str(uncond_pkl), "--seeds", "0-2", "--outdir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, "generate.json", "seed0000.png",
                                                                 "seed0001.png", "seed0002.png"])


def test_a_file_the_system_refuses_is_one_line(uncond_pkl, tmp_path, capsys):
    (tmp_path / "out" / "seed0000.png").mkdir(parents=True)  # a directory where the image goes
    expect_usage_error("generate", generate.main, ["--network", str(uncond_pkl), "--seeds", "0", "--outdir",
                                                   str(tmp_path / "out")],
                       f"{tmp_path / 'out' / 'seed0000.png'}: Is a directory", tmp_path, capsys)
