"""The metric pipelines on a tiny conditional generator, a 24-image grayscale dataset and small random
detectors: dataset and generator features equal the detector applied directly to the same images, do not
depend on the batch size, are cached; FID/KID/PR/IS/PPL equal the formulas on those direct features."""

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax import projection
from stylegan_jax.data import make_dataset
from stylegan_jax.data.images import encode_png
from stylegan_jax.data.tfds_builder import DatasetSpec, write_dataset
from stylegan_jax.images import to_uint8
from stylegan_jax.metrics import METRICS, MetricError, append_result, calc_metric, distances, features, metric_main
from stylegan_jax.metrics.detectors import load_inception, load_vgg16
from stylegan_jax.metrics.metric_main import (
    _detector_fn,
    _swd_fn,
    compute_fid,
    compute_is,
    compute_kid,
    compute_ppl,
    compute_pr,
    slerp,
)
from stylegan_jax.models import get_family
from stylegan_jax.models.stylegan2 import Generator
from stylegan_jax.network_snapshot import load_network
from tests.metrics.conftest import C_DIM, G_KWARGS, RES

N_REAL, N_GEN = 24, 10


@pytest.fixture
def opts(dataset, generator, detectors, tmp_path):
    G, G_vars = generator
    return features.MetricOptions(G=G, G_vars=G_vars, dataset=dataset, detector_dir=str(detectors[0]),
                                  batch_size=8, progress=False, cache_dir=str(tmp_path / "cache"))


def _reals(dataset):
    return next(iter(make_dataset(dataset, batch_size=N_REAL, shuffle=False, num_epochs=1)))["image"]


def _fakes(opts, n=N_GEN):
    z, c = features.latents_and_labels(opts.seed, np.arange(n), opts.G.z_dim, features.dataset_labels(opts))
    assert set(map(tuple, c)) <= set(map(tuple, np.eye(C_DIM)))  # labels drawn from the dataset's
    generate = jax.jit(lambda v, z, c: to_uint8(opts.G.apply(v, z, c, noise_mode="const")))
    return np.asarray(generate(opts.G_vars, z, c))


def _direct(det, methods, images):
    """{method: the detector's output} for all [N, H, W, 1] images, in one jitted call."""
    def apply(p, x):
        return {m: det.module.apply({"params": p}, jnp.repeat(x, 3, -1), method=m) for m in methods}

    return {m: np.asarray(v) for m, v in jax.jit(apply)(det.params, images).items()}


@pytest.fixture(scope="module")
def direct(dataset, generator, detectors):
    """Inception features and probabilities, VGG16 features of the reals and of N_GEN generated images, each
    detector applied directly: {(detector, method): (real, fake)}."""
    G, G_vars = generator
    opts = features.MetricOptions(G=G, G_vars=G_vars, dataset=dataset)
    images = np.concatenate([_reals(dataset), _fakes(opts)])
    out = _direct(load_inception(detectors[0]), ("features", "probabilities"), images)
    out["vgg"] = _direct(load_vgg16(detectors[0]), ("features",), images)["features"]
    return {k: (v[:N_REAL], v[N_REAL:]) for k, v in out.items()}


@pytest.mark.slow
def test_features_equal_direct_detector_outputs_and_are_cached(opts, direct, monkeypatch):
    det = load_inception(opts.detector_dir)
    fn = _detector_fn(det.module, "features")
    key = dict(digest=det.digest)
    real = features.dataset_feature_stats(opts, fn, det.params, det.name, key, max_items=None, capture_all=True)
    np.testing.assert_allclose(real.get_all(), direct["features"][0], rtol=1e-5, atol=1e-5)
    fake = features.generator_feature_stats(opts, fn, det.params, num_items=N_GEN, capture_all=True)
    np.testing.assert_allclose(fake.get_all(), direct["features"][1], rtol=1e-5, atol=1e-5)

    monkeypatch.setattr(features, "run_batches", None)  # a second dataset pass must come from the cache
    cached = features.dataset_feature_stats(opts, fn, det.params, det.name, key, max_items=None, capture_all=True)
    np.testing.assert_array_equal(cached.get_all(), real.get_all())
    assert len(list(Path(opts.cache_dir).glob("tiny-inception-2015-12-05-*.npz"))) == 1


