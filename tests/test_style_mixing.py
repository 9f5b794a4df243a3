"""Style mixing: the ws handed to synthesis take the --styles layers from the column seed, the rest from
the row seed; files and grid laid out as NVIDIA's style_mixing.py."""

from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from stylegan_jax import sampling, style_mixing
from stylegan_jax.network_snapshot import load_network

PICKLE = Path(__file__).parent / "fixtures" / "nvidia_pickles" / "ada_skip16.pkl"


@pytest.mark.parametrize("psi", [0.7, 1.0])
def test_mixed_ws_take_styles_from_column_and_rest_from_row(monkeypatch, psi):
    """The seeds' ws are NVIDIA's style_mixing.py's: mapped, then w_avg + (w - w_avg) * psi, psi 1 included."""
    network = load_network(PICKLE)
    G = network.generator
    rows, cols, styles = [3, 8], [5], [0, 1, 2]
    captured = {}

    def fake_synthesize(G, variables, ws, noise_mode, noise_seeds, batch_size):
        captured["ws"] = ws
        return np.zeros((len(ws), 2, 2, 3), np.uint8)

    monkeypatch.setattr(style_mixing, "synthesize_images", fake_synthesize)
    images = style_mixing.style_mix(network, rows, cols, styles, truncation_psi=psi)
    seeds = [3, 5, 8]
    ws = np.asarray(sampling.map_latents(G, network.G_ema, sampling.seed_latents(seeds, G.z_dim),
                                         np.zeros((3, 0), np.float32), 1.0))
    w_avg = np.asarray(network.G_ema["buffers"]["mapping"]["w_avg"])
    by_seed = dict(zip(seeds, w_avg + (ws - w_avg) * np.float32(psi), strict=True))
    keys = list(images)
    assert keys == [(3, 3), (5, 5), (8, 8), (3, 5), (8, 5)]
    rest = [i for i in range(G.num_ws) if i not in styles]
    for (r, c), w in zip(keys, captured["ws"], strict=True):
        np.testing.assert_array_equal(w[styles], by_seed[c][styles])
        np.testing.assert_array_equal(w[rest], by_seed[r][rest])
    assert not np.allclose(by_seed[3], by_seed[5])  # the check above could fail


def test_cli_writes_pairs_and_grid(tmp_path):
    assert style_mixing.main(["--network", str(PICKLE), "--rows", "1,2", "--cols", "3", "--styles", "0-3",
                              "--outdir", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["1-1.png", "1-3.png", "2-2.png", "2-3.png", "3-3.png", "grid.png"]
    grid = np.asarray(PIL.Image.open(tmp_path / "grid.png"))
    assert grid.shape == (3 * 16, 2 * 16, 3)
    assert grid[:16, :16].max() == 0  # the empty corner
    np.testing.assert_array_equal(grid[32:, 16:], np.asarray(PIL.Image.open(tmp_path / "2-3.png")))
    np.testing.assert_array_equal(grid[:16, 16:], np.asarray(PIL.Image.open(tmp_path / "3-3.png")))


def test_styles_outside_the_network_are_one_line(tmp_path, capsys):
    assert style_mixing.main(["--network", str(PICKLE), "--rows", "1", "--cols", "2", "--styles", "0-40",
                              "--outdir", str(tmp_path)]) == 1
    assert "--styles must lie in 0..5" in capsys.readouterr().err


def test_row_and_column_ws_given_flag_by_flag_are_all_kept():
    args = style_mixing.parse_args(["--network", "n.pkl", "--row-ws", "a.npz", "--row-ws", "b.npz", "--col-ws",
                                    "c.npz", "--col-ws", "d.npz", "e.npz", "--outdir", "o"])
    assert (args.row_ws, args.col_ws) == (["a.npz", "b.npz"], ["c.npz", "d.npz", "e.npz"])


def test_a_stylegan1_network_mixes_untruncated_ws_unless_told(tmp_path):
    """NVIDIA's StyleGAN1 style-mixing figure maps its seeds without truncation (and stylegan2-ada's script's
    --trunc defaults to 1); generate's StyleGAN1 default (0.7 on the first 8 ws) is not taken here."""
    network = PICKLE.parent / "tf_stylegan1.pkl"
    common = ["--network", str(network), "--rows", "1", "--cols", "2", "--styles", "0-1", "--class", "0"]
    for name, extra in (("default", []), ("psi1", ["--trunc", "1"]), ("psi07", ["--trunc", "0.7"])):
        assert style_mixing.main([*common, *extra, "--outdir", str(tmp_path / name)]) == 0
    read = {name: (tmp_path / name / "1-2.png").read_bytes() for name in ("default", "psi1", "psi07")}
    assert read["default"] == read["psi1"] != read["psi07"]


def test_cli_images_of_single_seeds_are_nvidias(tmp_path):
    """A seed mixed with itself is its plain image: NVIDIA's generate.py pixels at psi 1, const noise (the
    fixture ada_skip16.npz, made with NVIDIA's code), through the CLI's mapping, truncation and synthesis; a
    mixed pair differs from both of its seeds' images."""
    golden = np.load(PICKLE.with_suffix(".npz"))
    assert style_mixing.main(["--network", str(PICKLE), "--rows", "0,1", "--cols", "7", "--styles", "0-1",
                              "--outdir", str(tmp_path)]) == 0
    for seed in (0, 1, 7):
        image = np.asarray(PIL.Image.open(tmp_path / f"{seed}-{seed}.png")).astype(int)
        assert np.abs(image - golden[f"psi1.0/classNone/const/seed{seed:04d}"].astype(int)).max() <= 1
    mixed = np.asarray(PIL.Image.open(tmp_path / "1-7.png")).astype(int)
    for seed in (1, 7):
        assert np.abs(mixed - np.asarray(PIL.Image.open(tmp_path / f"{seed}-{seed}.png")).astype(int)).mean() > 1


def test_random_noise_is_keyed_by_the_row_seed_as_generate_keys_it(tmp_path):
    """--noise-mode random: each image's noise comes from its row's seed (NVIDIA's draws anew each call), so a
    seed mixed with itself is generate's image of that seed with random noise, run after run."""
    from stylegan_jax import generate

    assert generate.main(["--network", str(PICKLE), "--seeds", "3,5", "--noise-mode", "random",
                          "--outdir", str(tmp_path / "gen")]) == 0
    for run, mode in (("a", "random"), ("b", "random"), ("const", "const")):
        assert style_mixing.main(["--network", str(PICKLE), "--rows", "3", "--cols", "5", "--styles", "0-2",
                                  "--noise-mode", mode, "--outdir", str(tmp_path / run)]) == 0

    def read(*parts):
        return np.asarray(PIL.Image.open(tmp_path.joinpath(*parts))).astype(int)

    for seed in (3, 5):
        assert np.abs(read("a", f"{seed}-{seed}.png") - read("gen", f"seed{seed:04d}.png")).max() <= 1
        assert np.abs(read("a", f"{seed}-{seed}.png") - read("const", f"{seed}-{seed}.png")).mean() > 0.5
    assert (tmp_path / "a" / "3-5.png").read_bytes() == (tmp_path / "b" / "3-5.png").read_bytes()
