"""Metrics with x-flips (``mirror``), as NVIDIA's ``--mirror 1``: the reals are the dataset with its x-flipped
copies appended (item i + N is item i flipped left-right), for the legacy FID/KID/PR and for SWD; the
``_full`` metrics never flip. Checked on the 24-image grayscale dataset against its images flipped in NumPy,
with a stand-in detector (4x4 block means, no Inception) and SWD against PGGAN's NumPy transcription."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.data import make_dataset
from stylegan_jax.images import to_uint8
from stylegan_jax.metrics import calc_metric, distances, features, metric_main
from stylegan_jax.metrics.detectors import Detector
from stylegan_jax.metrics.swd import patch_positions, random_directions
from tests.metrics.reference import fid_ref, kid_ref, pr_ref, swd_ref

N = 24  # the dataset fixture's images


def originals(dataset):
    """The dataset's uint8 images [N, 16, 16, 1] in stored order, read without flips."""
    return next(iter(make_dataset(dataset, batch_size=N, shuffle=False, num_epochs=1)))["image"]


def with_flips(images):
    """NVIDIA's xflip dataset: the images, then each of them mirrored left-right (NumPy)."""
    return np.concatenate([images, images[:, :, ::-1]])


def pixels_and_index(params, images, indices):
    """A feature function that returns its input: the item's global index, then its pixels."""
    flat = images.reshape(len(images), -1).astype(jnp.float32)
    return jnp.concatenate([indices[:, None].astype(jnp.float32), flat], axis=1)


def block_means(images):
    """Float64 means of the 4x4 blocks of channel 0 of uint8 [B, 16, 16, C] -> [B, 16]."""
    x = np.asarray(images, np.float64)[..., 0]
    return x.reshape(len(x), 4, 4, 4, 4).mean(axis=(2, 4)).reshape(len(x), 16)


class BlockMeans(nn.Module):
    """A stand-in detector with no weights: ``features`` are `block_means` (of the RGB the metrics feed it)."""

    def features(self, images):
        x = images[..., 0].astype(jnp.float32)
        return x.reshape(len(x), 4, 4, 4, 4).mean(axis=(2, 4)).reshape(len(x), 16)


@pytest.fixture
def opts(dataset, generator, tmp_path):
    G, G_vars = generator
    return features.MetricOptions(G=G, G_vars=G_vars, dataset=dataset, batch_size=8, progress=False,
                                  cache_dir=str(tmp_path / "cache"))


def test_mirrored_reals_are_the_originals_then_their_x_flips(opts, dataset):
    images = originals(dataset)
    assert not np.array_equal(images, images[:, :, ::-1])  # the flips are other images
    expected = with_flips(images).reshape(2 * N, -1).astype(np.float32)
    assert features.dataset_size(opts, mirror=True) == 2 * N and features.dataset_size(opts, mirror=False) == N
    stats = features.dataset_feature_stats(opts, pixels_and_index, None, "pixels", {}, max_items=None, mirror=True,
                                           capture_all=True)
    got = stats.get_all()
    np.testing.assert_array_equal(got[:, 0], np.arange(2 * N))  # item i + N is item i flipped
    np.testing.assert_array_equal(got[:, 1:], expected)
    cut = features.dataset_feature_stats(opts, pixels_and_index, None, "pixels", {}, max_items=30, mirror=True,
                                         capture_all=True)  # NVIDIA's max_items: the first items of the doubled set
    np.testing.assert_array_equal(cut.get_all()[:, 1:], expected[:30])
    plain = features.dataset_feature_stats(opts, pixels_and_index, None, "pixels", {}, max_items=None, mirror=False,
                                           capture_all=True)
    np.testing.assert_array_equal(plain.get_all()[:, 1:], expected[:N])


def fake_block_means(num):
    """Features of ``num`` random blocky images, the stand-in for the generated side."""
    rng = np.random.default_rng(7)
    return block_means(rng.integers(0, 256, (num, 4, 4, 1)).repeat(4, 1).repeat(4, 2))


