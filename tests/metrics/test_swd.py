"""SWD against a NumPy/SciPy transcription of PGGAN's definition, and 0 for identical sets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.metrics.swd import (
    patch_positions,
    random_directions,
    swd_descriptors,
    swd_from_descriptors,
    swd_resolutions,
)
from tests.metrics.reference import swd_ref


def _images(seed, n, channels):
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 256, (n, 8, 8, channels)).repeat(4, 1).repeat(4, 2)
    return np.clip(smooth + rng.integers(-20, 20, smooth.shape), 0, 255).astype(np.uint8)


def _swd(real, fake, seed, batch=4):
    descriptors = jax.jit(swd_descriptors, static_argnums=2)

    def descs(images):
        parts = [descriptors(images[s: s + batch], np.arange(s, min(s + batch, len(images))), seed)
                 for s in range(0, len(images), batch)]
        levels = zip(*parts, strict=True)
        return [np.concatenate([np.asarray(d).reshape(-1, d.shape[-1]) for d in level]) for level in levels]

    return swd_from_descriptors(descs(real), descs(fake), swd_resolutions(real.shape[1]), real.shape[3], seed)


@pytest.mark.parametrize("channels", [3, 1])
def test_swd_matches_pggan_definition(channels):
    real, fake = _images(0, 6, channels), _images(1, 6, channels)
    ours = _swd(real, fake, seed=3)
    resolutions = swd_resolutions(32)
    assert resolutions == [32, 16] and set(ours) == {"swd_32", "swd_16", "swd"}
    centres = [np.asarray(patch_positions(3, level, jnp.arange(6), res)) for level, res in enumerate(resolutions)]
    dirs = [random_directions(3, level, channels * 49) for level in range(2)]
    # PGGAN's constants: 128 patches per image, 4 repeats of 128 directions
    assert [c.shape for c in centres] == [(6, 128, 2)] * 2
    assert [[d.shape for d in level] for level in dirs] == [[(channels * 49, 128)] * 4] * 2
    expected = swd_ref(real, fake, centres, dirs)
    assert [ours["swd_32"], ours["swd_16"]] == pytest.approx(expected, rel=1e-4)
    assert ours["swd"] == pytest.approx(np.mean(expected), rel=1e-4)
    assert min(expected) > 1


def test_swd_of_identical_sets_is_zero():
    real = _images(2, 5, 3)
    assert _swd(real, real.copy(), seed=0) == {"swd_32": 0.0, "swd_16": 0.0, "swd": 0.0}


def test_patch_positions_depend_on_the_image_index_only():
    a = np.asarray(patch_positions(1, 0, jnp.arange(8), 32))
    b = np.asarray(patch_positions(1, 0, jnp.arange(4, 8), 32))
    np.testing.assert_array_equal(a[4:], b)
    assert a.min() >= 3 and a.max() < 29
