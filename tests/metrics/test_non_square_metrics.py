"""Every metric on a W x H (32x16) generator and dataset: FID, KID, IS and PR equal their formulas on the
detectors applied directly to the same images, PPL (with NVIDIA's face crop in eighths of each side) equals
LPIPS steps written out, SWD names its levels W x H, and calc_metric checks the dataset's W x H against G's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.data.images import encode_png
from stylegan_jax.data.tfds_builder import DatasetSpec, write_dataset
from stylegan_jax.images import to_uint8
from stylegan_jax.metrics import MetricError, calc_metric, distances, features
from stylegan_jax.metrics.detectors import load_inception, load_vgg16
from stylegan_jax.metrics.metric_main import check_metric, compute_fid, compute_is, compute_kid, compute_ppl, compute_pr
from stylegan_jax.metrics.swd import patch_positions, random_directions
from stylegan_jax.models import get_family
from stylegan_jax.models.stylegan2 import Generator
from tests.metrics.reference import swd_ref
from tests.metrics.test_metrics import _direct, _reals, direct_ppl

HEIGHT, WIDTH, N_REAL, N_GEN = 16, 32, 24, 10
G_KWARGS = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=(HEIGHT, WIDTH), img_channels=1,
                mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=128, channel_max=8))


@pytest.fixture(scope="module")
def wide(tmp_path_factory, detectors):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N_REAL, HEIGHT // 4, WIDTH // 4, 1)).repeat(4, 1).repeat(4, 2).astype(np.uint8)
    spec = DatasetSpec(resolution=f"{WIDTH}x{HEIGHT}", channels=1, source="test")
    dataset = write_dataset(tmp_path_factory.mktemp("data") / "wide", spec, [{"image": encode_png(im)}
                                                                              for im in images])
    G = Generator(**G_KWARGS)
    G_vars = G.init(jax.random.key(0), jnp.zeros((1, 8)), jnp.zeros((1, 0)), noise_mode="const")
    opts = features.MetricOptions(G=G, G_vars=G_vars, dataset=dataset, detector_dir=str(detectors[0]),
                                  batch_size=8, progress=False, cache_dir=str(tmp_path_factory.mktemp("cache")))
    return opts


def _fakes(opts, n):
    """The generated images the metrics see: seeds 0..n-1 of ``opts.seed``, unconditional."""
    z, c = features.latents_and_labels(opts.seed, np.arange(n), opts.G.z_dim, features.dataset_labels(opts))
    generate = jax.jit(lambda v, z, c: to_uint8(opts.G.apply(v, z, c, noise_mode="const")))
    return np.asarray(generate(opts.G_vars, z, c))


@pytest.mark.filterwarnings("ignore:Matrix is singular")
def test_fid_kid_is_pr_equal_formulas_on_wide_images(wide, detectors):
    images = np.concatenate([_reals(wide.dataset), _fakes(wide, N_GEN)])
    assert images.shape[1:] == (HEIGHT, WIDTH, 1)
    inception = _direct(load_inception(detectors[0]), ("features", "probabilities"), images)
    vgg = _direct(load_vgg16(detectors[0]), ("features",), images)["features"]
    real, fake = inception["features"][:N_REAL], inception["features"][N_REAL:]
    mean_cov = [(x.mean(0), np.cov(x.astype(np.float64), rowvar=False, bias=True)) for x in (fake, real)]
    assert compute_fid(wide, max_real=None, num_gen=N_GEN) == pytest.approx(
        distances.frechet_distance(*mean_cov[0], *mean_cov[1]), rel=1e-4)
    assert compute_kid(wide, max_real=None, num_gen=N_GEN, num_subsets=3, max_subset_size=8) == pytest.approx(
        distances.kernel_distance(real, fake, 3, 8, wide.seed), rel=1e-4, abs=1e-7)
    assert compute_is(wide, num_gen=N_GEN, num_splits=2) == pytest.approx(
        distances.inception_score(inception["probabilities"][N_REAL:], 2), rel=1e-4)
    assert compute_pr(wide, max_real=None, num_gen=N_GEN, nhood_size=3) == pytest.approx(
        distances.precision_recall(vgg[:N_REAL], vgg[N_REAL:], 3), abs=1e-6)


def test_ppl_on_wide_images_crops_eighths_of_each_side(wide):
    ppl = {crop: compute_ppl(wide, num_samples=4, epsilon=1e-4, space="w", sampling="end", crop=crop)
           for crop in (False, True)}
    for crop, value in ppl.items():
        assert value == pytest.approx(direct_ppl(wide, 4, 1e-4, crop), rel=2e-2)
    assert ppl[True] != pytest.approx(ppl[False], rel=5e-2)


def test_swd_levels_are_named_w_by_h_and_the_dataset_must_fit(wide):
    """One level, 32x16 (W x H): PGGAN's SWD (NumPy float64, tests/metrics/reference.py) of the 24 reals against
    as many generated images, with patch centres drawn over the whole W x H image."""
    result = calc_metric("swd", G=wide.G, G_vars=wide.G_vars, dataset=wide.dataset, batch_size=8, progress=False,
                         cache_dir=wide.cache_dir)
    assert set(result["results"]) == {"swd_32x16", "swd"}
    centres = np.asarray(patch_positions(wide.seed, 0, jnp.arange(N_REAL), (HEIGHT, WIDTH)))
    assert centres[..., 0].min() >= 3 and centres[..., 0].max() < HEIGHT - 3  # rows inside the 16 rows
    assert centres[..., 1].min() >= 3 and centres[..., 1].max() < WIDTH - 3 and centres[..., 1].max() >= HEIGHT
    (expected,) = swd_ref(_reals(wide.dataset), _fakes(wide, N_REAL), [centres], [random_directions(wide.seed, 0, 49)])
    assert result["results"]["swd_32x16"] == pytest.approx(expected, rel=1e-4)
    assert result["results"]["swd"] == result["results"]["swd_32x16"]
    tall = Generator(**dict(G_KWARGS, img_resolution=(WIDTH, HEIGHT)))
    with pytest.raises(MetricError, match="holds 32x16x1 images but the generator makes 16x32x1"):
        calc_metric("swd", G=tall, G_vars=wide.G_vars, dataset=wide.dataset)
    with pytest.raises(MetricError, match="eqt50k_int is defined for square images; the generator makes 32x16"):
        calc_metric("eqt50k_int", G=wide.G, G_vars=wide.G_vars, dataset=wide.dataset, family=get_family("stylegan3"))


def test_swd_refuses_a_short_side_under_16_before_computing():
    with pytest.raises(MetricError, match="swd needs images whose short side is at least 16; the generator makes 16x8"):
        check_metric("swd", get_family("stylegan2"), "16x8")
    check_metric("swd", get_family("stylegan2"), "32x16")  # one level, 32x16
