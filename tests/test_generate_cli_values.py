"""The values of ``python -m stylegan_jax.generate`` and ``gen_video`` as users run them (``main(argv)``):
``--noise-mode`` gives NVIDIA's golden PNGs (``tests/fixtures/nvidia_pickles/<name>.npz``, const and none),
``--trunc``/``--trunc-cutoff`` truncate only the first N ws towards w_avg (NumPy closed form, then the
model's synthesis), and gen_video's keyframes honour ``--trunc`` and ``--class``."""

from pathlib import Path

import jax
import numpy as np
import PIL.Image
import pytest

from stylegan_jax import gen_video, generate, sampling
from stylegan_jax.images import to_uint8
from stylegan_jax.network_snapshot import load_network
from tests.cli.usage import run_tool
from tests.test_generate import cases

PICKLES = Path(__file__).parent / "fixtures" / "nvidia_pickles"


def run_generate(capsys, tmp_path, name, outdir, seeds, *flags):
    """``generate.main`` on a fixture pickle -> {seed: uint8 HWC image read back from its PNG}."""
    code, _, err = run_tool(generate.main, ["--network", PICKLES / f"{name}.pkl", "--seeds",
                                            ",".join(map(str, seeds)), "--outdir", tmp_path / outdir, *flags], capsys)
    assert code == 0, err
    return {s: np.asarray(PIL.Image.open(tmp_path / outdir / f"seed{s:04d}.png")) for s in seeds}


def cli_flags(psi, cls, noise_mode):
    return ["--trunc", psi, "--noise-mode", noise_mode, *([] if cls is None else ["--class", cls])]


def levels_apart(a, b):
    return np.abs(np.asarray(a, int).reshape(np.shape(b)) - np.asarray(b, int)).max()


@pytest.mark.parametrize("name", ["ada_skip16", "ada_resnet32_cond10"])  # the pickles with goldens for noise none
def test_noise_modes_on_the_command_line_give_nvidias_pngs(name, tmp_path, capsys):
    """Every golden case (psi, class, noise mode const or none) through the CLI's flags is NVIDIA's PNG within
    2 levels; a none case rendered with const noise is not (so the flag is what made it match), and random
    noise gives yet other images."""
    golden = cases(name)
    assert {mode for _, _, mode in golden} == {"const", "none"}
    for (psi, cls, mode), images in golden.items():
        got = run_generate(capsys, tmp_path, name, f"{psi}-{cls}-{mode}", list(images), *cli_flags(psi, cls, mode))
        for seed, expected in images.items():
            assert levels_apart(got[seed], expected) <= 2, (psi, cls, mode, seed)
        if mode == "none":
            const = run_generate(capsys, tmp_path, name, f"{psi}-{cls}-const", list(images),
                                 *cli_flags(psi, cls, "const"))
            rand = run_generate(capsys, tmp_path, name, f"{psi}-{cls}-random", list(images),
                                *cli_flags(psi, cls, "random"))
            for seed, expected in images.items():
                assert levels_apart(const[seed], expected) > 2  # const noise is not none
                assert levels_apart(rand[seed], const[seed]) > 2 and levels_apart(rand[seed], expected) > 2


def truncated_ws_reference(G, variables, z, c, psi, cutoff):
    """NVIDIA's truncation in NumPy float64 on the model's untruncated ws: ``w_avg + (w - w_avg) * psi`` on
    the layers < ``cutoff`` (all when None), the others as they are."""
    ws = np.asarray(jax.jit(lambda v, z, c: G.apply(v, z, c, method="map"))(variables, z, c), np.float64)
    w_avg = np.asarray(variables["buffers"]["mapping"]["w_avg"], np.float64)
    out = ws.copy()
    out[:, :cutoff] = w_avg + (ws[:, :cutoff] - w_avg) * psi
    return ws, out


def render(G, variables, ws):
    """ws [N, num_ws, w_dim] -> uint8 images through the model's synthesis, constant noise."""
    synth = jax.jit(lambda v, ws: to_uint8(G.apply(v, ws, "const", True, method="synthesize")))
    return np.asarray(synth(variables, np.asarray(ws, np.float32)))