@pytest.mark.parametrize("damage", [b"garbage", b"PK\x03\x04 cut short", None])
def test_a_damaged_cache_file_is_computed_again(opts, damage, capsys):
    det = load_inception(opts.detector_dir)
    fn, key = _detector_fn(det.module, "features"), dict(digest=det.digest)
    real = features.dataset_feature_stats(opts, fn, det.params, det.name, key, max_items=4, capture_all=True)
    (cache,) = Path(opts.cache_dir).glob("tiny-inception-2015-12-05-*.npz")
    if damage is None:
        np.save(cache.with_suffix(""), np.array([{"a": 1}], dtype=object))  # pickled data is never loaded
        cache.with_suffix(".npy").replace(cache)
    else:
        cache.write_bytes(damage)
    again = features.dataset_feature_stats(opts, fn, det.params, det.name, key, max_items=4, capture_all=True)
    np.testing.assert_array_equal(again.get_all(), real.get_all())
    assert f"warning: {cache}: unreadable cached statistics" in capsys.readouterr().err
    np.testing.assert_array_equal(distances.FeatureStats.load(cache).get_all(), real.get_all())  # replaced


@pytest.mark.slow
@pytest.mark.parametrize("module", ["stylegan_jax.metrics.inception", "stylegan_jax.images",
                                    "stylegan_jax.data.pipeline"])
def test_dataset_statistics_computed_by_older_code_are_not_reused(opts, monkeypatch, module):
    """The cache key covers our Inception code, not only NVIDIA's file, and the code that makes the images it
    sees (the conversion to uint8, the dataset's decoding): after a change to it (a fix of the network, of its
    resize, of a rounding) the reals' statistics are computed again, under a new name."""
    fid = compute_fid(opts, max_real=None, num_gen=N_GEN)
    cached = lambda: set(Path(opts.cache_dir).glob("*.npz"))  # noqa: E731
    first = cached()
    assert len(first) == 1
    source = features.inspect.getsource
    with monkeypatch.context() as patch:
        patch.setattr(features.inspect, "getsource",
                      lambda m: source(m) + ("# changed" if m.__name__ == module else ""))
        features.source_digest.cache_clear()
        try:
            assert compute_fid(opts, max_real=None, num_gen=N_GEN) == pytest.approx(fid, rel=1e-5)
        finally:
            features.source_digest.cache_clear()
    assert len(cached() - first) == 1
    compute_fid(opts, max_real=None, num_gen=N_GEN)  # the code as it is: its statistics found again
    assert len(cached()) == 2


