"""The projector: NVIDIA's schedules and noise regulariser against their formulas in NumPy float64, the step's
loss and noise renormalisation, round trips of known ws through W and W+, a batch of targets equal to separate
projections, NVIDIA's CLI defaults, and the outputs the CLI writes rendered back by generate and style_mixing."""

import copy
import json
import logging
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import pytest

from stylegan_jax import generate, projection, projector, style_mixing
from stylegan_jax.cli import UsageError
from stylegan_jax.models.stylegan2 import Generator
from stylegan_jax.network_snapshot import load_network, save_network
from stylegan_jax.projection import ProjectionSettings, Projector
from tests.metrics.conftest import detectors  # noqa: F401 - the small NVIDIA-format vgg16.pt
from tests.ops.test_area_resize import adaptive_average_pool

PICKLE = Path(__file__).parent / "fixtures" / "nvidia_pickles" / "ada_skip16.pkl"
G_KWARGS = dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                synthesis_kwargs=dict(channel_base=256, channel_max=16))
NO_C = np.zeros((1, 0), np.float32)


def build(**synthesis):
    G = Generator(**{**G_KWARGS, "synthesis_kwargs": {**G_KWARGS["synthesis_kwargs"], **synthesis}})
    variables = G.init(jax.random.key(0), jnp.zeros((1, 16)), NO_C, noise_mode="const")
    # Noise strengths are 0 at init: give the noise maps a visible effect, as in a trained network.
    params = jax.tree_util.tree_map_with_path(
        lambda p, x: x + 0.05 if p[-1].key == "noise_strength" else x, variables["params"])
    return G, {**variables, "params": params}


def image_of(G, variables, ws):
    return np.asarray(projection.to_projector_uint8(G.apply(variables, ws, "const", method="synthesize")))


def seed_ws(G, variables, seed):
    z = np.random.RandomState(seed).randn(1, G.z_dim).astype(np.float32)
    return G.apply(variables, z, NO_C, method="map")


def psnr(a, b):
    return 10 * math.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2))


# ------------------------------------------------------------------ NVIDIA's formulas


def nvidia_lr(step, num_steps):  # projector.py's loop, verbatim arithmetic in float64
    t = step / num_steps
    lr_ramp = min(1.0, (1.0 - t) / 0.25)
    lr_ramp = 0.5 - 0.5 * np.cos(lr_ramp * np.pi)
    return 0.1 * lr_ramp * min(1.0, t / 0.05)


def nvidia_w_noise(step, num_steps, w_std):
    return w_std * 0.05 * max(0.0, 1.0 - (step / num_steps) / 0.75) ** 2


@pytest.mark.parametrize("step", [0, 1, 25, 49, 50, 400, 749, 750, 751, 900, 999])
def test_schedules_follow_nvidias_formulas(step):
    s = ProjectionSettings(num_steps=1000)
    assert float(projection.learning_rate(step, s)) == pytest.approx(nvidia_lr(step, 1000), rel=1e-5, abs=1e-9)
    got = float(projection.w_noise_scale(step, 2.5, s))
    assert got == pytest.approx(nvidia_w_noise(step, 1000, 2.5), rel=1e-5, abs=1e-9)
    assert float(projection.learning_rate(0, s)) == 0  # step 0 moves nothing, as NVIDIA's


def nvidia_noise_reg(maps):  # the regulariser's loop on float64 [1, 1, H, W] arrays
    reg = 0.0
    for v in maps:
        noise = v[None, None].astype(np.float64)
        while True:
            reg += np.mean(noise * np.roll(noise, 1, axis=3)) ** 2
            reg += np.mean(noise * np.roll(noise, 1, axis=2)) ** 2
            if noise.shape[2] <= 8:
                break
            n, c, h, w = noise.shape
            noise = noise.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
    return reg


def test_noise_regularization_equals_numpy():
    rng = np.random.default_rng(0)
    maps = [rng.standard_normal((r, r)) for r in (4, 8, 8, 16, 32)]
    # Smooth maps (strong autocorrelation) too, so a wrong shift axis or scale would show.
    maps += [np.cumsum(rng.standard_normal((32, 32)), axis=0), np.cumsum(rng.standard_normal((16, 16)), axis=1)]
    got = projection.noise_regularization({str(i): jnp.asarray(m, jnp.float32) for i, m in enumerate(maps)})
    np.testing.assert_allclose(float(got), nvidia_noise_reg(maps), rtol=1e-5)
    normed = projection.normalize_noise({"a": jnp.asarray(maps[-1], jnp.float32)})["a"]
    assert abs(float(normed.mean())) < 1e-6 and float(jnp.square(normed).mean()) == pytest.approx(1, rel=1e-5)


