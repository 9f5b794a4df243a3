"""One training iteration of a tiny StyleGAN3-R (its blur of D's images on) against a reference written from
NVIDIA's stylegan3 semantics (``training/loss.py`` StyleGAN2Loss, ``training/training_loop.py``,
``training/networks_stylegan3.py``), as ``test_step_reference.py`` checks StyleGAN2's.

The run: ``tiny_stylegan3``'s R (3 layers, radial down filters; filters of 4 taps to compile faster) with
path-length regularisation on (weight 2, every 4 iterations; NVIDIA's StyleGAN3 configs have none, its loss
then runs StyleGAN2Loss's Greg with ``pl_no_weight_grad`` False) so that iteration 4 runs all four phases,
G_main, G_reg, D_main, D_reg. The reference rebuilds them, the networks applied one minibatch at a time under
``jax.enable_x64``, and does everything after the gradients in NumPy float64:

- the blur of every image D sees, reals and fakes, in G_main, D_main and D_reg (R1's gradient taken before
  it): sigma ``max(1 - cur_nimg / (blur_fade_kimg * 1000), 0) * blur_init_sigma`` with ``cur_nimg`` the images
  seen before the iteration (NVIDIA's loop passes the same ``cur_nimg`` to every phase of an iteration); the
  kernel built here in NumPy, ``exp2(-(f / sigma)^2)`` over the integers ``|f| <= floor(3 sigma)`` normalised,
  and applied as NVIDIA's ``filter2d`` (separable, zero padding, same size) as a matrix along each axis;
- path lengths |J^T y| through every path from ws, the styles' included: ``pl_no_weight_grad`` False
  (``no_weight_gradients`` would matter here: StyleGAN3's modulated conv is always fused, so it would drop
  every path from ws[:, 1:], which enter through the conv weights only); ``pl_batch_shrink``; ``pl_mean``;
- G's averages: w_avg (beta ``w_avg_beta``) and each SynthesisLayer's and ToRGB's ``magnitude_ema``, lerped
  only in D_main's G forward (NVIDIA's ``update_emas=True`` there alone) towards the mean square of the
  layer's input with ``magnitude_ema_beta = 0.5 ** (batch_size / 20000)``, the layer then scaling its input
  by rsqrt of the updated value; each minibatch updates the stored values (one GPU each) and the mean of the
  K results is kept (README, "Data-parallel"); G_ema copies them;
- NVIDIA's lazy-regularisation gains (PL x G_reg_interval, R1 x gamma / 2 x D_reg_interval), Adam with lr
  and betas scaled by interval / (interval + 1), G_ema with ramp-up.

What is shared with the code under test: the Flax modules G and D (tested against NVIDIA's own networks in
``tests/models``), applied here with ``update_emas`` off: the reference moves the magnitude EMAs itself,
setting each SynthesisLayer's buffer from a method interceptor before the layer runs; the derivation of the
random inputs (``step_inputs``, which reproduces ``steps.Phases.latents``; the reported losses, equal to the
reference's to 1e-5, show that it does); and from ``test_step_reference``: Adam, the w_avg lerp, the state's
leaves, the float64 context, the comparison and its tolerance (``within``: float32 rounding of the stored
values plus 1% of each leaf's change, for the network passes, float32 inside the modules, in another order).
Measured: the worst ratio to that tolerance is 0.34 (the mapping's weights, where rounding dominates), and
each of ``MISTAKES`` exceeds it 21-fold (Adam's lr) to 10^5-fold (``test_the_reference_sees_a_wrong_constant``).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.models.stylegan3 import SynthesisLayer
from stylegan_jax.training.loop import Trainer
from tests.training.step_inputs import phase_inputs, training_labels
from tests.training.test_step_reference import (
    Reference,
    adam,
    compare,
    ema_beta,
    ema_of,
    flat_state,
    float64,
    lazy_adams,
    lerp_w_avg,
    nest,
    split_state,
    state_after,
    unnest,
)
from tests.training.test_stylegan3_training import tiny_stylegan3

# All four phases at iteration 4; the blur (sigma 2 fading over 56 images of batch 8) at 6/7 there, its radius
# floor(18/7) = 2 (the next iteration's: 4/7, radius 1); R1 gamma 10, so that its weights show in D's Adam moments
# beside D_main's gradients; no style mixing (the reference would have to redraw its crossover).
OVERRIDES = dict(style_mixing_prob=0.0, pl_weight=2.0, G_reg_interval=4, D_reg_interval=2, r1_gamma=10.0,
                 pl_decay=0.01, betas=(0.5, 0.99), ema_kimg=10.0, ema_rampup=0.25, blur_init_sigma=2.0,
                 blur_fade_kimg=0.056)
CHECKED = 4

MISTAKES = {
    "blur sigma not faded (blur_init_sigma throughout)": "blur_not_faded",
    "blur of the reals only": "blur_reals_only",
    "blur of the fakes only": "blur_fakes_only",
    "blur taps exp(-f^2 / (2 sigma^2)), not exp2(-(f / sigma)^2)": "blur_textbook_gaussian",
    "blur radius floor(2 sigma), not floor(3 sigma)": "blur_radius_2_sigma",
    "D_reg's blur at the next iteration's cur_nimg": "blur_next_nimg_in_d_reg",
    "path lengths without the styles' paths (pl_no_weight_grad=True on a fused modconv)": "pl_no_weight_grad",
    "no G_reg_interval gain on PL": "pl_gain",
    "no D_reg_interval gain on R1": "r1_gain",
    "R1 weight gamma, not gamma / 2": "r1_weight",
    "Adam betas not scaled when lazy": "betas",
    "Adam lr not scaled when lazy": "lr",
    "magnitude EMA beta 0.5 ** (batch_gpu / 20000)": "magnitude_beta",
    "magnitude EMAs moved per minibatch in turn (K rounds on one GPU)": "magnitude_in_turn",
    "w_avg moved in G_main and G_reg too (StyleGAN2's)": "w_avg_in_g_phases",
    "G_ema without ramp-up": "ema_rampup",
}


# -- the run under test -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
    """The trainer and (state before, batch, state after, reported losses) of iteration ``CHECKED``, on host."""
    cfg = tiny_stylegan3(data_dir, "stylegan3_r", **OVERRIDES)
    cfg.G.filter_size = 2  # up/down filters of 4 taps (radial 4 x 4), not 12: a third less compilation
    trainer = Trainer(cfg, tmp_path_factory.mktemp("stylegan3_reference"), devices=jax.devices()[:1])
    state = trainer.initial_state()
    for step in range(CHECKED + 1):
        batch = trainer.device_batch(next(trainer.iterator))
        if step == CHECKED:
            before = jax.device_get(state)  # the phases donate their input state
        state, metrics = trainer.run_iteration(state, batch, step)
    trainer.manager.close()
    return trainer, (before, jax.device_get(batch), jax.device_get(state), jax.device_get(metrics))


@pytest.fixture(scope="module")
def reference(run):
    trainer, _ = run
    return StyleGAN3Reference(trainer.G, trainer.D)


# -- the reference --------------------------------------------------------------------------------------
def blur_taps(sigma: float, mistake: str | None = None) -> np.ndarray:
    """NVIDIA's run_D blur kernel: size floor(3 sigma), taps exp2(-(f / sigma)^2) for the integers f in [-size,
    size], normalised to sum 1; one tap (no blur) when the size is 0."""
    size = math.floor(sigma * (2 if mistake == "blur_radius_2_sigma" else 3))
    if size == 0:
        return np.ones(1)
    f = np.arange(-size, size + 1, dtype=np.float64)
    if mistake == "blur_textbook_gaussian":
        kernel = np.exp(-np.square(f / sigma) / 2)
    else:
        kernel = np.exp2(-np.square(f / sigma))
    return kernel / kernel.sum()


def blur_matrix(taps: np.ndarray, n: int) -> np.ndarray:
    """[n, n]: the convolution with ``taps`` (odd length, centred) along an axis of n samples, zero padding,
    output the input's size (``filter2d``'s padding of a (2r + 1)-tap filter: r on each side)."""
    r = taps.shape[0] // 2
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.where(np.abs(i - j) <= r, taps[np.clip(i - j + r, 0, 2 * r)], 0.0)


def blur(images, matrix):
    """NVIDIA's ``filter2d`` of NHWC images with a separable kernel, as its `blur_matrix` along H and W."""
    return jnp.einsum("ij,bjkc,lk->bilc", matrix, images.astype(jnp.float64), matrix)