def test_a_dataset_converted_again_in_its_place_does_not_reuse_the_old_statistics(opts, tmp_path, direct):
    """``dataset_tool --overwrite`` (`write_dataset`) puts other images at the same path, in the same number and
    size: their statistics are computed from them, not taken from the cache of the ones they replaced."""
    det = load_inception(opts.detector_dir)
    fn, key = _detector_fn(det.module, "features"), dict(digest=det.digest)
    spec = DatasetSpec(resolution=RES, channels=1, label_kind="class", c_dim=C_DIM, source="test")
    path = tmp_path / "replaced"
    stats = []
    for images in (_reals(opts.dataset), 255 - _reals(opts.dataset)):
        write_dataset(path, spec, [{"image": encode_png(im), "label": i % C_DIM} for i, im in enumerate(images)],
                      overwrite=True)
        replaced = dataclasses.replace(opts, dataset=path)
        stats.append(features.dataset_feature_stats(replaced, fn, det.params, det.name, key, max_items=None,
                                                    capture_all=True).get_all())
    np.testing.assert_allclose(stats[0], direct["features"][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats[1], _direct(det, ("features",), 255 - _reals(opts.dataset))["features"],
                               rtol=1e-5, atol=1e-5)
    assert len(list(Path(opts.cache_dir).glob("replaced-*.npz"))) == 2


def test_a_subset_of_0_is_the_whole_dataset(opts):
    """Training's config says "every image" with ``subset`` 0; so do the metrics' options."""
    assert dataclasses.replace(opts, subset=0).subset is None
    assert features.dataset_size(dataclasses.replace(opts, subset=0), mirror=False) == N_REAL
    with pytest.raises(ValueError, match="subset"):
        dataclasses.replace(opts, subset=-1)


def test_an_unconditional_generator_reads_no_labels(opts, monkeypatch):
    uncond = dataclasses.replace(opts, G=Generator(**{**G_KWARGS, "c_dim": 0}))
    monkeypatch.setattr(features, "make_iterator", lambda *a, **k: pytest.fail("read the dataset's images"))
    assert features.dataset_labels(uncond).shape == (24, 0)  # the draws of a label index stay NVIDIA's


def test_generated_images_do_not_depend_on_the_batch_size(opts):
    """Checked on the SWD descriptors (cheap to compile): 8 per batch (2 per device) and 12 (3 per device)."""
    fn = _swd_fn(opts.seed)
    out = []
    for batch_size in (8, 12):
        opts.batch_size = batch_size
        out.append(features.generator_feature_stats(opts, fn, None, num_items=N_GEN, capture_all=True).get_all())
    np.testing.assert_allclose(out[0], out[1], rtol=1e-5, atol=1e-4)
    assert out[0].shape == (N_GEN, 128 * 49)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Matrix is singular")  # 10 generated features of 128 components
def test_fid_kid_is_equal_formulas_on_direct_features(opts, direct):
    real, fake = direct["features"]
    mean_cov = [(x.mean(0), np.cov(x.astype(np.float64), rowvar=False, bias=True)) for x in (fake, real)]
    fid = compute_fid(opts, max_real=None, num_gen=N_GEN)
    assert fid == pytest.approx(distances.frechet_distance(*mean_cov[0], *mean_cov[1]), rel=1e-4) and fid > 0
    kid = compute_kid(opts, max_real=None, num_gen=N_GEN, num_subsets=3, max_subset_size=8)
    assert kid == pytest.approx(distances.kernel_distance(real, fake, 3, 8, opts.seed), rel=1e-4, abs=1e-7)
    is_expected = distances.inception_score(direct["probabilities"][1], 2)
    assert compute_is(opts, num_gen=N_GEN, num_splits=2) == pytest.approx(is_expected, rel=1e-4)


@pytest.mark.slow
def test_precision_recall_equals_knn_on_direct_vgg_features(opts, direct):
    expected = distances.precision_recall(*direct["vgg"], 3)
    assert compute_pr(opts, max_real=None, num_gen=N_GEN, nhood_size=3) == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def direct_ppl(opts, n: int, eps: float, crop: bool) -> float:
    """PPL in W at the path's ends written out: each sample's LPIPS distance between G(w0) and
    G(w0 + eps (w1 - w0)) over eps^2 (NVIDIA's face crop: rows 3/8..7/8, columns 2/8..6/8 of each side), the
    mean of n samples (the percentile trim keeps all of so few)."""
    det, G = load_vgg16(opts.detector_dir), opts.G
    labels = features.dataset_labels(opts)

    @jax.jit
    def path_length(z, c):
        w0, w1 = G.apply(opts.G_vars, z, c, method="map")
        img = G.apply(opts.G_vars, jnp.stack([w0, w0 + eps * (w1 - w0)]), "const", True, method="synthesize")
        if crop:
            h, w = img.shape[1] // 8, img.shape[2] // 8
            img = img[:, h * 3:h * 7, w * 2:w * 6]
        emb = det.module.apply({"params": det.params}, jnp.repeat((img + 1) * 127.5, 3, -1), method="lpips_embedding")
        return jnp.square(emb[0] - emb[1]).sum() / eps**2

    dists = []
    for i in range(n):
        rng = np.random.default_rng([opts.seed, i])
        z = rng.standard_normal(2 * G.z_dim, np.float32).reshape(2, G.z_dim)
        dists.append(float(path_length(z, np.repeat(labels[rng.integers(len(labels))][None], 2, axis=0))))
    return float(np.mean(dists))


def test_ppl_w_end_equals_direct_lpips_of_epsilon_steps(opts):
    ppl = compute_ppl(opts, num_samples=6, epsilon=1e-4, space="w", sampling="end", crop=False)
    assert ppl == pytest.approx(direct_ppl(opts, 6, 1e-4, crop=False), rel=2e-2)
    assert ppl > 0


@pytest.mark.parametrize("resolution, channel_base, crop, reaches_lpips", [
    (512, 512, True, (128, 128)), (512, 512, False, (256, 256)), ((768, 1024), 1024, False, (256, 341))])
def test_ppl_pools_by_the_generators_resolution_over_256(resolution, channel_base, crop, reaches_lpips):
    """NVIDIA's PPL (stylegan2-ada's perceptual_path_length.py) pools a 512x512 generator's images by
    512 // 256 = 2, after the face crop too: the cropped 256x256 centre reaches LPIPS at 128x128. A 1024x768
    generator by its short side, 768 // 256 = 3: its 1024 columns, which 3 does not divide, go into torch's
    area bins (341 of them). The probe records what the LPIPS embedding is given: the first path's image at
    t = 0, (G(w0) + 1) * 127.5 cropped and pooled as torch's adaptive average pooling (float64 reference)."""
    from stylegan_jax.metrics.metric_main import _ppl_step
    from tests.ops.test_area_resize import adaptive_average_pool

    seen = []

    class Probe(nn.Module):
        def lpips_embedding(self, x):
            jax.debug.callback(lambda v: seen.append(np.asarray(v)), x)
            return x.reshape(len(x), -1)

    G = Generator(**dict(G_KWARGS, c_dim=0, img_resolution=resolution,
                         synthesis_kwargs=dict(channel_base=channel_base, channel_max=4, use_noise=False)))
    G_vars = jax.jit(G.init)(jax.random.key(0), jnp.zeros((1, 8)), jnp.zeros((1, 0)))
    params = {"G": G_vars, "vgg": {}, "seed": np.uint32(0)}
    z0, z1 = jax.random.normal(jax.random.key(1), (2, 1, 8))
    c, t = jnp.zeros((1, 0)), jnp.zeros((1, 1))
    jax.block_until_ready(jax.jit(_ppl_step(G, Probe(), 1e-4, "w", crop))(params, z0, z1, c, t, jnp.arange(1)))
    (given,) = seen
    assert given.shape[1:] == (*reaches_lpips, 3)
    synthesize = jax.jit(lambda z: G.apply(G_vars, G.apply(G_vars, z, c, method="map"), "const", True,
                                           method="synthesize"))
    image = np.asarray(synthesize(z0), np.float64)
    if crop:
        image = image[:, 512 // 8 * 3: 512 // 8 * 7, 512 // 8 * 2: 512 // 8 * 6]
    expected = (adaptive_average_pool(image, *reaches_lpips) + 1) * 127.5
    np.testing.assert_allclose(given[:1], np.repeat(expected, 3, axis=-1), atol=1e-3)


def test_ppl_redraws_the_noise_maps_for_each_of_nvidias_batches_of_two_paths():
    """Paths 2j and 2j + 1 share their noise maps (NVIDIA's PPL batch of 2), the next pair has others, whatever
    the paths computed together; other buffers are kept."""
    buffers = {"b4": {"conv1": {"noise_const": jnp.zeros((4, 4))}}, "w_avg": jnp.arange(3.0)}
    seed = np.uint32(5)
    together = metric_main.ppl_noise_buffers(buffers, seed, jnp.arange(6))
    noise = np.asarray(together["b4"]["conv1"]["noise_const"])
    assert noise.shape == (6, 4, 4) and 0.5 < noise.std() < 1.5
    for a, b in ((0, 1), (2, 3), (4, 5)):
        np.testing.assert_array_equal(noise[a], noise[b])
    for a, b in ((1, 2), (3, 4), (0, 4)):
        assert not np.allclose(noise[a], noise[b])
    alone = metric_main.ppl_noise_buffers(buffers, seed, jnp.asarray([3, 4]))
    np.testing.assert_array_equal(alone["b4"]["conv1"]["noise_const"], noise[3:5])
    np.testing.assert_array_equal(together["w_avg"], np.tile(np.arange(3.0), (6, 1)))


class PixelEmbedding(nn.Module):
    """Stands in for the VGG16 detector: the projector's l2 embedding, which the fixture script gave NVIDIA's PPL."""

    def lpips_embedding(self, images):
        return projection.l2_embedding(images)


@pytest.mark.parametrize("name, space, crop", [("ppl2_wend", "w", False), ("ppl_zend", "z", True)])
def test_ppl_of_nvidias_stylegan3_pickle_equals_nvidias(name, space, crop, dataset, monkeypatch):
    """NVIDIA's ``compute_ppl`` on its StyleGAN3-T pickle (``sg3_t16.npz``, made by ``make_stylegan3_fixtures.py``)
    over 8 endpoint paths, given our latents and, for its VGG16, the pixel embedding: W's lerp or Z's slerp at
    epsilon 1e-4, the face crop, the [0, 255] scaling and / epsilon^2 (8 paths: the percentile trim keeps all;
    the network has no noise maps and no labels). Measured agreement 0.07% (float32 differences at epsilon 1e-4),
    allowed 0.2%; the crop left out or put in moves the PPL by 9-15%, Z's slerp as a lerp by 6%."""
    fixtures = Path(__file__).parents[1] / "fixtures" / "nvidia_pickles"
    network = load_network(fixtures / "sg3_t16.pkl")
    expected = np.load(fixtures / "sg3_t16.npz")[f"ppl/{name}"]
    monkeypatch.setattr(metric_main, "load_vgg16", lambda _dir: SimpleNamespace(module=PixelEmbedding(), params={}))
    opts = features.MetricOptions(G=network.generator, G_vars=network.G_ema, dataset=dataset, batch_size=8,
                                  progress=False)
    with jax.default_matmul_precision("float32"):  # as calc_metric runs every metric
        ppl = compute_ppl(opts, num_samples=8, epsilon=1e-4, space=space, sampling="end", crop=crop)
    assert ppl == pytest.approx(expected, rel=2e-3), (ppl, expected)


@pytest.mark.parametrize("name, space, crop", [("ppl2_wend", "w", False), ("ppl_zend", "z", True)])
def test_ppl_of_nvidias_network_with_noise_maps_equals_nvidias(name, space, crop, dataset, monkeypatch):
    """NVIDIA's ``compute_ppl`` (stylegan2-ada-pytorch) on its ada_skip16 pickle, a network with noise maps,
    over 8 endpoint paths in its batches of 2 (``ppl_golden.npz``, made by ``make_ppl_fixtures.py``), given our
    latents, the pixel embedding for its VGG16 and the noise maps it redraws before each batch: ours take
    batch j's maps for paths 2j and 2j + 1 whatever our batches (8 paths in one here). Measured agreement
    0.06% (W) and 0.10% (Z, cropped), allowed 0.2%; the first batch's maps for every path move the PPL by 25%
    and 4.4%, one batch's maps per path (path i batch i % 4's) by 9.4% and 6.4%."""
    fixtures = Path(__file__).parents[1] / "fixtures"
    golden = np.load(fixtures / "ppl_golden.npz")
    network = load_network(fixtures / "nvidia_pickles" / "ada_skip16.pkl")
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(network.G_ema["buffers"])[0]]
    maps = {p: jnp.stack([golden[f"noise/{j}/{'.'.join(k.key for k in p)}"] for j in range(4)])
            for p in paths if p[-1].key == "noise_const"}
    assert len(maps) == 5

    def nvidias_maps(buffers, _seed, idx):  # NVIDIA's batch idx // 2's maps, the other buffers as they are
        return jax.tree_util.tree_map_with_path(
            lambda p, x: maps[p][idx // metric_main.PPL_BATCH] if p in maps else jnp.broadcast_to(x, (len(idx),
                                                                                                      *x.shape)),
            buffers)

    monkeypatch.setattr(metric_main, "ppl_noise_buffers", nvidias_maps)
    monkeypatch.setattr(features, "_COMPILED", {})  # a PPL step compiled before would close over our own maps
    monkeypatch.setattr(metric_main, "load_vgg16", lambda _dir: SimpleNamespace(module=PixelEmbedding(), params={}))
    opts = features.MetricOptions(G=network.generator, G_vars=network.G_ema, dataset=dataset, batch_size=32,
                                  progress=False)
    with jax.default_matmul_precision("float32"):  # as calc_metric runs every metric
        ppl = compute_ppl(opts, num_samples=8, epsilon=1e-4, space=space, sampling="end", crop=crop)
    assert ppl == pytest.approx(float(golden[f"ppl/{name}"]), rel=2e-3), (ppl, float(golden[f"ppl/{name}"]))