def test_w_statistics_as_nvidia_computes_them():
    G, variables = build()
    z = np.random.RandomState(123).randn(500, 16)
    w = np.asarray(G.apply(variables, z.astype(np.float32), np.zeros((500, 0)), method="map"))[:, :1].astype(
        np.float64)
    w_avg = w.mean(axis=0, keepdims=True)
    w_avg_got, w_std = projection.w_statistics(G, variables, NO_C, samples=500)
    np.testing.assert_allclose(w_avg_got, w_avg[0, 0], rtol=1e-5)
    assert w_std == pytest.approx((np.sum((w - w_avg) ** 2) / 500) ** 0.5, rel=1e-5)


def test_area_downsample_and_l2_embedding():
    x = np.random.default_rng(1).uniform(0, 255, (2, 512, 512, 3)).astype(np.float32)
    down = np.asarray(projection.area_downsample(jnp.asarray(x)))
    np.testing.assert_allclose(down, x.reshape(2, 256, 2, 256, 2, 3).mean(axis=(2, 4)), rtol=1e-5)
    a, b = x[:1, :16, :16], x[1:, :16, :16]
    d = np.sum(np.square(np.asarray(projection.l2_embedding(jnp.asarray(a)) - projection.l2_embedding(b))))
    pa, pb = (v.reshape(1, 4, 4, 4, 4, 3).mean(axis=(2, 4)) for v in (a / 127.5 - 1, b / 127.5 - 1))
    assert d == pytest.approx(np.mean((a / 127.5 - b / 127.5) ** 2) + np.mean((pa - pb) ** 2), rel=1e-4)


@pytest.mark.parametrize("h, w, size", [(512, 512, (256, 256)), (384, 512, (256, 341)), (1024, 768, (341, 256)),
                                        (256, 192, (256, 192))])