def magnitude_emas(buffers) -> dict:
    """{layer name: its magnitude_ema} of G's synthesis."""
    return {name: layer["magnitude_ema"] for name, layer in buffers["synthesis"].items() if "magnitude_ema" in layer}


def with_magnitude_emas(buffers, emas: dict):
    synthesis = {name: {**layer, "magnitude_ema": emas[name]} if name in emas else layer
                 for name, layer in buffers["synthesis"].items()}
    return {**buffers, "synthesis": synthesis}


class StyleGAN3Reference(Reference):
    """The phases' losses on float64 parameters, one minibatch after another, D seeing blurred images (the
    blur an input (`blur_matrix`), so that one compilation serves every sigma); each phase jitted once."""

    def __init__(self, G, D):
        self.G, self.D = G, D
        self.g_main = jax.jit(jax.grad(self.g_main_loss, has_aux=True))
        self.g_reg = jax.jit(jax.grad(self.g_reg_loss, has_aux=True))
        self.fakes = jax.jit(self.generate_tracking)
        self.d_main = jax.jit(jax.grad(self.d_main_loss, has_aux=True))
        self.d_reg = jax.jit(jax.grad(self.d_reg_loss, has_aux=True))

    def synthesize(self, gp, gb, ws):
        return self.G.apply({"params": gp, "buffers": gb}, ws, method="synthesize")

    def synthesize_tracking(self, gp, gb, ws, beta):
        """NVIDIA's synthesis with ``update_emas``: before each SynthesisLayer (ToRGB included) runs, its
        magnitude_ema becomes lerp(mean square of its input, magnitude_ema, beta), and the layer uses that.
        (images, {layer: updated magnitude_ema})."""

        def track(next_fun, args, kwargs, context):
            if isinstance(context.module, SynthesisLayer) and context.method_name == "__call__":
                current = jnp.mean(jnp.square(args[0].astype(jnp.float64)))
                stored = context.module.get_variable("buffers", "magnitude_ema")
                context.module.put_variable("buffers", "magnitude_ema", current + beta * (stored - current))
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(track):
            img, updated = self.G.apply({"params": gp, "buffers": gb}, ws, method="synthesize", mutable=["buffers"])
        return img, magnitude_emas(updated["buffers"])

    def g_main_loss(self, gp, gb, dp, z, c, fake_blur):
        """NVIDIA's Gmain: mean softplus(-D(blur(G(z, c)), c)). Aux: each minibatch's mean w, the loss, the
        mean logit."""

        def minibatch(inputs):
            z, c = inputs
            ws = self.G.apply({"params": gp, "buffers": gb}, z, c, method="map")
            return self.logits(dp, blur(self.synthesize(gp, gb, ws), fake_blur), c), jnp.mean(ws[:, 0], axis=0)

        logits, w_means = jax.lax.map(minibatch, (z, c))
        loss = jnp.mean(jnp.logaddexp(0.0, -logits))
        return loss, (w_means, loss, jnp.mean(logits))

    def g_reg_loss(self, gp, gb, pl_mean, z, c, ys, pl_decay, weight, style_paths):
        """NVIDIA's Greg: per minibatch, path lengths sqrt(mean over ws of |d sum(img * y) / dw|^2), with
        ``style_paths`` 0 those through ws[:, 1:] (the styles) dropped as ``no_weight_gradients`` drops them;
        pl_mean lerped towards their mean by ``pl_decay`` (the stored mean a constant); loss
        mean((length - pl_mean)^2) * ``weight``. Aux: the minibatches' mean w, their pl_means, the penalty."""

        def minibatch(inputs):
            z, c, y = inputs
            ws = self.G.apply({"params": gp, "buffers": gb}, z, c, method="map")
            _, vjp = jax.vjp(lambda w: self.synthesize(gp, gb, w).astype(jnp.float64), ws)
            (grads,) = vjp(y)
            paths = jnp.ones(ws.shape[1]).at[1:].set(style_paths)
            grads = grads.astype(jnp.float64) * paths[None, :, None]
            lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))
            mean = pl_mean + (jnp.mean(lengths) - pl_mean) * pl_decay
            return jnp.square(lengths - mean), mean, jnp.mean(ws[:, 0], axis=0)

        penalties, means, w_means = jax.lax.map(minibatch, (z, c, ys))
        penalty = jnp.mean(penalties)
        return penalty * weight, (w_means, means, penalty)

    def generate_tracking(self, gp, gb, z, c, beta, in_turn):
        """D_main's G forward (``update_emas``) on each minibatch: (images [K, B, ...], each minibatch's mean w,
        each minibatch's updated magnitude EMAs {layer: [K]}). Each starts from the stored EMAs (one GPU each);
        ``in_turn`` 1: from the previous minibatch's (K rounds on one GPU)."""

        def minibatch(emas, inputs):
            z, c = inputs
            ws = self.G.apply({"params": gp, "buffers": gb}, z, c, method="map")
            img, updated = self.synthesize_tracking(gp, with_magnitude_emas(gb, emas), ws, beta)
            carried = jax.tree_util.tree_map(lambda new, old: in_turn * new + (1 - in_turn) * old, updated, emas)
            return carried, (img, jnp.mean(ws[:, 0], axis=0), updated)

        _, (img, w_means, updated) = jax.lax.scan(minibatch, magnitude_emas(gb), (z, c))
        return img, w_means, updated

    def d_main_loss(self, dp, fakes, c, reals, labels, fake_blur, real_blur):
        """NVIDIA's Dmain: mean softplus(D(blur(fake))) + mean softplus(-D(blur(real))), one minibatch at a
        time. Aux: the loss, the mean fake and real logits."""
        fake = jax.lax.map(lambda inputs: self.logits(dp, blur(inputs[0], fake_blur), inputs[1]), (fakes, c))
        real = jax.lax.map(lambda inputs: self.logits(dp, blur(inputs[0], real_blur), inputs[1]), (reals, labels))
        loss = jnp.mean(jnp.logaddexp(0.0, fake)) + jnp.mean(jnp.logaddexp(0.0, -real))
        return loss, (loss, jnp.mean(fake), jnp.mean(real))

    def d_reg_loss(self, dp, reals, labels, weight, real_blur):
        """NVIDIA's Dreg: R1 = |d sum(D(blur(x))) / dx|^2 per real image x (the gradient before the blur); loss
        mean(R1) * ``weight``. Aux: the mean R1."""

        def minibatch(inputs):
            x, c = inputs
            grads = jax.grad(lambda x: jnp.sum(self.logits(dp, blur(x, real_blur), c)))(x)
            return jnp.sum(jnp.square(grads.astype(jnp.float64)), axis=(1, 2, 3))

        penalty = jnp.mean(jax.lax.map(minibatch, (reals, labels)))
        return penalty * weight, penalty


