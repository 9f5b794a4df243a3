"""style_mixing on bad input: one error line, exit status 1, nothing written."""

import subprocess
import sys

import numpy as np
import pytest

from stylegan_jax import style_mixing
from tests.cli.usage import assert_one_error_line, expect_usage_error

NET = ["--network", "{uncond}", "--outdir", "{out}"]
MIX = ["--rows", "1,2", "--cols", "3", "--styles", "0-3"]
COND = ["--network", "{cond}", "--outdir", "{out}", *MIX]

# (argv with {placeholders} of the `paths` fixture, a substring of the error line)
CASES = {
    "reversed rows": ([*NET, "--rows", "5-1", "--cols", "3"], "argument --rows: reversed range '5-1': write 1-5"),
    "reversed cols": ([*NET, "--rows", "1", "--cols", "2,8-4"], "argument --cols: reversed range '8-4' in"),
    "reversed styles": ([*NET, "--rows", "1", "--cols", "2", "--styles", "3-1"], "argument --styles: reversed"),
    "styles outside the network": ([*NET, "--rows", "1", "--cols", "2", "--styles", "0-40"],
                                   "--styles must lie in 0..5 (the network has 6 ws)"),
    "styles by default outside the network": ([*NET, "--rows", "1", "--cols", "2"], "--styles defaults to 0-6 "
                                              "(NVIDIA's), beyond this network's 6 ws (0..5): pass --styles"),
    "empty styles": ([*NET, "--rows", "1", "--cols", "2", "--styles", ""], "argument --styles: not a list of "
                     "layers: '' (use e.g. 0-6 or 0,2,4)"),
    "empty rows": ([*NET, "--rows", "", "--cols", "2"], "argument --rows: not a seed list: ''"),
    "seed above 2**32-1": ([*NET, "--rows", "4294967296", "--cols", "2"], "seed 4294967296 is above"),
    "outdir is a file": (["--network", "{uncond}", *MIX, "--outdir", "{file}"], "--outdir: {file} exists and is "
                         "not a directory"),
    "outdir under a file": (["--network", "{uncond}", *MIX, "--outdir", "{file}/x"], "which is a file"),
    "trunc nan": ([*NET, *MIX, "--trunc", "nan"], "argument --trunc: 'nan' is not a finite number"),
    "trunc inf": ([*NET, *MIX, "--trunc", "inf"], "'inf' is not a finite number"),
    "negative trunc-cutoff": ([*NET, *MIX, "--trunc-cutoff", "-1"], "--trunc-cutoff: -1 is negative"),
    "batch-size zero": ([*NET, *MIX, "--batch-size", "0"], "argument --batch-size: 0 is not a positive integer"),
    "class on an unconditional network": ([*NET, *MIX, "--class", "2"], "--class 2: the network is unconditional"),
    "missing class on a conditional network": (COND, "conditional with 10 classes: pass --class 0..9 (no --class)"),
    "class out of range": ([*COND, "--class", "12"], "pass --class 0..9 (--class 12)"),
    "network does not exist": (["--network", "{missing}", "--outdir", "{out}", *MIX], "{missing}: no such file"),
    "network is not a pickle": (["--network", "{file}", "--outdir", "{out}", *MIX], "{file}: not a readable pickle"),
    "network directory without a snapshot": (["--network", "{emptydir}", "--outdir", "{out}", *MIX],
                                             "{emptydir}: no readable network.json"),
    "grid too large": ([*NET, "--rows", "0-99999", "--cols", "0-99999", "--styles", "0-3"],
                       "--rows x --cols: a grid of 10000200001 images would need"),
    "no cols": ([*NET, "--rows", "1"], "no cols: give --cols seeds or --col-ws files"),
    "no rows": ([*NET, "--col-ws", "{ws}"], "no rows: give --rows seeds or --row-ws files"),
    "class with projected ws only": ([*NET, "--row-ws", "{ws}", "--col-ws", "{ws}", "--class", "5"],
                                     "--class applies to seeds (--rows, --cols), not to --row-ws/--col-ws, whose ws "
                                     "are used as they are"),
    "trunc with projected ws only": ([*NET, "--row-ws", "{ws}", "--col-ws", "{ws}", "--trunc", "0.5"],
                                     "--trunc applies to seeds"),
    "trunc-cutoff with projected ws only": ([*NET, "--row-ws", "{ws}", "--col-ws", "{ws}", "--trunc-cutoff", "2"],
                                            "--trunc-cutoff applies to seeds"),
    "row-ws missing": ([*NET, "--row-ws", "{missing}", "--cols", "3"], "{missing}: not a readable .npz file"),
    "col-ws of another network": ([*NET, "--rows", "1", "--col-ws", "{wrongws}"], "{wrongws}: w has shape "
                                  "[1, 4, 8]; this network takes [N, 6, 12]"),
    "row-ws with nan": ([*NET, "--row-ws", "{nanws}", "--cols", "3"], "{nanws}: w holds non-finite values"),
}


@pytest.fixture
def paths(tmp_path, uncond_pkl, cond_pkl):
    """The placeholders of `CASES`."""
    (tmp_path / "afile").write_text("not a network")
    (tmp_path / "emptydir").mkdir()
    np.savez(tmp_path / "ws.npz", w=np.zeros((1, 6, 12), np.float32))
    np.savez(tmp_path / "wrongws.npz", w=np.zeros((1, 4, 8), np.float32))
    np.savez(tmp_path / "nanws.npz", w=np.full((1, 6, 12), np.nan, np.float32))
    return dict(uncond=uncond_pkl, cond=cond_pkl, out=tmp_path / "out", file=tmp_path / "afile",
                emptydir=tmp_path / "emptydir", missing=tmp_path / "nothere.pkl", ws=tmp_path / "ws.npz",
                wrongws=tmp_path / "wrongws.npz", nanws=tmp_path / "nanws.npz")


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_error_line_and_writes_nothing(case, paths, tmp_path, capsys):
    argv, expected = CASES[case]
    expect_usage_error("style_mixing", style_mixing.main, [a.format_map(paths) for a in argv],
                       expected.format_map(paths), tmp_path, capsys)


@pytest.mark.slow
def test_bad_input_as_a_process(paths):
    argv, expected = CASES["class on an unconditional network"]
    proc = subprocess.run([sys.executable, "-m", "stylegan_jax.style_mixing", *(a.format_map(paths) for a in argv)],
                          capture_output=True, text=True, timeout=300)
    assert_one_error_line("style_mixing", proc.returncode, proc.stdout, proc.stderr, expected)
    assert not paths["out"].exists()


def test_a_folder_where_the_grid_goes_is_refused_before_any_image(uncond_pkl, tmp_path, capsys):
    (tmp_path / "out" / "grid.png").mkdir(parents=True)
    expect_usage_error("style_mixing", style_mixing.main, ["--network", str(uncond_pkl), "--rows", "1,2", "--cols",
                                                           "3", "--styles", "0-2", "--outdir", str(tmp_path / "out")],
                       f"{tmp_path / 'out' / 'grid.png'}: Is a directory", tmp_path, capsys)
