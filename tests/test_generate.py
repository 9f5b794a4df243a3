"""``python -m stylegan_jax.generate`` writes the PNGs NVIDIA's generate.py computes from the same real
pickles (golden uint8 images in ``tests/fixtures/nvidia_pickles/<name>.npz``)."""

import os
import pickle
from pathlib import Path

import jax
import numpy as np
import PIL.Image
import pytest

from stylegan_jax import generate, sampling
from stylegan_jax.cli import load_sampled_network
from stylegan_jax.images import to_uint8
from stylegan_jax.network_snapshot import load_network

PICKLES = Path(__file__).parent / "fixtures" / "nvidia_pickles"
NETWORKS = ["ada_skip16", "ada_resnet32_cond10", "sg3repo_stylegan2_8_cond3", "tf_stylegan2"]


def cases(name):
    """{(psi, class, noise_mode): {seed: golden uint8 HWC}} from the fixture's keys."""
    golden = np.load(PICKLES / f"{name}.npz")
    out = {}
    for key in golden.files:
        psi, cls, noise_mode, seed = key.split("/")
        cls = None if cls == "classNone" else int(cls[5:])
        out.setdefault((float(psi[3:]), cls, noise_mode), {})[int(seed[4:])] = golden[key]
    return out


@pytest.mark.parametrize("name", NETWORKS)
def test_same_pngs_as_nvidias_generate(name, tmp_path):
    network = load_network(PICKLES / f"{name}.pkl")
    worst = 0
    for (psi, cls, noise_mode), images in cases(name).items():
        outdir = tmp_path / f"{psi}-{cls}-{noise_mode}"
        generate.generate(network, list(images), str(outdir), psi, class_idx=cls, noise_mode=noise_mode)
        for seed, expected in images.items():
            png = PIL.Image.open(outdir / f"seed{seed:04d}.png")
            assert png.mode == ("L" if expected.shape[-1] == 1 else "RGB")
            got = np.asarray(png).reshape(expected.shape).astype(int)
            worst = max(worst, np.abs(got - expected).max())
    assert worst <= 2, f"{name}: {worst} levels apart"


def run_cli(capsys, *args):
    code = generate.main(list(args))
    return code, capsys.readouterr().err.strip()


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cli_refuses_malicious_pickle_and_runs_nothing(tmp_path, capsys):
    payload = Payload()
    payload.marker = tmp_path / "executed"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(payload))
    code, err = run_cli(capsys, "--network", str(path), "--seeds", "0", "--outdir", str(tmp_path / "out"))
    assert code == 1 and len(err.splitlines()) == 1 and "system" in err and str(path) in err
    assert not payload.marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [b"", b"garbage bytes", None])
def test_cli_bad_network_file_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "net.pkl"
    if content is not None:
        path.write_bytes(content)
    code, err = run_cli(capsys, "--network", str(path), "--seeds", "0", "--outdir", str(tmp_path / "out"))
    assert code == 1 and len(err.splitlines()) == 1 and str(path) in err


@pytest.mark.parametrize("flag, message", [([], "pass --class 0..9"), (["--class", "10"], "--class 10")])
def test_cli_conditional_network_needs_a_valid_class(tmp_path, capsys, flag, message):
    code, err = run_cli(capsys, "--network", str(PICKLES / "ada_resnet32_cond10.pkl"), "--seeds", "0",
                        "--outdir", str(tmp_path), *flag)
    assert code == 1 and message in err and len(err.splitlines()) == 1


def test_seed_list_and_latents_match_nvidia():
    assert sampling.parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    z = sampling.seed_latents([5], 4)
    np.testing.assert_array_equal(z, np.random.RandomState(5).randn(1, 4).astype(np.float32))


def test_psi_one_maps_without_truncation_as_nvidias_mapping():
    network = load_network(PICKLES / "ada_skip16.pkl")
    G, z = network.generator, sampling.seed_latents(range(8), network.generator.z_dim)
    c = np.zeros((8, G.c_dim), np.float32)
    untruncated = jax.jit(lambda v, z, c: G.apply(v, z, c, method="map"))(network.G_ema, z, c)
    assert np.abs(np.asarray(network.G_ema["buffers"]["mapping"]["w_avg"])).max() > 0
    np.testing.assert_array_equal(sampling.map_latents(G, network.G_ema, z, c, 1.0), untruncated)