def test_area_downsample_brings_the_short_side_to_256_keeping_the_aspect_ratio(h, w, size):
    """Any image size (NVIDIA's square images by an integer factor; W x H ones into torch's area bins)."""
    x = np.random.default_rng(2).uniform(0, 255, (1, h, w, 1))
    down = np.asarray(projection.area_downsample(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(down, adaptive_average_pool(x, *size) if size != (h, w) else x, rtol=1e-5)


def test_l2_embedding_of_sides_that_four_does_not_divide():
    a, b = (np.random.default_rng(i).uniform(0, 255, (1, 10, 6, 1)) for i in (3, 4))
    d = np.sum(np.square(np.asarray(projection.l2_embedding(jnp.asarray(a, jnp.float32))
                                    - projection.l2_embedding(jnp.asarray(b, jnp.float32)))))
    pa, pb = (adaptive_average_pool(v / 127.5 - 1, 2, 2) for v in (a, b))  # round(10 / 4), round(6 / 4)
    assert d == pytest.approx(np.mean((a / 127.5 - b / 127.5) ** 2) + np.mean((pa - pb) ** 2), rel=1e-4)


# ------------------------------------------------------------------ projections


@pytest.fixture(scope="module")
def round_trip():
    """A target generated from seed 5's w, projected with the l2 distance in W and in W+ (300 steps)."""
    G, variables = build()
    target = image_of(G, variables, seed_ws(G, variables, 5))
    out = {"G": G, "variables": variables, "target": target}
    for space in ("w", "wplus"):
        p = Projector(G, variables, NO_C, projection.distance_embedding("l2"),
                      ProjectionSettings(num_steps=300, space=space))
        result = p.project(target, seed=303)
        out[space] = (p, result, p.render(result.ws))
    return out


def test_known_w_projects_back_far_closer_than_w_avg(round_trip):
    p, result, image = round_trip["w"]
    target = round_trip["target"][0]
    w_avg_image = p.render(np.broadcast_to(p.w_avg, (1, p.num_ws, p.w_avg.shape[0])))[0]
    assert result.ws.shape == (1, p.num_ws, 16)
    np.testing.assert_array_equal(result.ws[0], np.broadcast_to(result.ws[0, :1], result.ws[0].shape))  # one w
    got, baseline = psnr(image[0], target), psnr(w_avg_image, target)
    print(f"PSNR: projection {got:.1f} dB, w_avg {baseline:.1f} dB")
    assert got > baseline + 6


def test_noise_maps_are_renormalised_after_each_step_and_the_loss_adds_their_regularizer(round_trip, monkeypatch):
    """NVIDIA's StyleGAN2 step: the reported loss is the distance plus 1e5 times the regulariser of the noise maps
    the step started from; Adam moves the maps and, after the step, every map is renormalised (zero mean, unit
    mean square). The first steps of `Projector.steps` (the W projector of `round_trip`: its step is compiled)."""
    p = round_trip["w"][0]
    assert len(projection.noise_maps(p.variables)) == 5  # 4x4, 2 at 8x8, 2 at 16x16
    seen, step_fn = [], p._step

    def maps(state):
        return {name: np.asarray(m[0], np.float64) for name, m in state["params"]["noise"].items()}

    def recording_step(*args):
        before = maps(args[5])  # read before the step donates the state
        state, out = step_fn(*args)
        seen.append((before, maps(state), *(float(x[0]) for x in out[:2])))
        return state, out

    monkeypatch.setattr(p, "_step", recording_step)
    for step, *_ in p.steps(round_trip["target"], seed=303):
        if step == 3:
            break
    # The initial maps are N(0, 1) samples, not renormalised: step 0 (lr 0) renormalising them shows.
    assert max(abs(m.mean()) for m in seen[0][0].values()) > 0.05
    for step, (before, after, dist, loss) in enumerate(seen):
        assert loss - dist == pytest.approx(1e5 * nvidia_noise_reg(list(before.values())), rel=1e-5), step
        for name, m in after.items():
            assert abs(m.mean()) < 1e-6 and np.mean(m**2) == pytest.approx(1, rel=1e-5), (step, name)
            renormalised = (before[name] - before[name].mean()) / before[name].std()
            if step == 0:  # lr 0: renormalised only
                np.testing.assert_allclose(m, renormalised, atol=1e-5)
            else:  # Adam moved the maps too
                assert np.abs(m - renormalised).max() > 1e-3, (step, name)
    assert len(seen) == 4


def test_wplus_ends_closer_than_w(round_trip):
    (_, w_result, _), (_, wplus_result, _) = round_trip["w"], round_trip["wplus"]
    assert wplus_result.distance[0] < w_result.distance[0]
    assert not np.allclose(wplus_result.ws[0, 0], wplus_result.ws[0, -1])  # the layers moved apart


def test_batch_on_four_devices_equals_separate_projections():
    assert jax.device_count() == 4
    G, variables = build()
    targets = np.concatenate([image_of(G, variables, seed_ws(G, variables, s)) for s in (1, 2, 3, 4)])
    p = Projector(G, variables, NO_C, projection.distance_embedding("l2"),
                  ProjectionSettings(num_steps=25, space="wplus"))
    assert projection.target_mesh(4).size == 4
    batch = p.project(targets, seed=7)
    for i in range(4):
        one = single_target_projection(p, targets, i, seed=7)
        # float32 sums run in another order in the batched program (up to 1.9e-6 apart on one CPU kind after
        # 25 steps); a target's pull on another's w would move it by about 0.1
        np.testing.assert_allclose(batch.ws[i], one.ws[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(batch.distance[i], one.distance[0], rtol=1e-5)
    assert not np.allclose(batch.ws[0], batch.ws[1])


def test_trajectory_of_nvidias_network_equals_nvidias_projector(monkeypatch):
    """NVIDIA's ``project()`` on the ada_skip16 pickle's G_ema for 40 steps (``projector_golden.npz``, made by
    ``make_projector_fixtures.py``): its w after every step, given the same starting noise maps and w draws
    (NVIDIA's ``randn_like``) and, for its VGG16, our l2 embedding: the w statistics, schedules, w noise, Adam
    over w and the noise maps, the noise regulariser and the renormalisation of the maps all take part. Measured
    agreement 9.4e-6, allowed 3e-5 (w moves by 1.6); without the regulariser w ends 0.95 away, without the
    renormalisation 0.16, with the learning rate one step early 0.27, with the w noise 10% larger 0.045."""
    golden = np.load(PICKLE.parent.parent / "projector_golden.npz")
    network = load_network(PICKLE)
    G, variables = network.generator, network.G_ema
    maps = {name: golden[f"noise/{name.removeprefix('synthesis/').replace('/', '.')}"]
            for name in projection.noise_maps(variables)}
    assert len(maps) == 5
    monkeypatch.setattr(projection, "initial_noise", lambda key, _maps: {k: jnp.asarray(v) for k, v in maps.items()})
    draws = jnp.asarray(golden["w_draws"])
    monkeypatch.setattr(projection, "w_perturbation", lambda key, step, shape: draws[step].reshape(shape))
    p = Projector(G, variables, NO_C, projection.distance_embedding("l2"), ProjectionSettings(num_steps=40))
    result = p.project(golden["target"][None], seed=0, keep_steps=True)
    expected = golden["w_out"]  # [steps, num_ws, w_dim]
    assert not np.allclose(expected[-1], expected[1], atol=1e-2)  # w travelled
    np.testing.assert_allclose(result.w_steps[0], expected, rtol=0, atol=3e-5)


def single_target_projection(p, targets, i, seed):
    """Target i projected alone, with the index it has in the batch (so the same key)."""
    return p.project(targets[i:i + 1], seed=seed, first_index=i)


def test_stylegan3_network_projects_in_w_and_wplus():
    """A StyleGAN3 network (NVIDIA's, config T; no noise inputs) projects an image of a known w in both spaces."""
    network = load_network(PICKLE.parent / "sg3_t16.pkl")
    G, variables = network.generator, network.G_ema
    assert projection.noise_maps(variables) == {}
    target = image_of(G, variables, seed_ws(G, variables, 9))
    for space in ("w", "wplus"):
        p = Projector(G, variables, NO_C, projection.distance_embedding("l2"),
                      ProjectionSettings(num_steps=40, space=space))
        dists = [d[0] for _, d, _, _ in p.steps(target, seed=303)]
        assert np.isfinite(dists).all() and dists[-1] < 0.5 * dists[0], (space, dists[0], dists[-1])


def test_a_network_without_a_mapping_network_projects_in_z(tmp_path):
    """R3GAN (no mapping network): W is z (``Family.sampler``), w_avg the mean of 10,000 z (near 0) and w_std
    about sqrt(z_dim); an image of a known z projects back closer than the mean latent's."""
    from tests.test_generate import r3gan_snapshot

    network = load_network(r3gan_snapshot(tmp_path))
    G, variables = network.sampler(class_idx=1), network.G_ema
    assert (G.num_ws, G.w_dim) == (1, G.z_dim)
    z = np.random.RandomState(4).randn(1, 1, G.z_dim).astype(np.float32)
    target = image_of(G, variables, z)
    p = Projector(G, variables, np.zeros((1, 3), np.float32), projection.distance_embedding("l2"),
                  ProjectionSettings(num_steps=150))
    assert np.abs(p.w_avg).max() < 0.05 and abs(p.w_std - np.sqrt(G.z_dim)) < 0.1
    result = p.project(target, seed=303)
    baseline = psnr(p.render(p.w_avg[None, None])[0], target[0])
    assert psnr(p.render(result.ws)[0], target[0]) > baseline + 6


# ------------------------------------------------------------------ the command line


def write_target(path, image, size=(40, 32)):
    """The target PNG at another size and aspect (the projector centre-crops and resizes it back)."""
    PIL.Image.fromarray(image).resize(size, PIL.Image.NEAREST).save(path)


def test_a_target_is_read_upright_and_16_bit_values_scaled(tmp_path):
    """A photo stored sideways with an EXIF orientation (6: turn 90 degrees clockwise to show it) is cropped
    upright, as dataset_tool stores it; a 16-bit grayscale PNG is scaled to 8 bits, not clipped; a float TIFF,
    which dataset_tool skips, is refused."""
    shown = np.zeros((16, 8, 3), np.uint8)  # 8 wide, 16 tall, as shown: the top quarter red
    shown[:4, :, 0] = 255
    stored = np.rot90(shown, k=1)  # orientation 6: the stored image is the shown one turned anticlockwise
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    PIL.Image.fromarray(np.ascontiguousarray(stored)).save(tmp_path / "photo.png", exif=exif)
    np.testing.assert_array_equal(projector.load_target(str(tmp_path / "photo.png"), (16, 8), 3), shown)
    PIL.Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(tmp_path / "deep.png")
    np.testing.assert_array_equal(projector.load_target(str(tmp_path / "deep.png"), 8, 1), 156)  # 40000 / 257
    PIL.Image.fromarray(np.full((8, 8), 0.5, np.float32), mode="F").save(tmp_path / "float.tif")
    with pytest.raises(UsageError, match="float.tif: floating-point pixels have no 8-bit range"):
        projector.load_target(str(tmp_path / "float.tif"), 8, 1)


def test_target_given_twice_projects_both():
    """``--target`` takes several files, given at once or flag by flag (argparse's store kept the last)."""
    args = projector.parse_args(["--network", "n.pkl", "--target", "a.png", "--target", "b.png", "c.png",
                                 "--outdir", "o"])
    assert args.target == ["a.png", "b.png", "c.png"]


def test_cli_defaults_are_nvidias():
    args = projector.parse_args(["--network", str(PICKLE), "--target", "me.png", "--outdir", "out"])
    assert (args.num_steps, args.seed, args.save_video) == (1000, 303, True)  # NVIDIA's projector.py
    assert (args.loss, args.space, args.class_idx) == ("lpips", "w", None)  # NVIDIA's distance and space
    assert projector.parse_args(["--network", "n", "--target", "t", "--outdir", "o", "--save-video"]).save_video


def test_cli_outputs_render_back_with_generate_and_style_mixing(tmp_path, capsys, caplog):
    network = load_network(PICKLE)
    G = network.generator
    target = image_of(G, network.G_ema, seed_ws(G, network.G_ema, 3))[0]
    write_target(tmp_path / "face.png", target)
    out = tmp_path / "proj"
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        code = projector.main(["--network", str(PICKLE), "--target", str(tmp_path / "face.png"), "--outdir",
                               str(out), "--loss", "l2", "--num-steps", "12"])
    assert code == 0
    # The jitted step compiled once for the 12 steps. (On this one-device mesh its dispatch cache, `_cache_size()`,
    # holds 2 entries: the step returns the state sharded P() where device_put gave P('data'), the same placement
    # on one device, and the second entry reuses the compiled step.)
    compiles = [r.getMessage() for r in caplog.records if "Compiling jit(_one_step)" in r.getMessage()]
    assert len(compiles) == 1, len(compiles)
    assert sorted(p.name for p in out.iterdir()) == ["proj.png", "proj_frames", "projected_w.npz",
                                                     "projection.json", "target.png"]
    assert len(list((out / "proj_frames").iterdir())) == 12  # no video encoder here: one PNG per step
    ws = np.load(out / "projected_w.npz")["w"]
    assert ws.shape == (1, G.num_ws, G.w_dim)
    record = json.loads((out / "projection.json").read_text())
    assert record["space"] == "w" and record["loss"] == "l2" and np.isfinite(record["distance"])
    err = capsys.readouterr().err  # the progress bar: the step count and the last step's distance and loss
    assert "12/12" in err and f"dist {record['distance']:.2f} loss {record['loss_value']:.2f}" in err, err[-300:]
    proj = np.asarray(PIL.Image.open(out / "proj.png"))
    np.testing.assert_array_equal(proj, image_of(G, network.G_ema, ws)[0])  # NVIDIA's projector conversion
    # What the CLI saved is the projection's last ws and its last step's distance, of the target it wrote.
    read = projector.load_target(str(tmp_path / "face.png"), G.img_resolution, G.img_channels)
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(out / "target.png")), read)
    expected = Projector(G, network.G_ema, np.zeros((1, 0), np.float32), projection.distance_embedding("l2"),
                         ProjectionSettings(num_steps=12)).project(read[None], seed=303)
    np.testing.assert_allclose(ws, expected.ws, rtol=1e-5, atol=1e-6)
    assert record["distance"] == pytest.approx(float(expected.distance[0]), rel=1e-5)

    assert generate.main(["--network", str(PICKLE), "--projected-w", str(out / "projected_w.npz"),
                          "--outdir", str(tmp_path / "gen")]) == 0
    rendered = np.asarray(PIL.Image.open(tmp_path / "gen" / "proj00.png")).astype(int)
    assert np.abs(rendered - proj).max() <= 1  # generate converts as x * 127.5 + 128: half a level more

    assert style_mixing.main(["--network", str(PICKLE), "--row-ws", str(out / "projected_w.npz"), "--cols", "1,2",
                              "--styles", "0-2", "--outdir", str(tmp_path / "mix")]) == 0
    names = sorted(p.name for p in (tmp_path / "mix").iterdir())
    assert names == ["1-1.png", "2-2.png", "grid.png", "proj00-1.png", "proj00-2.png", "proj00-proj00.png"]
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(tmp_path / "mix" / "proj00-proj00.png")), rendered)

    assert style_mixing.main(["--network", str(PICKLE), "--col-ws", str(out / "projected_w.npz"), "--rows", "1,2",
                              "--styles", "0-2", "--outdir", str(tmp_path / "mix_cols")]) == 0
    names = sorted(p.name for p in (tmp_path / "mix_cols").iterdir())
    assert names == ["1-1.png", "1-proj00.png", "2-2.png", "2-proj00.png", "grid.png", "proj00-proj00.png"]
    res = G.img_resolution
    for name in (n for n in names if n != "grid.png"):
        assert PIL.Image.open(tmp_path / "mix_cols" / name).size == (res, res), name
    assert PIL.Image.open(tmp_path / "mix_cols" / "grid.png").size == (2 * res, 3 * res)  # W x H: 1+1 cols, 1+2 rows
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(tmp_path / "mix_cols" / "proj00-proj00.png")), rendered)

    capsys.readouterr()
    assert projector.main(["--network", str(PICKLE), "--target", str(tmp_path / "face.png"), "--outdir", str(out),
                           "--loss", "l2", "--num-steps", "5"]) == 0  # fewer steps into the same folder
    assert sorted(p.name for p in (out / "proj_frames").iterdir()) == [f"frame{i:04d}.png" for i in range(5)]
    assert "removed 7 frames of an earlier, longer sequence" in capsys.readouterr().err
    capsys.readouterr()