def test_slerp_keeps_unit_norm_and_endpoints():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 4, 5))
    out = slerp(a, b, np.array([[0.0], [1.0], [0.5], [0.25]]))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(out[0], a[0] / np.linalg.norm(a[0]), rtol=1e-5)
    np.testing.assert_allclose(out[1], b[1] / np.linalg.norm(b[1]), rtol=1e-5, atol=1e-6)
    # the great circle's closed form (float64): sin((1-t) w) / sin w * a + sin(t w) / sin w * b, w the angle
    for i, t in ((2, 0.5), (3, 0.25)):
        u, v = a[i] / np.linalg.norm(a[i]), b[i] / np.linalg.norm(b[i])
        w = np.arccos(np.dot(u, v))
        np.testing.assert_allclose(out[i], (np.sin((1 - t) * w) * u + np.sin(t * w) * v) / np.sin(w), atol=1e-6)


def test_calc_metric_swd_result_dict_and_jsonl(dataset, generator, tmp_path):
    G, G_vars = generator
    result = calc_metric("swd", G=G, G_vars=G_vars, dataset=dataset, batch_size=8, progress=False,
                         cache_dir=str(tmp_path / "cache"))
    assert result["metric"] == "swd" and result["num_gpus"] == 4 and result["total_time"] > 0
    assert set(result["results"]) == {"swd_16", "swd"} and result["results"]["swd"] > 0
    append_result(tmp_path / "run", result, str(tmp_path / "run" / "network-snapshot-000001"))
    append_result(tmp_path / "run", result)
    lines = (tmp_path / "run" / "metric-swd.jsonl").read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["snapshot_pkl"] == "network-snapshot-000001" and first["results"] == result["results"]


