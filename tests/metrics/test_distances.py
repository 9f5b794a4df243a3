"""The metric formulas against float64 NumPy/SciPy references and closed forms."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

from stylegan_jax.metrics import FeatureStats, frechet_distance
from stylegan_jax.metrics.distances import (
    inception_score,
    kernel_distance,
    kth_smallest,
    precision_recall,
    trimmed_path_length,
)
from tests.metrics.reference import fid_ref, kid_ref, pr_ref


def _features(seed, n, d, shift=0.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.3 + shift).astype(np.float32)


def _mean_cov(x, batch=37):
    stats = FeatureStats(capture_mean_cov=True)
    for start in range(0, len(x), batch):
        stats.append(x[start: start + batch])
    return stats.get_mean_cov()


def test_frechet_distance_matches_scipy_float64():
    real, gen = _features(0, 300, 16), _features(1, 250, 16, shift=0.2)
    fid = frechet_distance(*_mean_cov(gen), *_mean_cov(real))
    assert fid == pytest.approx(fid_ref(real.astype(np.float64), gen.astype(np.float64)), rel=1e-6)
    assert fid > 0.1


def test_frechet_distance_of_equal_gaussians_is_zero_and_of_shifted_means_is_the_shift():
    mu, sigma = np.zeros(8), np.diag(np.arange(1.0, 9.0))
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-9)
    assert frechet_distance(mu + 0.5, sigma, mu, sigma) == pytest.approx(8 * 0.25, rel=1e-9)


def test_feature_stats_respects_max_items_and_round_trips(tmp_path):
    x = _features(2, 100, 5)
    stats = FeatureStats(capture_all=True, capture_mean_cov=True, max_items=64)
    for start in range(0, 100, 30):
        stats.append(x[start: start + 30])
    assert stats.is_full() and stats.num_items == 64
    np.testing.assert_array_equal(stats.get_all(), x[:64])
    stats.save(tmp_path / "s.npz")
    loaded = FeatureStats.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(loaded.get_all(), x[:64])
    np.testing.assert_allclose(loaded.get_mean_cov()[1], np.cov(x[:64].astype(np.float64), rowvar=False, bias=True),
                               rtol=1e-9, atol=1e-12)


def test_kid_matches_direct_numpy():
    real, gen = _features(3, 40, 6), _features(4, 30, 6, shift=0.3)
    kid = kernel_distance(real, gen, num_subsets=3, max_subset_size=12, seed=5)
    assert kid == pytest.approx(kid_ref(real, gen, 3, 12, 5), rel=1e-9)


def test_precision_recall_matches_brute_force_knn():
    real, gen = _features(5, 150, 8), _features(6, 120, 8, shift=0.4)
    precision, recall = precision_recall(real, gen, nhood_size=3, row_batch=64)
    assert (precision, recall) == pytest.approx(pr_ref(real, gen, 3), abs=1e-6)  # NVIDIA averages in float32
    assert 0 < precision < 1 and 0 < recall < 1
    assert precision_recall(real, real, nhood_size=3) == (1.0, 1.0)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_kth_smallest_counts_repeated_values_as_torch_kthvalue(k):
    x = np.round(np.random.default_rng(k).standard_normal((50, 30)) * 2).astype(np.float32)  # many ties
    x[0] = 1.0  # a row of one value
    np.testing.assert_array_equal(np.asarray(kth_smallest(jnp.asarray(x), k)), np.partition(x, k - 1, axis=1)[:, k - 1])


def test_inception_score_matches_kl_definition_and_closed_form():
    logits = np.random.default_rng(7).standard_normal((100, 10)) * 3
    probs = scipy.special.softmax(logits, axis=1)
    expected = [np.exp(scipy.special.rel_entr(p, p.mean(0)).sum(1).mean()) for p in np.split(probs, 5)]
    assert inception_score(probs, num_splits=5) == pytest.approx((np.mean(expected), np.std(expected)), rel=1e-9)
    one_hot = np.eye(4)[np.arange(40) % 4] * (1 - 4e-9) + 1e-9
    assert inception_score(one_hot, num_splits=2)[0] == pytest.approx(4, rel=1e-6)


def test_trimmed_path_length_drops_the_outer_percentiles():
    dist = np.random.default_rng(8).permutation(1000).astype(np.float64)
    # lower 1st percentile of 0..999 is 9, higher 99th is 990: the mean of 9..990.
    assert trimmed_path_length(dist) == pytest.approx((9 + 990) / 2)
    # skewed, with outliers: a mean without the trim, or other percentile methods, give other values
    rng = np.random.default_rng(9)
    dist = np.concatenate([rng.exponential(size=990), 1e3 * (1 + rng.random(10))])
    rng.shuffle(dist)
    ordered = np.sort(dist)  # NumPy's 'lower' 1st percentile of 1000 values: index floor(0.01 * 999) = 9;
    expected = ordered[9:991].mean()  # 'higher' 99th: index ceil(0.99 * 999) = 990
    assert trimmed_path_length(dist) == pytest.approx(expected, rel=1e-12)
    assert abs(expected - dist.mean()) > 1 and abs(expected - ordered[10:990].mean()) > 1e-4