def test_proj_png_of_a_network_with_half_precision_layers_is_what_generate_renders(tmp_path):
    """NVIDIA's released networks run their top resolutions in float16 (num_fp16_res 4, conv_clamp 256); the
    projector optimises so (bfloat16 here) but renders ``proj.png`` in float32, as ``generate --projected-w``
    does, so that the two agree to the conversions' half level."""
    network = load_network(PICKLE)
    kwargs = copy.deepcopy(network.G_kwargs)
    kwargs["synthesis_kwargs"].update(num_fp16_res=4, conv_clamp=256)
    snapshot = tmp_path / "fp16"
    save_network(snapshot, model="stylegan2", G_kwargs=kwargs, D_kwargs=None, G_ema=network.G_ema)
    G = load_network(snapshot).generator
    write_target(tmp_path / "face.png", image_of(G, network.G_ema, seed_ws(G, network.G_ema, 3))[0])
    out = tmp_path / "proj"
    assert projector.main(["--network", str(snapshot), "--target", str(tmp_path / "face.png"), "--outdir", str(out),
                           "--loss", "l2", "--num-steps", "4", "--save-video=false"]) == 0
    assert generate.main(["--network", str(snapshot), "--projected-w", str(out / "projected_w.npz"),
                          "--outdir", str(tmp_path / "gen")]) == 0
    proj = np.asarray(PIL.Image.open(out / "proj.png")).astype(int)
    assert np.abs(np.asarray(PIL.Image.open(tmp_path / "gen" / "proj00.png")).astype(int) - proj).max() <= 1