def path_frames(network, z: np.ndarray, mix=None) -> np.ndarray:
    """uint8 images of an unconditional network along a path: each row of ``z`` [N, z_dim] mapped at psi 1, then
    ``mix`` [F, N] weights those ws (None: the rows' own images), rendered with constant noise."""
    G = network.generator
    ws = np.asarray(G.apply(network.G_ema, np.float32(z), np.zeros((len(z), 0), np.float32), method="map"))
    if mix is not None:
        ws = np.einsum("fn,nlc->flc", np.float32(mix), ws)
    return np.asarray(to_uint8(G.apply(network.G_ema, ws, "const", True, method="synthesize")))


def test_interpolation_writes_frames_through_the_keyframes(tmp_path, capsys):
    """Linear in W: frame f of 3 per pair is (1 - f / 3) w(seed 0) + f / 3 w(seed 1), the ends the seeds' images."""
    code, err = run_cli(capsys, "--network", str(PICKLES / "ada_skip16.pkl"), "--seeds", "0,1", "--interpolate",
                        "3", "--outdir", str(tmp_path / "video"))
    assert code == 0
    frames = sorted(p.name for p in (tmp_path / "video").glob("frame*.png"))
    assert frames == ["frame00000.png", "frame00001.png", "frame00002.png", "frame00003.png"]
    network, t = load_network(PICKLES / "ada_skip16.pkl"), np.arange(4) / 3
    expected = path_frames(network, sampling.seed_latents([0, 1], network.generator.z_dim), np.stack([1 - t, t], 1))
    for name, image in zip(frames, expected, strict=True):
        assert np.abs(np.asarray(PIL.Image.open(tmp_path / "video" / name)).astype(int) - image).max() <= 1, name
    run_cli(capsys, "--network", str(PICKLES / "ada_skip16.pkl"), "--seeds", "0,1", "--outdir", str(tmp_path))
    for frame, seed in (("frame00000", 0), ("frame00003", 1)):  # the path starts and ends at the seeds' images
        a = np.asarray(PIL.Image.open(tmp_path / "video" / f"{frame}.png")).astype(int)
        b = np.asarray(PIL.Image.open(tmp_path / f"seed{seed:04d}.png")).astype(int)
        assert np.abs(a - b).max() <= 1
    assert run_cli(capsys, "--network", str(PICKLES / "ada_skip16.pkl"), "--seeds", "0,1", "--interpolate", "1",
                   "--outdir", str(tmp_path / "video"))[0] == 0  # a shorter path into the same folder
    assert sorted(p.name for p in (tmp_path / "video").glob("frame*.png")) == ["frame00000.png", "frame00001.png"]


def test_slerp_keeps_endpoints_and_norm():
    a, b = np.array([3.0, 0.0]), np.array([0.0, 3.0])
    path = sampling.slerp(a, b, np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(path[0], a, atol=1e-12)
    np.testing.assert_allclose(path[2], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path[1]), 3.0)
    rng = np.random.default_rng(0)  # rows at once: each on its great circle, at its fraction of the angle
    a, b, t = rng.standard_normal((5, 4)), 2 * rng.standard_normal((5, 4)), rng.uniform(size=5)
    path = sampling.slerp(a, b, t)
    cos = lambda x, y: np.sum(x * y, 1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)  # noqa: E731
    omega = np.arccos(cos(a, b))
    np.testing.assert_allclose(np.arccos(np.clip(cos(path, a), -1, 1)), t * omega, atol=1e-7)
    np.testing.assert_allclose(np.arccos(np.clip(cos(path, b), -1, 1)), (1 - t) * omega, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1),
                               (1 - t) * np.linalg.norm(a, axis=1) + t * np.linalg.norm(b, axis=1))


