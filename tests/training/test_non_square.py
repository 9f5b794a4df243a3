"""W x H training: a 64x32 (W x H) StyleGAN2 with path length and R1 steps on 4 devices as on 1, trains to a
snapshot that generate, style_mixing and the projector read; a tiny StyleGAN3 trains on the same data, and a
tiny PGGAN grows on it from its 8x4 (W x H) base; configs of other families or odd ratios are one line."""

import jax
import numpy as np
import PIL.Image
import pytest

from stylegan_jax import generate, projector, style_mixing
from stylegan_jax.data.images import encode_png
from stylegan_jax.data.tfds_builder import DatasetSpec, write_dataset
from stylegan_jax.errors import ConfigError
from stylegan_jax.images import image_grid, to_uint8
from stylegan_jax.network_snapshot import load_network
from stylegan_jax.training.config import load_experiment, shrink_to_tiny
from stylegan_jax.training.loop import Trainer, train
from stylegan_jax.training.schedule import schedule
from tests.training.conftest import leaves, tiny_config
from tests.training.test_stylegan3_training import tiny_stylegan3

WIDTH, HEIGHT = 64, 32


@pytest.fixture(scope="module")
def wide_data(tmp_path_factory):
    """16 smooth 64x32 (W x H) grayscale images, unlabelled."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (16, HEIGHT // 8, WIDTH // 8, 1))
    images = coarse.repeat(8, 1).repeat(8, 2).astype(np.uint8)
    spec = DatasetSpec(resolution=f"{WIDTH}x{HEIGHT}", channels=1, source="test")
    root = tmp_path_factory.mktemp("wide")
    write_dataset(root / "wide", spec, [{"image": encode_png(im)} for im in images])
    return root


def wide_config(data_dir, **overrides):
    c = tiny_config(data_dir, **overrides)
    c.dataset, c.resolution, c.conditional, c.c_dim = "wide", f"{WIDTH}x{HEIGHT}", False, 0
    return c


def test_wide_networks_train_on_four_devices_as_on_one(wide_data, tmp_path):
    cfg = wide_config(wide_data)
    results = []
    for devices in (jax.devices()[:1], jax.devices()[:4]):
        trainer = Trainer(cfg, tmp_path / str(len(devices)), devices=devices)
        assert trainer.G.img_resolution == trainer.D.img_resolution == (HEIGHT, WIDTH)
        state = trainer.initial_state()
        assert state.g_params["synthesis"]["b4"]["const"].shape == (16, 4, 8)  # the 4x8 (H x W) base
        batch = trainer.device_batch(next(trainer.iterator))
        assert batch[0].shape[-3:] == (HEIGHT, WIDTH, 1)  # [K, batch_gpu, H, W, C]
        for step in range(2):  # iteration 0 runs G_main, G_reg (path length), D_main and D_reg (R1)
            state, _ = trainer.run_iteration(state, batch, step)
        results.append(leaves(state))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_a_wide_stylegan3_trains(wide_data, tmp_path):
    cfg = tiny_stylegan3(wide_data, "stylegan3_t", dataset="wide", resolution=f"{WIDTH}x{HEIGHT}",
                         conditional=False, c_dim=0)
    trainer = Trainer(cfg, tmp_path)
    state = trainer.initial_state()
    before = {name: leaves(getattr(state, name)) for name in ("g_params", "d_params")}
    batch = trainer.device_batch(next(trainer.iterator))
    for step in range(2):
        state, _ = trainer.run_iteration(state, batch, step)
    assert all(np.isfinite(x).all() for x in leaves(state))
    for name, initial in before.items():  # both networks stepped: every weight array moved
        moved = [not np.array_equal(a, b) for a, b in zip(initial, leaves(getattr(state, name)), strict=True)]
        assert all(moved), (name, moved)
    fakes = trainer.fakes(state)
    assert fakes.shape == (cfg.grid**2, HEIGHT, WIDTH, 1)
    assert np.isfinite(fakes).all() and fakes.std() > 0


def test_tiny_keeps_a_w_x_h_experiment_w_x_h():
    """--config.tiny trains a W x H experiment on the built-in W x H portraits (its W x H networks kept), a
    square one on the 16x16 digits."""
    for name, expected in (("quickstart_portrait", ("lfw-faces-portrait", "24x32")), ("quickstart", ("digits-16", 16))):
        cfg = load_experiment(name)
        cfg.tiny = True
        cfg = shrink_to_tiny(cfg)
        assert (cfg.dataset, cfg.resolution, cfg.img_channels, cfg.kimg) == (*expected, 1, 0.064)


def test_a_wide_pggan_grows_from_its_base(wide_data, tmp_path):
    """Tiny PGGAN (4x4 -> 32x32 nominal: 8x4 -> 64x32 W x H here), 16 images per phase: through 16x8 stable
    and 32x16 fading in, the reals are box-downsampled to the canvas and the grid is full size."""
    cfg = load_experiment("pggan")
    cfg.tiny = True
    cfg = shrink_to_tiny(cfg)
    cfg.update(data_dir=str(wide_data), dataset="wide", resolution=f"{WIDTH}x{HEIGHT}", kimg=0.048)
    cfg.minibatch_repeats = 1  # the schedule every iteration, so that the tiny run fades in
    state = train(cfg, tmp_path)
    assert all(np.isfinite(x).all() for x in leaves(state))
    assert "growing from 8x4" in (tmp_path / "log.txt").read_text()  # W x H
    fakes = np.asarray(PIL.Image.open(tmp_path / "fakes000000.048.png"))
    assert fakes.shape == (cfg.grid * HEIGHT, cfg.grid * WIDTH)
    f = 32 // schedule(cfg, 48).resolution  # the canvas's pixels repeated up to full size along both axes
    assert f > 1
    blocks = fakes.reshape(cfg.grid * HEIGHT // f, f, cfg.grid * WIDTH // f, f)
    assert (blocks == blocks[:, :1, :, :1]).all() and blocks.std() > 0


def test_a_wide_stylegan1_mixes_styles_while_growing(wide_data, tmp_path):
    """Style mixing crosses over among the layers in use at the growing resolution, counted from the nominal
    full resolution of a W x H run."""
    cfg = load_experiment("ablations/stylegan1_f")
    cfg.tiny = True
    cfg = shrink_to_tiny(cfg)
    cfg.update(data_dir=str(wide_data), dataset="wide", resolution=f"{WIDTH}x{HEIGHT}", kimg=0.016)
    assert cfg.style_mixing_prob == 0.9
    state = train(cfg, tmp_path)
    assert all(np.isfinite(x).all() for x in leaves(state))
    assert "growing from 8x4" in (tmp_path / "log.txt").read_text()


def test_a_wide_run_snapshots_what_the_tools_read(wide_data, tmp_path, capsys):
    cfg = wide_config(wide_data, kimg=0.016)
    train(cfg, tmp_path / "run")
    snapshot = str(tmp_path / "run" / "network-snapshot-000000.016")
    fakes = np.asarray(PIL.Image.open(tmp_path / "run" / "fakes000000.016.png"))
    assert fakes.shape == (cfg.grid * HEIGHT, cfg.grid * WIDTH)
    # The grid is G_ema's (the snapshot's) images of NVIDIA's grid z (RandomState(seed)), constant noise, row-major
    network = load_network(snapshot)
    z = np.random.RandomState(cfg.seed).randn(cfg.grid**2, network.generator.z_dim).astype(np.float32)
    images = jax.jit(lambda v, z: to_uint8(network.generator.apply(v, z, np.zeros((len(z), 0), np.float32),
                                                                   noise_mode="const")))(network.G_ema, z)
    assert cfg.grid_noise == "const"
    np.testing.assert_array_equal(fakes, image_grid(np.asarray(images), cfg.grid)[..., 0])

    assert generate.main(["--network", snapshot, "--seeds", "1-2", "--outdir", str(tmp_path / "gen")]) == 0
    assert np.asarray(PIL.Image.open(tmp_path / "gen" / "seed0001.png")).shape == (HEIGHT, WIDTH)

    assert style_mixing.main(["--network", snapshot, "--rows", "1,2", "--cols", "3", "--styles", "0-3",
                              "--outdir", str(tmp_path / "mix")]) == 0
    assert np.asarray(PIL.Image.open(tmp_path / "mix" / "grid.png")).shape == (3 * HEIGHT, 2 * WIDTH)

    target = tmp_path / "target.png"  # 80x32: cropped to the centred 64x32 box, not to a square
    PIL.Image.fromarray(np.pad(np.full((HEIGHT, WIDTH), 200, np.uint8), ((0, 0), (8, 8)))).save(target)
    assert projector.main(["--network", snapshot, "--target", str(target), "--loss", "l2", "--num-steps", "2",
                           "--save-video=false", "--outdir", str(tmp_path / "proj")]) == 0
    projected = np.asarray(PIL.Image.open(tmp_path / "proj" / "target.png"))
    assert projected.shape == (HEIGHT, WIDTH) and projected[:, 2:-2].min() > 150
    assert np.asarray(PIL.Image.open(tmp_path / "proj" / "proj.png")).shape == (HEIGHT, WIDTH)


@pytest.mark.parametrize("metric, message", [
    ("eqt50k_int", "--metrics eqt50k_int: eqt50k_int is defined for square images; the generator makes 64x32"),
    ("swd", None),  # a short side of 32: SWD's levels 64x32 and 32x16
])
def test_a_metric_that_cannot_score_a_wide_run_is_refused_before_it_trains(wide_data, tmp_path, metric, message):
    cfg = tiny_stylegan3(wide_data, "stylegan3_t", dataset="wide", resolution=f"{WIDTH}x{HEIGHT}",
                         conditional=False, c_dim=0, metrics=(metric,))
    if message is None:
        Trainer(cfg, tmp_path)
    else:
        with pytest.raises(ConfigError, match=message):
            Trainer(cfg, tmp_path)


@pytest.mark.parametrize("overrides,message", [
    (dict(model="r3gan"), "model 'r3gan' makes square images only "
                          "(W x H images: pggan, stylegan1, stylegan2, stylegan3)"),
    (dict(resolution="72x32"), "resolution 72x32 is not a small base doubled"),
])
def test_unsupported_wide_configs_are_one_line(wide_data, tmp_path, overrides, message):
    cfg = wide_config(wide_data)
    for key, value in overrides.items():
        cfg[key] = value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Trainer(cfg, tmp_path)


def test_a_square_only_model_on_a_wide_dataset_names_the_dataset_not_a_flag_not_given(wide_data, tmp_path):
    cfg = wide_config(wide_data, model="r3gan")
    cfg.resolution = None  # the dataset's, as experiments/auto.py leaves it
    with pytest.raises(ConfigError, match=r"^the dataset wide's size 64x32: model 'r3gan' makes square images only"):
        Trainer(cfg, tmp_path)