def test_a_snapshot_saved_again_replaces_its_lines_and_only_its_own_count(tmp_path):
    """A run that saves a snapshot again (after falling back to an earlier checkpoint) drops every line of the
    old network under that name, those against another dataset (calc_metrics --data) too; lines of other
    snapshots and lines that are not JSON stay. Only a line against the run's own dataset makes the metric
    done for `has_result`."""
    from stylegan_jax.metrics import has_result

    run, result = tmp_path / "run", {"results": {"swd": 1.0}, "metric": "swd"}
    snap, other = str(run / "network-snapshot-000002"), str(run / "network-snapshot-000001")
    append_result(run, result, other)
    append_result(run, result, snap, data="/data/elsewhere")
    assert not has_result(run, "swd", snap) and has_result(run, "swd", other)
    with open(run / "metric-swd.jsonl", "a") as f:
        f.write("not json\n")
    append_result(run, dict(result, results={"swd": 2.0}), snap)
    assert has_result(run, "swd", snap)
    append_result(run, dict(result, results={"swd": 3.0}), snap, replace=True)
    lines = (run / "metric-swd.jsonl").read_text().splitlines()
    assert [json.loads(x)["results"]["swd"] if x.startswith("{") else x for x in lines] == [1.0, "not json", 3.0]


def test_metrics_compute_at_full_float32_precision(dataset, generator, monkeypatch):
    seen = []
    monkeypatch.setitem(METRICS, "swd", lambda opts: seen.append(jax.config.jax_default_matmul_precision) or {"x": 0})
    calc_metric("swd", G=generator[0], G_vars=generator[1], dataset=dataset, progress=False)
    assert seen == ["float32"]  # NVIDIA's allow_tf32=False, whatever the backend's default