def test_stylegan1_pickle_generates_with_nvidias_default_truncation(tmp_path):
    """A TF StyleGAN1 pickle builds its own family's G, and without --trunc generates with psi 0.7 on the
    first 8 ws (NVIDIA's G_style default): the PNG equals G's own output truncated so."""
    network = load_network(PICKLES / "tf_stylegan1.pkl")
    assert network.model == "stylegan1"
    assert generate.main(["--network", str(PICKLES / "tf_stylegan1.pkl"), "--seeds", "3", "--class", "1",
                          "--outdir", str(tmp_path)]) == 0
    G = network.generator
    z = sampling.seed_latents([3], G.z_dim)
    c = sampling.class_labels(G.c_dim, 1, 1)
    expected = np.asarray(to_uint8(G.apply(network.G_ema, z, c, truncation_psi=0.7, truncation_cutoff=8,
                                           noise_mode="const")))[0]
    untruncated = np.asarray(to_uint8(G.apply(network.G_ema, z, c, noise_mode="const")))[0]
    got = np.asarray(PIL.Image.open(tmp_path / "seed0003.png"))
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)
    assert np.abs(got.reshape(expected.shape).astype(int) - untruncated).max() > 0


@pytest.mark.parametrize("flags, expected", [([], (0.7, 8)), (["--trunc", "0.5"], (0.5, 8)),
                                              (["--trunc-cutoff", "4"], (0.7, 4)),
                                              (["--trunc", "0.5", "--trunc-cutoff", "4"], (0.5, 4))])
def test_stylegan1s_truncation_defaults_fill_in_each_flag_not_given(tmp_path, flags, expected):
    """NVIDIA's G_style defaults psi 0.7 and cutoff 8 separately: ``--trunc 0.5`` alone still cuts off at 8."""
    args = generate.parse_args(["--network", str(PICKLES / "tf_stylegan1.pkl"), "--seeds", "3", "--class", "1",
                                "--outdir", str(tmp_path), *flags])
    load_sampled_network(args)
    assert (args.truncation_psi, args.truncation_cutoff) == expected


def test_stylegan1_without_styles_generates_untruncated(tmp_path):
    """NVIDIA's tuned baseline (rung B: one w, no styles) sets truncation_psi None: no default truncation."""
    import jax.numpy as jnp

    from stylegan_jax.models import get_family
    from stylegan_jax.network_snapshot import save_network
    from stylegan_jax.training.config import load_experiment, shrink_to_tiny

    cfg = load_experiment("ablations/stylegan1_b")
    cfg.tiny = True
    cfg = shrink_to_tiny(cfg)
    family = get_family("stylegan1")
    G_kwargs, _ = family.network_kwargs(cfg, 0)
    assert G_kwargs["use_styles"] is False
    variables = jax.tree.map(np.asarray, family.build_generator(G_kwargs).init(
        jax.random.key(0), jnp.zeros((1, G_kwargs["z_dim"])), jnp.zeros((1, 0)), noise_mode="const"))
    save_network(tmp_path / "b", model="stylegan1", G_kwargs=G_kwargs, D_kwargs=None, G_ema=variables)
    args = generate.parse_args(["--network", str(tmp_path / "b"), "--seeds", "3", "--outdir", str(tmp_path)])
    load_sampled_network(args)
    assert (args.truncation_psi, args.truncation_cutoff) == (1.0, None)


def r3gan_snapshot(tmp_path, c_dim: int = 3) -> str:
    """A tiny conditional R3GAN snapshot (16x16 gray, random weights)."""
    import jax
    import jax.numpy as jnp

    from stylegan_jax.models import get_family
    from stylegan_jax.network_snapshot import save_network
    from stylegan_jax.training.config import lineage_defaults, shrink_to_tiny

    cfg = lineage_defaults("r3gan")
    cfg.tiny = True
    cfg = shrink_to_tiny(cfg)
    G_kwargs, _ = get_family("r3gan").network_kwargs(cfg, c_dim)
    G = get_family("r3gan").build_generator(G_kwargs)
    variables = G.init(jax.random.key(0), jnp.zeros((1, G.z_dim)), jnp.zeros((1, c_dim)))
    variables = jax.tree_util.tree_map(  # R3GAN zero-initialises each block's last conv: make them matter
        lambda x: x + 0.05 * jax.random.normal(jax.random.key(1), x.shape), variables)
    return save_network(tmp_path / "snap", model="r3gan", G_kwargs=G_kwargs, D_kwargs=None, G_ema=variables)