def test_trunc_cutoff_truncates_only_the_first_n_ws(tmp_path, capsys):
    """``--trunc 0.5 --trunc-cutoff 2`` (a conditional 8x8 StyleGAN2 pickle, 4 ws): the PNGs are the synthesis
    of ws whose first two layers alone are pulled halfway to w_avg (closed form), which is also what the
    model's mapping computes; truncating every layer, or none, gives other images."""
    name, seeds, cls, psi, cutoff = "sg3repo_stylegan2_8_cond3", [1, 4, 6], 2, 0.5, 2
    network = load_network(PICKLES / f"{name}.pkl")
    G = network.generator
    assert G.num_ws == 4 and np.abs(np.asarray(network.G_ema["buffers"]["mapping"]["w_avg"])).max() > 0
    z, c = sampling.seed_latents(seeds, G.z_dim), sampling.class_labels(G.c_dim, cls, len(seeds))
    ws, expected_ws = truncated_ws_reference(G, network.G_ema, z, c, psi, cutoff)
    model_ws = jax.jit(lambda v, z, c: G.apply(v, z, c, psi, cutoff, method="map"))(network.G_ema, z, c)
    np.testing.assert_allclose(model_ws, expected_ws, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(expected_ws[:, cutoff:], ws[:, cutoff:])

    got = run_generate(capsys, tmp_path, name, "cut", seeds, "--trunc", psi, "--trunc-cutoff", cutoff, "--class", cls)
    expected = render(G, network.G_ema, expected_ws)
    _, all_layers = truncated_ws_reference(G, network.G_ema, z, c, psi, None)
    others = render(G, network.G_ema, np.concatenate([all_layers, ws]))
    for i, seed in enumerate(seeds):
        assert levels_apart(got[seed], expected[i]) <= 1, seed
    assert max(levels_apart(got[s], others[i]) for i, s in enumerate(seeds)) > 2  # not every layer truncated
    assert max(levels_apart(got[s], others[len(seeds) + i]) for i, s in enumerate(seeds)) > 2  # nor none


def test_gen_video_keyframes_take_trunc_and_class(tmp_path, capsys):
    """gen_video ``--trunc 0.5 --trunc-cutoff 3 --class 1``, 2 keyframes, 1 frame between them: frame k is at
    keyframe k, the image of seed k with the first 3 ws truncated (closed form) and label one-hot(1); without
    the truncation, or with class 0, the images differ."""
    name, seeds, psi, cutoff = "sg3repo_stylegan2_8_cond3", [3, 5], 0.5, 3
    out = tmp_path / "v" / "video.mp4"
    code, _, err = run_tool(gen_video.main, ["--network", PICKLES / f"{name}.pkl", "--seeds", "3,5", "--w-frames",
                                             1, "--trunc", psi, "--trunc-cutoff", cutoff, "--class", 1,
                                             "--batch-size", 2, "--output", out], capsys)
    assert code == 0, err
    frames_dir = tmp_path / "v" / "video_frames"  # no video encoder in the test environment
    assert sorted(p.name for p in frames_dir.iterdir()) == ["frame00000.png", "frame00001.png"]
    frames = [np.asarray(PIL.Image.open(frames_dir / f"frame{i:05d}.png")) for i in range(2)]

    network = load_network(PICKLES / f"{name}.pkl")
    G = network.generator
    z = sampling.seed_latents(seeds, G.z_dim)
    ws, expected_ws = truncated_ws_reference(G, network.G_ema, z, sampling.class_labels(3, 1, 2), psi, cutoff)
    _, class0_ws = truncated_ws_reference(G, network.G_ema, z, sampling.class_labels(3, 0, 2), psi, cutoff)
    expected, untruncated, class0 = np.split(render(G, network.G_ema, np.concatenate([expected_ws, ws, class0_ws])), 3)
    for k in range(2):
        assert levels_apart(frames[k], expected[k]) <= 1, k  # ws through float64 splines and back
    assert max(levels_apart(frames[k], untruncated[k]) for k in range(2)) > 2
    assert max(levels_apart(frames[k], class0[k]) for k in range(2)) > 2