def test_unknown_metric_and_mismatched_dataset_are_one_line(dataset, generator):
    with pytest.raises(MetricError, match="unknown metric 'fid'; valid: fid50k_full, kid50k_full") as e:
        calc_metric("fid", G=generator[0], G_vars=generator[1], dataset=dataset)
    assert {"fid50k_full", "kid50k_full", "pr50k3_full", "ppl2_wend", "is50k", "swd"} <= set(METRICS)
    assert "\n" not in str(e.value)
    G32 = Generator(**{**G_KWARGS, "img_resolution": 32})
    with pytest.raises(MetricError, match="holds 16x16x1 images but the generator makes 32x32x1"):
        calc_metric("swd", G=G32, G_vars=generator[1], dataset=dataset)
    with pytest.raises(MetricError, match="ppl_wend interpolates in the mapping network's spaces; model 'dcgan'"):
        calc_metric("ppl_wend", G=generator[0], G_vars=generator[1], dataset=dataset, family=get_family("dcgan"))
    G4 = Generator(**{**G_KWARGS, "c_dim": C_DIM + 1})  # checked before any variable is read
    with pytest.raises(MetricError, match=f"the network is conditional \\(c_dim {C_DIM + 1}\\) but dataset .* has "
                                          f"labels of c_dim {C_DIM}: score it against the dataset it was trained on"):
        calc_metric("swd", G=G4, G_vars=generator[1], dataset=dataset)