def test_cli_projects_a_folder_as_one_batch_with_lpips(tmp_path, detectors, capsys):  # noqa: F811
    root, _, _ = detectors
    network = load_network(PICKLE)
    G = network.generator
    folder = tmp_path / "targets"
    folder.mkdir()
    targets = {s: image_of(G, network.G_ema, seed_ws(G, network.G_ema, s))[0] for s in (1, 2, 3)}
    for s, target in targets.items():
        write_target(folder / f"t{s}.png", target, (16, 16))
    code = projector.main(["--network", str(PICKLE), "--target", str(folder), "--outdir", str(tmp_path / "out"),
                           "--num-steps", "8", "--space", "wplus", "--save-video=false", "--detector-dir",
                           str(root)])
    assert code == 0
    ws = []
    for s in (1, 2, 3):  # each target's outputs in its own folder
        d = tmp_path / "out" / f"t{s}"
        assert sorted(p.name for p in d.iterdir()) == ["proj.png", "projected_w.npz", "projection.json",
                                                       "target.png"]
        record = json.loads((d / "projection.json").read_text())
        assert record["loss"] == "lpips" and record["space"] == "wplus" and record["distance"] > 0
        np.testing.assert_array_equal(np.asarray(PIL.Image.open(d / "target.png")), targets[s])
        ws.append(np.load(d / "projected_w.npz")["w"])
        np.testing.assert_array_equal(np.asarray(PIL.Image.open(d / "proj.png")), image_of(G, network.G_ema, ws[-1])[0])
    assert not any(np.allclose(ws[i], ws[j]) for i, j in ((0, 1), (0, 2), (1, 2)))
    assert "projected 3 target(s)" in capsys.readouterr().out