def test_cli_a_network_without_a_mapping_network_samples_z_as_w(tmp_path, capsys):
    """R3GAN (no mapping network): a seed's image is G(psi * z, one-hot class); --projected-w renders
    G(w[:, 0]); --trunc-cutoff and style mixing, which need one w per layer, are one line."""
    import jax.numpy as jnp

    path = r3gan_snapshot(tmp_path)
    network = load_network(path)
    code, _ = run_cli(capsys, "--network", path, "--seeds", "5", "--class", "2", "--trunc", "0.5",
                      "--outdir", str(tmp_path / "out"))
    assert code == 0
    z = sampling.seed_latents([5], network.generator.z_dim)
    c = np.zeros((1, 3), np.float32)
    c[0, 2] = 1
    expected = np.asarray(to_uint8(network.generator.apply(network.G_ema, jnp.asarray(0.5 * z), c,
                                                           noise_mode="const")))[0]
    got = np.asarray(PIL.Image.open(tmp_path / "out" / "seed0005.png")).reshape(expected.shape)
    np.testing.assert_array_equal(got, expected)

    np.savez(tmp_path / "projected_w.npz", w=0.5 * z[:, None, :])
    code, _ = run_cli(capsys, "--network", path, "--projected-w", str(tmp_path / "projected_w.npz"), "--class", "1",
                      "--outdir", str(tmp_path / "proj"))
    c[0] = [0, 1, 0]  # z holds no label: --class gives it
    expected = np.asarray(to_uint8(network.generator.apply(network.G_ema, jnp.asarray(0.5 * z), c,
                                                           noise_mode="const")))[0]
    got = np.asarray(PIL.Image.open(tmp_path / "proj" / "proj00.png")).reshape(expected.shape)
    assert code == 0
    np.testing.assert_array_equal(got, expected)

    code, err = run_cli(capsys, "--network", path, "--seeds", "0", "--class", "0", "--trunc-cutoff", "2",
                        "--outdir", str(tmp_path / "cut"))
    assert code == 1 and len(err.splitlines()) == 1 and "--trunc-cutoff" in err

    from stylegan_jax import style_mixing

    code = style_mixing.main(["--network", path, "--rows", "0", "--cols", "1", "--class", "0",
                              "--outdir", str(tmp_path / "mix")])
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1 and "model 'r3gan' has no mapping network" in err


def test_a_value_may_start_with_a_minus_as_in_nvidias_click():
    args = generate.parse_args(["--network", "G.pkl", "--seeds", "0", "--outdir", "out",
                                "--translate", "-0.5,0.25", "--rotate", "-.5"])
    assert (args.translate, args.rotate) == ((-0.5, 0.25), -0.5)
    with pytest.raises(SystemExit):  # a flag is still a flag
        generate.parse_args(["--network", "G.pkl", "--seeds", "0", "--outdir", "out", "--translate", "--rotate"])


@pytest.mark.parametrize("tool", ["generate", "style_mixing"])
def test_a_network_of_images_no_png_holds_is_one_line_before_the_outdir(tmp_path, capsys, tool):
    """Two image channels (a hand-made snapshot: datasets hold 1 or 3): refused when loaded, nothing written."""
    import jax.numpy as jnp

    from stylegan_jax import style_mixing
    from stylegan_jax.models.stylegan2 import Generator
    from stylegan_jax.network_snapshot import save_network
    from tests.cli.usage import assert_one_error_line

    G_kwargs = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=2,
                    mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=128, channel_max=8))
    variables = Generator(**G_kwargs).init(jax.random.key(0), jnp.zeros((1, 8)), jnp.zeros((1, 0)),
                                           noise_mode="const")
    path = save_network(tmp_path / "two", model="stylegan2", G_kwargs=G_kwargs, D_kwargs=None, G_ema=variables)
    flags = ["--seeds", "0"] if tool == "generate" else ["--rows", "0", "--cols", "1"]
    main = generate.main if tool == "generate" else style_mixing.main
    code = main(["--network", path, *flags, "--outdir", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert_one_error_line(tool, code, out, err, f"{path}: the network makes 2-channel images; the tools write PNGs "
                                                "of 1, 3, 4 channels")
    assert not (tmp_path / "out").exists()