def blur_sigma(cfg, nimg: int) -> float:
    """NVIDIA's: ``max(1 - cur_nimg / (blur_fade_kimg * 1e3), 0) * blur_init_sigma``."""
    return max(1 - nimg / (cfg.blur_fade_kimg * 1e3), 0) * cfg.blur_init_sigma


def reference_iteration(trainer, ref: StyleGAN3Reference, before, batch, mistake: str | None = None):
    """(every leaf of the state after one iteration by name, the phases' losses, the blur's sigma), from
    ``before``; ``mistake`` (a value of ``MISTAKES``) gets one thing wrong."""
    cfg, layout = trainer.cfg, trainer.layout
    reals, labels = (np.asarray(x, np.float64) for x in batch)
    s = flat_state(before)
    gp, dp, gb, opt = split_state(s)
    buffers = lambda: jax.tree_util.tree_map(jnp.asarray, gb)  # noqa: E731
    g_adam, d_adam = lazy_adams(cfg, mistake)

    # The blur of this iteration (cur_nimg: the images seen before it, in every phase).
    cur_nimg, n = int(s["step"]) * layout.batch_size, cfg.resolution
    sigma = cfg.blur_init_sigma if mistake == "blur_not_faded" else blur_sigma(cfg, cur_nimg)
    blurred, unblurred = blur_matrix(blur_taps(sigma, mistake), n), np.eye(n)
    fake_blur = unblurred if mistake == "blur_reals_only" else blurred
    real_blur = unblurred if mistake == "blur_fakes_only" else blurred
    reg_blur = blur_matrix(blur_taps(blur_sigma(cfg, cur_nimg + layout.batch_size)), n) if (
        mistake == "blur_next_nimg_in_d_reg") else real_blur

    # Random inputs as the step derives them (outside x64: float32 draws); StyleGAN3 draws no noise.
    f64 = lambda x: np.asarray(x, np.float64)  # noqa: E731
    z_dim, res = trainer.G.z_dim, cfg.resolution
    z0, c0, _ = phase_inputs(before, labels, "G_main", layout.batch_gpu, z_dim, training_labels(trainer))
    pl_batch = layout.batch_gpu // cfg.pl_batch_shrink
    z1, c1, keys1 = phase_inputs(before, labels, "G_reg", pl_batch, z_dim, training_labels(trainer))
    y_keys = [jax.random.split(k)[1] for k in keys1]  # g_reg: (run_G's key, y's key)
    ys = np.stack([f64(jax.random.normal(k, (pl_batch, res, res, cfg.img_channels), jnp.float32)) / np.sqrt(res * res)
                   for k in y_keys])
    z2, c2, _ = phase_inputs(before, labels, "D_main", layout.batch_gpu, z_dim, training_labels(trainer))
    z0, c0, z1, c1, z2, c2 = map(f64, (z0, c0, z1, c1, z2, c2))

    w_avg_beta = cfg.G.w_avg_beta
    magnitude_beta = 0.5 ** ((layout.batch_gpu if mistake == "magnitude_beta" else cfg.batch_size) / (20 * 1e3))
    out = {}
    with float64():
        # G_main at the state's parameters; StyleGAN3's G moves no average here.
        grads, (w_means, out["G_main/loss"], out["G_main/score"]) = ref.g_main(
            nest(gp), buffers(), nest(dp), z0, c0, fake_blur)
        adam(gp, unnest(grads), opt, "g_opt", **g_adam)
        if mistake == "w_avg_in_g_phases":
            gb["mapping"]["w_avg"] = lerp_w_avg(gb["mapping"]["w_avg"], w_means, w_avg_beta)

        # G_reg at G_main's result.
        pl_weight = cfg.pl_weight * (1 if mistake == "pl_gain" else cfg.G_reg_interval)
        grads, (w_means, means, out["G_reg/penalty"]) = ref.g_reg(
            nest(gp), buffers(), s["pl_mean"], z1, c1, ys, cfg.pl_decay, pl_weight,
            0.0 if mistake == "pl_no_weight_grad" else 1.0)
        adam(gp, unnest(grads), opt, "g_opt", **g_adam)
        if mistake == "w_avg_in_g_phases":
            gb["mapping"]["w_avg"] = lerp_w_avg(gb["mapping"]["w_avg"], w_means, w_avg_beta)
        pl_mean = np.mean(np.asarray(means))

        # D_main on fakes of G after both G phases, its forward moving w_avg and the magnitude EMAs.
        fakes, w_means, emas = ref.fakes(nest(gp), buffers(), z2, c2, magnitude_beta,
                                         1.0 if mistake == "magnitude_in_turn" else 0.0)
        gb["mapping"]["w_avg"] = lerp_w_avg(gb["mapping"]["w_avg"], w_means, w_avg_beta)
        for name, values in emas.items():
            values = np.asarray(values, np.float64)
            gb["synthesis"][name]["magnitude_ema"] = values[-1] if mistake == "magnitude_in_turn" else values.mean()
        grads, (out["D_main/loss"], out["D_main/fake"], out["D_main/real"]) = ref.d_main(
            nest(dp), fakes, c2, reals, labels, fake_blur, real_blur)
        adam(dp, unnest(grads), opt, "d_opt", **d_adam)

        # D_reg at D_main's result.
        r1_weight = cfg.r1_gamma * (1 if mistake == "r1_weight" else 0.5)
        r1_weight *= 1 if mistake == "r1_gain" else cfg.D_reg_interval
        grads, out["D_reg/penalty"] = ref.d_reg(nest(dp), reals, labels, r1_weight, reg_blur)
        adam(dp, unnest(grads), opt, "d_opt", **d_adam)

    beta = ema_beta(cfg, layout.batch_size, cur_nimg, rampup=mistake != "ema_rampup")

    after = state_after(s, opt, pl_mean, g_params=gp, d_params=dp, g_ema_params=ema_of(gp, s, beta), g_buffers=gb,
                        g_ema_buffers=gb)  # G_ema copies G's buffers
    return after, {k: float(v) for k, v in out.items()}, sigma


