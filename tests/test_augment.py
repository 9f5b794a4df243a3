"""ADA's AugmentPipe against NVIDIA's (golden outputs from tests/fixtures/make_augment_fixtures.py), its
selection rates, identity at p = 0, gradients of first and second order, and compilation."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax import augment
from stylegan_jax.augment import AUGPIPE_PRESETS, AugmentPipe, KeyDraws, make_augment_pipe
from stylegan_jax.ops.upfirdn2d import upfirdn2d

GOLDEN = np.load(Path(__file__).parent / "fixtures" / "augment_golden.npz")
CASES: dict[str, list[dict]] = defaultdict(list)
for _entry in json.loads(GOLDEN["index"].tobytes().decode()):
    CASES[_entry["case"]].append(_entry)


class Replay:
    """``Draws`` that return the numbers NVIDIA drew (recorded by the fixture script), in order; draws of image
    shape [N, H, W, C] were NCHW in torch."""

    def __init__(self, key: str):
        self.values, self.sizes, self.kinds = (GOLDEN[f"{key}/{name}"] for name in ("draws", "sizes", "kinds"))
        self.count = self.offset = 0

    def _take(self, kind: int, shape: tuple[int, ...]) -> jax.Array:
        assert self.kinds[self.count] == kind and self.sizes[self.count] == math.prod(shape), (self.count, shape)
        values = self.values[self.offset : self.offset + math.prod(shape)]
        self.offset += values.size
        self.count += 1
        if len(shape) == 4:
            n, h, w, c = shape
            return jnp.asarray(values.reshape(n, c, h, w).transpose(0, 2, 3, 1))
        return jnp.asarray(values.reshape(shape))

    def uniform(self, shape: tuple[int, ...]) -> jax.Array:
        return self._take(0, shape)

    def normal(self, shape: tuple[int, ...]) -> jax.Array:
        return self._take(1, shape)

    def exhausted(self) -> bool:
        return self.count == len(self.sizes)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_nvidia(case):
    """Each transform alone and the bgc preset in debug mode (``debug/*``; RGB, grayscale, non-square), and
    presets in random mode with NVIDIA's draws replayed (``random/*``): equal to NVIDIA's output."""
    worst = 0.0
    for entry in CASES[case]:
        pipe = AugmentPipe(**entry["kwargs"])
        images = jnp.asarray(GOLDEN[entry["image"]])
        p, pct = entry["p"], entry["debug_percentile"]
        if entry.get("replay"):  # noise (and random mode): NVIDIA's noise pattern, NVIDIA's draws
            draws = Replay(entry["key"])
            out = jax.jit(pipe.apply)(images, pipe.sample_params(draws, images.shape, p, pct))
            assert draws.exhausted()
        else:
            out = jax.jit(pipe.__call__)(images, jax.random.key(0), p, pct)
        assert out.shape == images.shape and out.dtype == jnp.float32
        worst = max(worst, float(np.max(np.abs(np.asarray(out) - GOLDEN[entry["key"] + "/out"]))))
    assert worst < 1e-4, f"{case}: max |difference| {worst:.2e}"


def test_data_dependent_padding_matters():
    """Without NVIDIA's data-dependent zero border (the static padding alone), strong shrinking differs from
    NVIDIA's output: the zoom cases of the parity test check the border, not only the interior."""
    entry = next(e for e in CASES["debug/zoom"] if e["image"] == "image/1x24x32x3" and e["debug_percentile"] == 0.03)
    pipe = AugmentPipe(**entry["kwargs"])
    images = jnp.asarray(GOLDEN[entry["image"]])
    params = pipe.sample_params(KeyDraws(jax.random.key(0)), images.shape, 1.0, entry["debug_percentile"])
    G = pipe.geometric_matrix(params, 24, 32)
    border = augment._geometric_margin(G, 24, 32)
    assert border[0].tolist() == border[1].tolist() == [30, 23]  # x below its clamp (31), y at its clamp (23)
    out = augment._warp(images, G, (31, 23))
    no_border = augment._geometric_margin
    try:
        augment._geometric_margin = lambda G, h, w: (jnp.array([w - 1, h - 1]),) * 2
        unmasked = augment._warp(images, G, (31, 23))
    finally:
        augment._geometric_margin = no_border
    golden = GOLDEN[entry["key"] + "/out"]
    assert np.max(np.abs(np.asarray(out) - golden)) < 1e-4
    assert np.max(np.abs(np.asarray(unmasked) - golden)) > 1e-3


@pytest.mark.parametrize("preset", list(AUGPIPE_PRESETS))
def test_p0_leaves_images_unchanged(preset):
    images = jax.random.uniform(jax.random.key(1), (3, 24, 32, 3), minval=-1, maxval=1)
    out = jax.jit(AugmentPipe.preset(preset).__call__)(images, jax.random.key(2), 0.0)
    np.testing.assert_allclose(np.asarray(out), np.asarray(images), rtol=0, atol=1e-5)


def test_p0_grayscale_unchanged():
    images = jax.random.uniform(jax.random.key(1), (2, 32, 24, 1), minval=-1, maxval=1)
    out = jax.jit(AugmentPipe.preset("bgcfnc").__call__)(images, jax.random.key(2), 0.0)
    np.testing.assert_allclose(np.asarray(out), np.asarray(images), rtol=0, atol=1e-5)


def test_selection_rates():
    """Each transform is drawn at NVIDIA's rate multiplier * p (x-flip and luma flip flip half of those, rotate90
    turns three quarters, the two arbitrary rotations 1 - sqrt(1 - rotate * p) each); imgfilter per band."""
    mult = dict(xflip=1, rotate90=0.5, xint=1, scale=1.5, rotate=1, aniso=1, xfrac=0.5, brightness=1, contrast=1,
                lumaflip=1.5, hue=1, saturation=0.5, imgfilter=1, noise=1, cutout=1.2)
    pipe = AugmentPipe(**mult, imgfilter_bands=(1, 0.5, 0, 1.5))
    n, p = 40000, 0.6
    params = jax.jit(lambda key: pipe.sample_params(KeyDraws(key), (n, 2, 2, 3), p))(jax.random.key(3))
    params = {k: np.asarray(v) for k, v in params.items()}
    p_rot = 1 - math.sqrt(1 - p)
    observed_expected = {
        "xflip": ((params["xflip"] == 1).mean(), 0.5 * p),
        "rotate90": ((params["rotate90"] != 0).mean(), 0.75 * 0.5 * p),
        "xint": ((params["xint"] != 0).any(axis=1).mean(), p),
        "scale": ((params["scale"] != 1).mean(), 1.5 * p),
        "rotate_pre": ((params["rotate_pre"] != 0).mean(), p_rot),
        "rotate_post": ((params["rotate_post"] != 0).mean(), p_rot),
        "rotate_any": (((params["rotate_pre"] != 0) | (params["rotate_post"] != 0)).mean(), p),
        "aniso": ((params["aniso"] != 1).mean(), p),
        "xfrac": ((params["xfrac"] != 0).any(axis=1).mean(), 0.5 * p),
        "brightness": ((params["brightness"] != 0).mean(), p),
        "contrast": ((params["contrast"] != 1).mean(), p),
        "lumaflip": ((params["lumaflip"] == 1).mean(), 0.5 * 1.5 * p),
        "hue": ((params["hue"] != 0).mean(), p),
        "saturation": ((params["saturation"] != 1).mean(), 0.5 * p),
        "noise": ((params["noise_sigma"] != 0).mean(), p),
        "cutout": ((params["cutout_size"] != 0).mean(), 1.2 * p),
    }
    for band, strength in enumerate((1, 0.5, 0, 1.5)):
        observed_expected[f"imgfilter{band}"] = ((params["imgfilter"][:, band] != 1).mean(), min(p * strength, 1))
    for name, (observed, expected) in observed_expected.items():
        sigma = math.sqrt(max(expected * (1 - expected), 1e-12) / n)
        assert abs(observed - expected) <= 5 * sigma + 1e-9, f"{name}: rate {observed:.4f}, expected {expected:.4f}"
    # Values of the selected draws follow NVIDIA's distributions.
    assert set(np.unique(params["rotate90"])) == {0, 1, 2, 3}
    assert np.abs(params["xint"]).max() <= pipe.xint_max
    selected = params["scale"] != 1
    assert abs(np.log2(params["scale"][selected]).std() - pipe.scale_std) < 0.01
    assert abs(np.abs(params["rotate_pre"][params["rotate_pre"] != 0]).mean() - np.pi / 2) < 0.05
    assert abs(params["noise_sigma"][params["noise_sigma"] != 0].mean() - pipe.noise_std * math.sqrt(2 / np.pi)) < 2e-3


def test_changing_p_does_not_recompile():
    pipe = AugmentPipe.preset("bgc")
    step = jax.jit(lambda x, key, p: pipe(x, key, p))
    images = jax.random.uniform(jax.random.key(0), (2, 8, 8, 3), minval=-1, maxval=1)
    outs = [step(images, jax.random.key(1), jnp.float32(p)) for p in (0.0, 0.3, 1.0)]
    assert step._cache_size() == 1
    np.testing.assert_allclose(np.asarray(outs[0]), np.asarray(images), atol=1e-5)
    assert np.max(np.abs(np.asarray(outs[2]) - np.asarray(images))) > 0.1


@pytest.mark.parametrize("spec", [(2, 1, (6, 5, 6, 5), False, 4.0), (1, 2, (-1, -1, -1, -1), True, 1.0)])
def test_resampling_gradient_is_the_adjoint(spec):
    """The warp's up/downsampling has a hand-written VJP (the adjoint resampling): equal to JAX's own, and
    differentiable again."""
    up, down, padding, flip, gain = spec
    x = jax.random.normal(jax.random.key(8), (2, 9, 13, 3) if up == 2 else (2, 18, 26, 3))

    def reference(v):
        return upfirdn2d(v, augment._HZ_GEOM, up=up, down=down, padding=padding, flip_filter=flip, gain=gain)

    y, vjp = jax.vjp(lambda v: augment._resample(v, spec), x)
    y_ref, vjp_ref = jax.vjp(reference, x)
    probe = jax.random.normal(jax.random.key(9), y.shape)
    np.testing.assert_allclose(np.asarray(y), np.asarray(y_ref), atol=1e-6)
    np.testing.assert_allclose(np.asarray(vjp(probe)[0]), np.asarray(vjp_ref(probe)[0]), atol=1e-5)

    def second(f):
        return jax.grad(lambda v: jnp.sum(jax.grad(lambda u: jnp.sum(jnp.sin(f(u))))(v) ** 2))(x)

    np.testing.assert_allclose(np.asarray(second(lambda v: augment._resample(v, spec))), np.asarray(second(reference)),
                               rtol=1e-4, atol=1e-4)


def _discriminator(y: jax.Array) -> jax.Array:
    """A smooth stand-in for D: one logit per image."""
    w = jax.random.normal(jax.random.key(7), y.shape[1:])
    return jnp.sum(jnp.tanh(y * w), axis=(1, 2, 3)) + jnp.sum(y**2, axis=(1, 2, 3)) * 0.01


def _check_gradient(f, x: jax.Array) -> None:
    """jax.grad(f) at x is finite and equals central finite differences (Richardson-extrapolated) along a random
    direction, to 1e-4 of |grad| |direction| (the size of the directional derivative, whatever its sign)."""
    f = jax.jit(f)
    grad = jax.jit(jax.grad(f))(x)
    assert np.all(np.isfinite(np.asarray(grad)))

    def central(v, eps):
        return (f(x + eps * v) - f(x - eps * v)) / (2 * eps)

    v = jax.random.normal(jax.random.key(10), x.shape)
    numeric = float(4 * central(v, 5e-3) - central(v, 1e-2)) / 3
    analytic = float(jnp.sum(grad * v))
    assert abs(analytic - numeric) < 1e-4 * float(jnp.linalg.norm(grad) * jnp.linalg.norm(v)), (analytic, numeric)


PIPE_FOR_GRADIENTS = AugmentPipe.preset("bgcfnc")
X_FOR_GRADIENTS = jax.random.uniform(jax.random.key(5), (1, 24, 24, 3), minval=-1, maxval=1)


def _logits(x: jax.Array) -> jax.Array:
    """sum(D(pipe(x))) with a fixed draw (all transforms, p = 1)."""
    return jnp.sum(_discriminator(PIPE_FOR_GRADIENTS(x, jax.random.key(4), 1.0)))


def test_gradient_matches_finite_differences():
    """The gradient w.r.t. the un-augmented images through the pipe (what R1 needs)."""
    _check_gradient(_logits, X_FOR_GRADIENTS)


def test_gradient_of_gradient():
    """The R1 penalty |grad_x sum(D(pipe(x)))|^2 has a finite gradient, equal to finite differences."""
    _check_gradient(lambda x: jnp.sum(jax.grad(_logits)(x) ** 2), X_FOR_GRADIENTS)


def test_presets_and_constructor():
    assert set(AUGPIPE_PRESETS) == {"blit", "geom", "color", "filter", "noise", "cutout", "bg", "bgc", "bgcf",
                                    "bgcfn", "bgcfnc"}
    pipe = make_augment_pipe("bgc")
    assert pipe == AugmentPipe.preset("bgc") and pipe.hue == 1 and pipe.imgfilter == 0 and pipe.hue_max == 1
    assert make_augment_pipe({"xflip": 1, "imgfilter_bands": [1, 0, 0, 1]}).imgfilter_bands == (1, 0, 0, 1)
    assert hash(AugmentPipe.preset("bgcfnc", noise_std=0.2)) is not None
    with pytest.raises(ValueError, match="unknown augmentation preset"):
        AugmentPipe.preset("bgcx")
    with pytest.raises(ValueError, match="imgfilter_bands"):
        AugmentPipe(imgfilter_bands=(1, 1))


def test_bad_inputs():
    with pytest.raises(ValueError, match="RGB"):
        AugmentPipe(brightness=1)(jnp.zeros((1, 8, 8, 2)), jax.random.key(0), 1.0)
    with pytest.raises(ValueError, match="reflect-pads"):
        AugmentPipe(imgfilter=1)(jnp.zeros((1, 16, 32, 3)), jax.random.key(0), 1.0)
    with pytest.raises(ValueError, match="NHWC"):
        AugmentPipe(xflip=1)(jnp.zeros((8, 8, 3)), jax.random.key(0), 1.0)


@pytest.mark.parametrize("config", [dict(xflip=1), dict(rotate90=1, xint=1), dict(rotate=1, xint=1, xflip=1)])
def test_static_margin_bounds_nvidia_margin(config):
    """With only bounded transforms enabled the static padding is smaller than W-1 / H-1 and still covers
    NVIDIA's data-dependent margin for every draw."""
    pipe = AugmentPipe(**config)
    for h, w in ((64, 64), (32, 80)):
        params = pipe.sample_params(KeyDraws(jax.random.key(6)), (4000, h, w, 3), 1.0)
        m0, m1 = augment._geometric_margin(pipe.geometric_matrix(params, h, w), h, w)
        bound = pipe._static_margin(h, w)
        assert bound[0] <= w - 1 and bound[1] <= h - 1 and (h != w or bound[0] < w - 1)
        assert max(int(m0[0]), int(m1[0])) <= bound[0] and max(int(m0[1]), int(m1[1])) <= bound[1]