@pytest.mark.parametrize("metric", ["fid50k", "kid50k", "pr50k3"])
def test_legacy_metrics_with_mirror_score_the_originals_and_their_flips(dataset, generator, tmp_path, monkeypatch,
                                                                       metric):
    """calc_metric(mirror=True) of the legacy metrics (NVIDIA's ``--mirror 1``) equals the NumPy formula on the
    stand-in features of the 48 reals and flips; mirror=False, that on the 24 originals. The generated side
    is fixed features (`fake_block_means`): the generator's features are tested in test_metrics.py."""
    detector = Detector("block-means", BlockMeans(), {}, "block-means-digest")
    monkeypatch.setattr(metric_main, "load_inception", lambda directory=None: detector)
    monkeypatch.setattr(metric_main, "load_vgg16", lambda directory=None: detector)
    fake = fake_block_means(40)
    requested = []

    def generated(opts, fn, params, *, num_items, capture_all=False, capture_mean_cov=False):
        requested.append(num_items)
        stats = distances.FeatureStats(capture_all=capture_all, capture_mean_cov=capture_mean_cov)
        stats.append(fake)
        return stats

    monkeypatch.setattr(metric_main, "generator_feature_stats", generated)
    images = originals(dataset)
    G, G_vars = generator
    results = {}
    for mirror in (True, False):
        result = calc_metric(metric, G=G, G_vars=G_vars, dataset=dataset, mirror=mirror, batch_size=8,
                             progress=False, cache_dir=str(tmp_path / "cache"))
        results[mirror] = [result["results"][k] for k in sorted(result["results"])]
        real = block_means(with_flips(images) if mirror else images)
        if metric == "fid50k":
            expected = [fid_ref(real, fake)]
        elif metric == "kid50k":
            expected = [kid_ref(real, fake, 100, 1000, 0)]
        else:  # sorted names: precision, recall
            expected = list(pr_ref(real, fake, 3))
        assert results[mirror] == pytest.approx(expected, rel=1e-4, abs=1e-8), mirror
    assert requested == [50000, 50000]
    assert results[True] != pytest.approx(results[False], rel=1e-3)  # the flips changed the score


def test_full_metrics_never_flip(dataset, generator, tmp_path, monkeypatch):
    """NVIDIA's fid50k_full reads the reals without x-flips whatever ``mirror`` says."""
    seen = []
    real_stats = metric_main.dataset_feature_stats

    def spy(opts, fn, params, name, key, **kwargs):
        seen.append(kwargs["mirror"])
        return real_stats(opts, fn, params, name, key, **kwargs)

    detector = Detector("block-means", BlockMeans(), {}, "block-means-digest")
    monkeypatch.setattr(metric_main, "load_inception", lambda directory=None: detector)
    monkeypatch.setattr(metric_main, "dataset_feature_stats", spy)
    fake = fake_block_means(40)

    def generated(opts, fn, params, *, num_items, capture_all=False, capture_mean_cov=False):
        stats = distances.FeatureStats(capture_all=capture_all, capture_mean_cov=capture_mean_cov)
        stats.append(fake)
        return stats

    monkeypatch.setattr(metric_main, "generator_feature_stats", generated)
    result = calc_metric("fid50k_full", G=generator[0], G_vars=generator[1], dataset=dataset, mirror=True,
                         batch_size=8, progress=False, cache_dir=str(tmp_path / "cache"))
    assert seen == [False]
    assert result["results"]["fid50k_full"] == pytest.approx(fid_ref(block_means(originals(dataset)), fake),
                                                             rel=1e-4)


def generated_images(opts, num):
    """The metrics' generated images 0..num-1 (z and label from default_rng([seed, i]); G has no noise)."""
    z, c = features.latents_and_labels(opts.seed, np.arange(num), opts.G.z_dim, features.dataset_labels(opts))
    return np.asarray(jax.jit(lambda v, z, c: to_uint8(opts.G.apply(v, z, c, noise_mode="const")))(opts.G_vars, z, c))


def test_swd_with_mirror_compares_the_originals_and_flips_with_as_many_generated_images(opts, dataset):
    """calc_metric("swd", mirror=True): min(16384, 2N) = 48 reals, the originals then their flips, against 48
    generated images, equals PGGAN's SWD (NumPy float64, tests/metrics/reference.py) on exactly those sets."""
    result = calc_metric("swd", G=opts.G, G_vars=opts.G_vars, dataset=dataset, mirror=True, batch_size=8,
                         progress=False, cache_dir=opts.cache_dir)["results"]
    images = originals(dataset)
    fake = generated_images(opts, 2 * N)
    centres = [np.asarray(patch_positions(opts.seed, 0, jnp.arange(2 * N), 16))]
    dirs = [random_directions(opts.seed, 0, 49)]
    (expected,) = swd_ref(with_flips(images), fake, centres, dirs)
    assert set(result) == {"swd_16", "swd"}
    assert result["swd_16"] == pytest.approx(expected, rel=1e-4) and result["swd"] == result["swd_16"]
    (unflipped,) = swd_ref(np.concatenate([images, images]), fake, centres, dirs)  # the originals twice
    assert unflipped != pytest.approx(expected, rel=1e-3)  # the tolerance above tells the flips apart