# -- tests -------------------------------------------------------------------------------------------------
def test_iteration_equals_the_float64_reference(run, reference):
    trainer, (before, batch, after, metrics) = run
    assert set(metrics) == {"G_main", "G_reg", "D_main", "D_reg"}
    expected, losses, sigma = reference_iteration(trainer, reference, before, batch)
    assert 0 < sigma < trainer.cfg.blur_init_sigma and math.floor(3 * sigma) > 0  # the blur mid-fade
    # The reported losses equal the reference's: the same z, labels, y and blur.
    reported = {"G_main/loss": metrics["G_main"]["Loss/G/loss"], "G_main/score": metrics["G_main"][
        "Loss/scores/fake"], "G_reg/penalty": metrics["G_reg"]["Loss/pl_penalty"],
        "D_main/loss": metrics["D_main"]["Loss/D/loss"], "D_main/fake": metrics["D_main"]["Loss/scores/fake"],
        "D_main/real": metrics["D_main"]["Loss/scores/real"], "D_reg/penalty": metrics["D_reg"]["Loss/r1_penalty"]}
    for name, value in reported.items():
        np.testing.assert_allclose(float(value), losses[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # G's averages moved (in D_main).
    s = flat_state(before)
    for name in ("mapping/w_avg", *(f"synthesis/{k}/magnitude_ema" for k in magnitude_emas(before.g_buffers))):
        assert np.abs(expected[f"g_buffers/{name}"] - s[f"g_buffers/{name}"]).max() > 1e-6, name
    ratios = compare(after, expected, before)
    worst = sorted(ratios.items(), key=lambda kv: -kv[1])[:5]
    assert max(ratios.values()) <= 1, worst


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_the_reference_sees_a_wrong_constant(run, reference, mistake):
    """The tolerances are tight enough: a reference with one of NVIDIA's semantics wrong misses the step."""
    trainer, (before, batch, after, _) = run
    wrong, _, _ = reference_iteration(trainer, reference, before, batch, MISTAKES[mistake])
    ratios = compare(after, wrong, before)
    assert max(ratios.values()) > 10, sorted(ratios.items(), key=lambda kv: -kv[1])[:5]
