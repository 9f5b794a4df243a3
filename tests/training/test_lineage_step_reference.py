"""One training iteration of a tiny PGGAN run, of a tiny StyleGAN1 run (rung F of its ladder) and of tiny
StyleGAN2 runs (rungs A to D of its ladder, ``ablations/stylegan2_{a..d}``, NVIDIA's config-a to config-d:
StyleGAN1's networks with R1 in every D step in StyleGAN2's loop, the same on the revised networks, lazy R1,
path length), each in the middle of a fade-in, against float64 references written from the TensorFlow code
that trained them:
tkarras/progressive_growing_of_gans (``loss.py`` G_wgan_acgan / D_wgangp_acgan, ``train.py``), NVlabs/stylegan
(``training/loss.py`` G_logistic_nonsaturating / D_logistic_simplegp, ``training/training_loop.py``,
``training/networks_stylegan.py`` G_style) and NVlabs/stylegan2 (``training/loss.py`` G_logistic_ns_pathreg /
D_logistic_r1, ``training/training_loop.py``, ``training/networks_stylegan2.py`` G_main, ``run_training.py``
config-d, ``dnnlib/tflib/optimizer.py``).

What the PGGAN and StyleGAN1 references take from the TF code, each constant spelled out in `PGGAN_TF` /
`STYLEGAN1_TF` (rung D's below):

- the loop: each iteration runs D's step together with ``Gs_update_op`` (G_ema follows G *before* this
  iteration's G step), then G's step against the updated D; the schedule (lod, and from it the training
  resolution 2^(log2 full - floor lod) and the fade-in alpha = 1 - (lod - floor lod)) evaluated once every
  ``minibatch_repeats`` = 4 iterations at the images seen then; the reals box-faded between the training
  resolution and the one below (``process_reals``' FadeLOD), then repeated up to full resolution;
- D sees full-resolution images and box-downsamples them to the training resolution itself (``D_paper`` /
  ``D_basic``): the gradient penalties differentiate D with respect to the full-resolution images, whose
  gradient norm is that at the training resolution divided by the upscaling factor;
- PGGAN: G's loss -D(G(z)); D's D(G(z)) - D(x) + lambda / target^2 (|dD/dx^| - target)^2 + epsilon D(x)^2 per
  sample with lambda 10, target 1, epsilon 0.001 and x^ = lerp(x, G(z), u), u ~ U[0, 1) per sample; G_ema
  beta 0.999;
- StyleGAN1: G's softplus(-D(G(z))); D's softplus(D(G(z))) + softplus(-D(x)) + (gamma / 2) |dD(x)/dx|^2 with
  gamma 10 in every D step; G_ema beta 0.5^(minibatch / (10 * 1000)); style mixing 0.9 at a crossover drawn
  from [1, layers in use); ``dlatent_avg`` lerped by beta 0.995 towards the batch's mean w in every training
  forward of G (D's step, then G's);
- Adam as TensorFlow's AdamOptimizer (beta1 0, beta2 0.99, epsilon 1e-8 added to sqrt(v) before the bias
  correction: NVIDIA's ``tfutil.Optimizer``), lr 0.001, on the mean of the per-GPU (per-minibatch) means.

StyleGAN2 rung D (`STYLEGAN2_D_TF`), where it differs from StyleGAN1:

- the loop (NVlabs/stylegan2 ``training_loop.py``, the fast path of one round per GPU): G's step, then G_reg's
  when ``running_mb_counter`` (the iteration's index) is a multiple of ``G_reg_interval`` 4, then D's step
  together with ``Gs_update_op`` (G_ema follows G after both G steps), then D_reg's when it is a multiple of
  ``D_reg_interval``. The tiny run sets ``D_reg_interval`` 2 where config-d's is 16 (`TINY_OVERRIDES`): with
  16, D_reg would run at iterations 0 and 16 only, and the checked iteration 4 is to run all four phases;
  2 also keeps D's lazy ratio (2/3) apart from G's (4/5);
- lazy regularisation: each reg loss times its interval (``G_reg * G_reg_interval``, ``D_reg *
  D_reg_interval``), and one Adam per network shared by the main and the reg step (``share=``: the same
  moments and step count), whose lr is scaled by interval / (interval + 1) and betas raised to that power
  (beta1 0 stays 0; beta2 0.99^(4/5) for G);
- G's loss softplus(-D(G(z))); D's softplus(D(G(z))) + softplus(-D(x)); lazy R1 (``D_logistic_r1``):
  (gamma / 2) |dD(x)/dx|^2, gamma 10, the gradient with respect to the full-resolution reals (as StyleGAN1's);
- path-length regularisation (``G_logistic_ns_pathreg``): on ``batch_gpu // pl_minibatch_shrink`` (2) new z
  per GPU, G's full forward (style mixing and the dlatent_avg update included), lengths |J_w^T y| =
  sqrt(mean over all num_ws layers of the sum over w_dim of (d sum(G(w) * y) / dw)^2), pl_mean = pl_mean_var +
  pl_decay (0.01) * (mean length - pl_mean_var) (the gradient flows through the mean length, not the stored
  value), loss mean((length - pl_mean)^2) * pl_weight (2) * G_reg_interval;
- G_ema beta 0.5^(minibatch / (G_smoothing_kimg 10 * 1000)), no ramp-up; style mixing and dlatent_avg as
  StyleGAN1's (G_main: the crossover from [1, layers in use)), dlatent_avg updated by G's forward in G_main,
  G_reg and D's step (D_reg runs D only); Adam and lr 0.001 (config-a..d below 128x128) as above.

Path length while growing: TF's G outputs full-resolution images, G's image x at the training resolution r
repeated f x f (f = R / r), and draws y_full ~ N(0, 1) of that full shape / sqrt(R * R). Then sum(up(x) *
y_full) = sum over r's pixels p of x_p * s_p / R, where s_p, the sum of y_full's f * f draws over p's block, is
f * n_p with n_p ~ N(0, 1) independent: the same as sum(x * n) / r, which is ours (y = n / sqrt(r * r) at
the training resolution, ``losses.path_lengths``). Equal in distribution, not draw for draw: the reference
takes our n at the training resolution and applies TF's constants to it (its block sums f * n over
sqrt(R * R)).

Known departures of ours kept in the references (README): each minibatch of ``batch_gpu`` images is one of
NVIDIA's GPUs, and ``dlatent_avg`` (and rung D's ``pl_mean``) becomes the mean of the minibatches' updates
(NVIDIA keeps GPU 0's dlatent_avg, and each GPU its own pl_mean). The copy of ``dlatent_avg`` that
``Gs_update_op`` makes races with D's step's update of it (no control dependency between them in NVIDIA's
graph); the reference takes it after the update.

Shared with the code under test: the Flax modules G and D (checked against NVIDIA's TF networks elsewhere:
tests/models), applied under ``jax.enable_x64`` to float64 parameters, and the derivation of the random inputs
(z, noise keys, the mixing factors and crossovers, path length's y: `tests.training.step_inputs`, `draws`).
The gradients and everything after them (Adam, G_ema, dlatent_avg, pl_mean) are NumPy float64; every leaf of
the float32 state after ``Trainer.run_iteration`` must match within
`tests.training.test_step_reference.within`'s tolerance.

The checked iteration of each is iteration 4 (nimg 32, where a group of ``minibatch_repeats`` starts in both
loops; lod 5/3: 8x8 of the 16x16 networks fading in at alpha 1/3, upscaling factor 2), with
the four iterations before it run at the same schedule so that Adam's moments, G_ema, dlatent_avg and pl_mean
hold values (the loop would have been at 4x4 then and reset Adam when the fade-in began:
tests/training/test_growing.py). ``test_the_reference_sees_a_wrong_constant`` checks that each of `MISTAKES`
fails the same tolerance.
"""

import contextlib
import math
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.training.config import load_experiment, shrink_to_tiny
from stylegan_jax.training.loop import Trainer
from stylegan_jax.training.schedule import schedule
from tests.training.step_inputs import phase_inputs, training_labels
from tests.training.test_step_reference import (
    adam,
    compare,
    ema_of,
    flat_state,
    lerp_w_avg,
    nest,
    split_state,
    state_after,
    unnest,
)

CHECKED_STEP = 4
GROWING = dict(initial_resolution=4, training_kimg=0.016, transition_kimg=0.048)  # 4x4 to nimg 16, 8x8 fades to 64

# The TF code's settings (each a default of its train.py / loss.py / training_loop.py / networks, or a flag of
# the configs our experiments name), and the structure of its loop.
TF_LOOP = dict(d_step_first=True, minibatch_repeats=4, penalty_at_full_resolution=True, epsilon_hat=True,
               fade_reversed=False, beta1=0.0, beta2=0.99, epsilon=1e-8, lrate=0.001, d_fakes_real_labels=True)
PGGAN_TF = dict(TF_LOOP, wgan_lambda=10.0, wgan_target=1.0, wgan_epsilon=0.001, G_smoothing=0.999,
                mixing_factor_per_sample=True)
STYLEGAN1_TF = dict(TF_LOOP, r1_gamma=10.0, G_smoothing_kimg=10.0, ema_per_gpu_minibatch=False,
                    dlatent_avg_beta=0.995, style_mixing_prob=0.9, mixing_among_layers_in_use=True)
# NVlabs/stylegan2's loop with config-d's settings (run_training.py; loss.py's defaults; training_loop.py's
# G_smoothing_kimg, minibatch_repeats, G_reg_interval and, changed for the tiny run, D_reg_interval).
STYLEGAN2_D_TF = dict(STYLEGAN1_TF, d_step_first=False, G_reg_interval=4, D_reg_interval=2, lazy_lr=True,
                      lazy_betas=True, r1_gain=True, pl_gain=True, pl_weight=2.0, pl_decay=0.01,
                      pl_minibatch_shrink=2, pl_noise_block_sums=True, dlatent_avg_in_g_reg=True)
# Rung A (config-a): StyleGAN1's networks and R1 in every D step in StyleGAN2's loop (G's step first).
STYLEGAN2_A_TF = dict(STYLEGAN1_TF, d_step_first=False)
# Rung C (config-c): rung D without path length, whose G_reg_op TF's loop then never builds (G's Adam still scaled).
STYLEGAN2_C_TF = dict(STYLEGAN2_D_TF, pl_weight=0.0)
FAMILIES = {"pggan": ("pggan", PGGAN_TF), "stylegan1": ("ablations/stylegan1_f", STYLEGAN1_TF),
            "stylegan2_a": ("ablations/stylegan2_a", STYLEGAN2_A_TF),
            "stylegan2_b": ("ablations/stylegan2_b", STYLEGAN2_A_TF),  # config-b: rung A on the revised networks
            "stylegan2_c": ("ablations/stylegan2_c", STYLEGAN2_C_TF),
            "stylegan2_d": ("ablations/stylegan2_d", STYLEGAN2_D_TF)}
# The tiny runs' departures from their experiment: D_reg every 2 iterations, not config-d's 16, so that the
# checked iteration 4 runs all four phases (`STYLEGAN2_D_TF` models the same loop with that interval); rung D
# conditional on the digits' classes (G's fakes take random training images' labels, D's the reals').
TINY_OVERRIDES = {"stylegan2_c": dict(D_reg_interval=2), "stylegan2_d": dict(D_reg_interval=2, conditional=True)}

# Each a setting an implementation could get wrong: (family, overrides of its TF settings).
MISTAKES = {
    "PGGAN: D's step after G's (stylegan2-ada-pytorch's order)": ("pggan", dict(d_step_first=False)),
    "PGGAN: no epsilon-drift": ("pggan", dict(wgan_epsilon=0.0)),
    "PGGAN: GP lambda 1": ("pggan", dict(wgan_lambda=1.0)),
    "PGGAN: GP target 2": ("pggan", dict(wgan_target=2.0)),
    "PGGAN: GP at the training resolution": ("pggan", dict(penalty_at_full_resolution=False)),
    "PGGAN: one interpolation factor per minibatch": ("pggan", dict(mixing_factor_per_sample=False)),
    "PGGAN: G_ema beta 0.99": ("pggan", dict(G_smoothing=0.99)),
    "PGGAN: Adam beta2 0.999": ("pggan", dict(beta2=0.999)),
    "PGGAN: Adam epsilon 1e-5": ("pggan", dict(epsilon=1e-5)),
    "StyleGAN1: D's step after G's": ("stylegan1", dict(d_step_first=False)),
    "StyleGAN1: R1 gamma halved": ("stylegan1", dict(r1_gamma=5.0)),
    "StyleGAN1: R1 gamma doubled": ("stylegan1", dict(r1_gamma=20.0)),
    "StyleGAN1: R1 at the training resolution": ("stylegan1", dict(penalty_at_full_resolution=False)),
    "StyleGAN1: G_ema half-life in per-GPU images": ("stylegan1", dict(ema_per_gpu_minibatch=True)),
    "StyleGAN1: dlatent_avg beta 0.99": ("stylegan1", dict(dlatent_avg_beta=0.99)),
    "StyleGAN1: fade-in alpha = lod - floor(lod)": ("stylegan1", dict(fade_reversed=True)),
    "StyleGAN1: mixing crossover among all layers": ("stylegan1", dict(mixing_among_layers_in_use=False)),
    "StyleGAN2 A: D's step first (StyleGAN1's loop)": ("stylegan2_a", dict(d_step_first=True)),
    "StyleGAN2 B: R1 at the training resolution": ("stylegan2_b", dict(penalty_at_full_resolution=False)),
    "StyleGAN2 C: Adam lr not scaled when lazy": ("stylegan2_c", dict(lazy_lr=False)),
    "StyleGAN2 D: D's steps first (PGGAN's and StyleGAN1's order)": ("stylegan2_d", dict(d_step_first=True)),
    "StyleGAN2 D: R1 at the training resolution": ("stylegan2_d", dict(penalty_at_full_resolution=False)),
    "StyleGAN2 D: no D_reg_interval gain on R1": ("stylegan2_d", dict(r1_gain=False)),
    "StyleGAN2 D: no G_reg_interval gain on PL": ("stylegan2_d", dict(pl_gain=False)),
    "StyleGAN2 D: PL weight 1": ("stylegan2_d", dict(pl_weight=1.0)),
    "StyleGAN2 D: pl_mean decay 0.1": ("stylegan2_d", dict(pl_decay=0.1)),
    "StyleGAN2 D: PL noise / sqrt(full H * W) at the training resolution": ("stylegan2_d",
                                                                            dict(pl_noise_block_sums=False)),
    "StyleGAN2 D: Adam betas not scaled when lazy": ("stylegan2_d", dict(lazy_betas=False)),
    "StyleGAN2 D: Adam lr not scaled when lazy": ("stylegan2_d", dict(lazy_lr=False)),
    "StyleGAN2 D: dlatent_avg not updated by G_reg's forward": ("stylegan2_d", dict(dlatent_avg_in_g_reg=False)),
    "StyleGAN2 D: G_ema half-life in per-GPU images": ("stylegan2_d", dict(ema_per_gpu_minibatch=True)),
    "StyleGAN2 D: D's fakes with random training images' labels (stylegan2-ada-pytorch's)": (
        "stylegan2_d", dict(d_fakes_real_labels=False)),
}

# Leaves whose gradient is zero in exact arithmetic, so that Adam moves them along float32 roundoff (NVIDIA's
# as ours): StyleGAN1's 4x4 input layer's bias, which instance normalisation removes while the layer's
# pre-activations (the constant, ~1, plus small noise) are all positive and the leaky ReLU linear. The test
# checks that the reference's gradient there is roundoff, and compares the other leaves.
ROUNDOFF = {"stylegan1": ("synthesis/b4_input/bias",), "stylegan2_a": ("synthesis/b4_input/bias",)}


def tiny_config(data_dir, experiment: str):
    """The experiment at CPU size (``tiny``: 16x16 digits, batch 8 in minibatches of 2, narrow networks), growing
    from 4x4 with `GROWING`'s fade-in."""
    c = load_experiment(experiment)
    c.update(tiny=True, data_dir=str(data_dir))
    c = shrink_to_tiny(c)
    c.growing.update(GROWING)
    return c


def train_to_checked_step(family: str, data_dir, workdir):
    """(family, trainer, state before the checked iteration, its batch, the state after), on host; one device."""
    cfg = tiny_config(data_dir, FAMILIES[family][0])
    cfg.update(TINY_OVERRIDES.get(family, {}))
    trainer = Trainer(cfg, workdir, devices=jax.devices()[:1])
    nimg = CHECKED_STEP * cfg.batch_size
    sched = schedule(trainer.cfg, nimg)
    state = trainer.initial_state()
    for step in range(CHECKED_STEP + 1):
        batch = trainer.next_batch(sched)
        before = jax.device_get(state)  # the phases donate their input state
        state, _ = trainer.run_iteration(state, batch, step, nimg)
    trainer.manager.close()
    return family, trainer, before, jax.device_get(batch), jax.device_get(state)


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
    """``runs(family)``: `train_to_checked_step` of ``family``, trained once, when a test first asks for it."""
    done = {}

    def run(family: str):
        if family not in done:
            done[family] = train_to_checked_step(family, data_dir, tmp_path_factory.mktemp(family))
        return done[family]

    return run


# -- the reference --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def x64_with_float32_draws():
    """x64 on, every ``jax.random.normal`` drawn in float32 (as the step draws G's noise) and cast to the dtype
    asked for: under x64 the synthesis asks for float64 noise, other numbers from the same key."""
    normal = jax.random.normal

    def draw(key, shape=(), dtype=None, *args, **kwargs):
        return normal(key, shape, jnp.float32, *args, **kwargs).astype(dtype or jnp.float64)

    with jax.enable_x64(True), mock.patch.object(jax.random, "normal", draw):
        yield


def tf_lod(cfg, cur_nimg: int) -> float:
    """NVIDIA's TrainingSchedule: lod after ``cur_nimg`` images (``cfg``'s tiny growing settings)."""
    g, kimg = cfg.growing, cur_nimg / 1000
    phase_dur = g.training_kimg + g.transition_kimg
    phase_idx = math.floor(kimg / phase_dur)
    phase_kimg = kimg - phase_idx * phase_dur
    lod = math.log2(cfg.resolution) - math.floor(math.log2(g.initial_resolution)) - phase_idx
    lod -= max(phase_kimg - g.training_kimg, 0.0) / g.transition_kimg
    return max(lod, 0.0)


def upscale(x, factor: int):
    """NVIDIA's UpscaleLOD / upscale2d: each pixel repeated factor x factor times ([..., H, W, C])."""
    return jnp.repeat(jnp.repeat(x, factor, axis=-3), factor, axis=-2)


def downscale(x, factor: int):
    """NVIDIA's downscale2d: the mean of each factor x factor block ([N, H, W, C])."""
    n, h, w, c = x.shape
    return jnp.mean(x.reshape(n, h // factor, factor, w // factor, factor, c), axis=(2, 4))


def fade_lod(x: np.ndarray, lod: float) -> np.ndarray:
    """NVIDIA's FadeLOD at the training resolution: lerp(x, x box-downsampled 2x and repeated, lod - floor(lod))."""
    k, b, h, w, c = x.shape
    y = x.reshape(k, b, h // 2, 2, w // 2, 2, c).mean(axis=(3, 5), keepdims=True)
    y = np.broadcast_to(y, (k, b, h // 2, 2, w // 2, 2, c)).reshape(x.shape)
    return x + (y - x) * (lod - math.floor(lod))


class Reference:
    """The TF losses' gradients on float64 parameters, one minibatch (NVIDIA's GPU) at a time; D sees
    full-resolution images (``factor`` times the training resolution) that it box-downsamples."""

    def __init__(self, trainer, resolution: int):
        self.G, self.D, self.resolution = trainer.G, trainer.D, resolution
        self.factor = trainer.cfg.resolution // resolution
        self.style = trainer.family.has_mapping
        self.d_grads = jax.jit(jax.grad(self.d_loss, has_aux=True))
        self.g_grads = jax.jit(jax.grad(self.g_loss, has_aux=True))
        self.pl_grads = jax.jit(jax.grad(self.pl_loss, has_aux=True))
        self.r1_grads = jax.jit(jax.grad(self.r1_loss))

    def d_full(self, dp, x_full, c, alpha):
        """D of full-resolution images: box-downsampled to the training resolution first (D_paper / D_basic /
        D_stylegan)."""
        return self.D.apply({"params": dp}, downscale(x_full, self.factor), c, alpha=alpha)[:, 0].astype(jnp.float64)

    def mixed_ws(self, v, inputs):
        """(ws of ``inputs``' z crossed with the mixing z's at ``inputs``' crossover, the mean of the unmixed
        ws' first w: what dlatent_avg is lerped towards) of one minibatch (NVIDIA's G_style / G_main)."""
        ws = self.G.apply(v, inputs["z"], inputs["c"], method="map")
        mixed = self.G.apply(v, inputs["z2"], inputs["c"], method="map")
        layer = jnp.arange(ws.shape[1])[None, :, None]
        return jnp.where(layer < inputs["cutoff"], ws, mixed), jnp.mean(ws[:, 0], axis=0)

    def synthesize(self, v, ws, noise_key, alpha):
        """The synthesis at the training resolution, noise drawn from ``noise_key``."""
        return self.G.apply(v, ws, "random", resolution=self.resolution, alpha=alpha, rngs={"noise": noise_key},
                            method="synthesize")

    def generate(self, gp, gb, inputs, alpha):
        """(images [B, r, r, C] at the training resolution, mean w of the unmixed ws or None) of one minibatch:
        ``inputs`` z, c, noise key, and for the style-based G the mixing z and crossover."""
        v = {"params": gp, "buffers": gb}
        if not self.style:
            return self.G.apply(v, inputs["z"], inputs["c"], resolution=self.resolution, alpha=alpha), None
        ws, w_mean = self.mixed_ws(v, inputs)
        return self.synthesize(v, ws, inputs["noise"], alpha), w_mean

    def r1(self, dp, real_full, labels, alpha, grad_scale):
        """R1 per sample: |dD(x)/dx|^2 with respect to the full-resolution reals (the gradient times
        ``grad_scale``: 1, or the mistake's upscaling factor)."""
        grads = jax.grad(lambda v: jnp.sum(self.d_full(dp, v, labels, alpha)))(real_full) * grad_scale
        return jnp.sum(jnp.square(grads), axis=(1, 2, 3))

    def d_loss(self, dp, gp, gb, inputs, reals, labels, alpha, w):
        """D's TF loss, the mean over the global batch of each GPU's per-sample losses (``w``: the weights, and
        ``grad_scale`` 1 on the gradients of the penalties; without ``gamma``, R1 is lazy: `r1_loss`). Aux: each
        minibatch's mean w."""

        def minibatch(x):
            fakes, w_mean = self.generate(gp, gb, x, alpha)
            fakes, real_full = upscale(jax.lax.stop_gradient(fakes), self.factor), upscale(x["reals"], self.factor)
            real = self.d_full(dp, real_full, x["labels"], alpha)
            fake = self.d_full(dp, fakes, x["c"], alpha)
            if not self.style:  # D_wgangp_acgan
                mixed = real_full + (fakes - real_full) * x["u"]
                grads = jax.grad(lambda v: jnp.sum(self.d_full(dp, v, x["labels"], alpha)))(mixed) * w["grad_scale"]
                norms = jnp.sqrt(jnp.sum(jnp.square(grads), axis=(1, 2, 3)))
                loss = (fake - real + jnp.square(norms - w["target"]) * (w["lambda"] / w["target"] ** 2)
                        + jnp.square(real) * w["epsilon"])
            else:  # D_logistic_simplegp; D_logistic_r1's loss
                loss = jax.nn.softplus(fake) + jax.nn.softplus(-real)
                if "gamma" in w:
                    loss = loss + self.r1(dp, real_full, x["labels"], alpha, w["grad_scale"]) * (w["gamma"] * 0.5)
            return jnp.mean(loss), w_mean

        losses, w_means = jax.lax.map(minibatch, dict(inputs, reals=reals, labels=labels))
        return jnp.mean(losses), w_means

    def g_loss(self, gp, gb, dp, inputs, alpha):
        """G's TF loss (PGGAN: -D(G(z)); StyleGAN1, StyleGAN2: softplus(-D(G(z)))), mean over the global batch.
        Aux: each minibatch's mean w."""

        def minibatch(x):
            fakes, w_mean = self.generate(gp, gb, x, alpha)
            fake = self.D.apply({"params": dp}, fakes, x["c"], alpha=alpha)[:, 0].astype(jnp.float64)
            return jnp.mean(jax.nn.softplus(-fake) if self.style else -fake), w_mean

        losses, w_means = jax.lax.map(minibatch, inputs)
        return jnp.mean(losses), w_means

    def pl_loss(self, gp, gb, pl_mean, inputs, alpha, w):
        """G_logistic_ns_pathreg's reg times the lazy gain, per GPU: lengths sqrt(mean over ws of |d sum(G(w) *
        y) / dw|^2 summed over w_dim) at G's (mixed) ws, this GPU's pl_mean = stored + pl_decay * (mean length -
        stored) (the stored one a constant), mean((length - pl_mean)^2) * pl_weight; the mean over the GPUs
        times ``w['gain']``. ``inputs``' y: the noise at the training resolution (see the module docstring).
        Aux: each minibatch's pl_mean and mean w."""
        v = {"params": gp, "buffers": gb}

        def minibatch(x):
            ws, w_mean = self.mixed_ws(v, x)
            _, vjp = jax.vjp(lambda ws: self.synthesize(v, ws, x["noise"], alpha).astype(jnp.float64), ws)
            (grads,) = vjp(x["y"])
            lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads.astype(jnp.float64)), axis=2), axis=1))
            mean = pl_mean + (jnp.mean(lengths) - pl_mean) * w["pl_decay"]
            return jnp.mean(jnp.square(lengths - mean)), (mean, w_mean)

        penalties, (means, w_means) = jax.lax.map(minibatch, inputs)
        return jnp.mean(penalties) * w["pl_weight"] * w["gain"], (means, w_means)

    def r1_loss(self, dp, reals, labels, alpha, w):
        """D_logistic_r1's reg times the lazy gain: mean R1 (at the full-resolution reals) * gamma / 2 *
        ``w['gain']``."""

        def minibatch(x):
            real_full = upscale(x["reals"], self.factor)
            return jnp.mean(self.r1(dp, real_full, x["labels"], alpha, w["grad_scale"]))

        penalty = jnp.mean(jax.lax.map(minibatch, dict(reals=reals, labels=labels)))
        return penalty * (w["gamma"] * 0.5) * w["gain"]


def tf_adam(params: dict, grads: dict, opt: dict, prefix: str, s: dict) -> None:
    """TensorFlow's AdamOptimizer in float64, in place: lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps),
    i.e. PyTorch's form (`adam`) with epsilon eps / sqrt(1 - b2^t) (``epsilon_hat``: TF's "epsilon hat")."""
    t = opt[f"{prefix}/count"] + 1
    eps = s["epsilon"] / np.sqrt(1 - s["beta2"] ** t) if s["epsilon_hat"] else s["epsilon"]
    adam(params, grads, opt, prefix, s["lrate"], s["beta1"], s["beta2"], eps)


def draws(trainer, before, labels, phase: str, s: dict, cur_layers: int, resolution: int) -> dict:
    """A phase's random inputs as the step draws them (float32, outside x64), per minibatch: z, c, G's noise key,
    the style-based G's mixing z and crossover (NVIDIA's: from [1, layers in use) with probability
    ``style_mixing_prob``, else none), PGGAN's interpolation factors u [K, B, 1, 1, 1] (D's phase), and in
    G_reg (``batch_gpu // pl_minibatch_shrink`` z per minibatch) the path-length noise y ~ N(0, 1) [K, B,
    resolution, resolution, C]."""
    batch = trainer.layout.batch_gpu // (s["pl_minibatch_shrink"] if phase == "G_reg" else 1)
    z, c, keys = phase_inputs(before, labels, phase, batch, trainer.G.z_dim, training_labels(trainer))
    out = dict(z=z, c=c, noise=[], z2=[], cutoff=[], u=[], y=[])
    num_ws = trainer.G.num_ws if trainer.family.has_mapping else 0
    for key in keys:
        if phase == "G_reg":  # steps.Phases.g_reg: run_G's key and y's; the differentiated synthesis's noise
            key, k_y = jax.random.split(key)
            out["y"].append(np.asarray(jax.random.normal(k_y, (batch, resolution, resolution,
                                                               trainer.cfg.img_channels), jnp.float32)))
        k_cut, k_prob, k_z, k_noise = jax.random.split(key, 4)  # steps.Phases.run_G
        out["noise"].append(jax.random.fold_in(key, 1) if phase == "G_reg" else k_noise)
        if num_ws:
            layers = cur_layers if s["mixing_among_layers_in_use"] else num_ws
            cutoff = int(jax.random.randint(k_cut, (), 1, layers))
            out["cutoff"].append(cutoff if float(jax.random.uniform(k_prob)) < s["style_mixing_prob"] else layers)
            out["z2"].append(np.asarray(jax.random.normal(k_z, (batch, trainer.G.z_dim))))
        u = np.asarray(jax.random.uniform(jax.random.fold_in(key, 1), (batch, 1, 1, 1), jnp.float32))
        out["u"].append(u if s.get("mixing_factor_per_sample", True) else np.broadcast_to(u[:1], u.shape))
    out = {k: np.asarray(v) if k != "noise" else jnp.stack(v) for k, v in out.items() if len(v)}
    return {k: (np.asarray(v, np.float64) if k in ("z", "c", "z2", "u", "y") else v) for k, v in out.items()}


def lazy_adam(s: dict, interval: int) -> dict:
    """TF's Adam settings of a lazily regularised network (training_loop.py): lr times interval / (interval + 1),
    betas to that power (each unless the mistake says not)."""
    ratio = interval / (interval + 1)
    return dict(s, lrate=s["lrate"] * (ratio if s["lazy_lr"] else 1.0),
                beta1=s["beta1"] ** (ratio if s["lazy_betas"] else 1.0),
                beta2=s["beta2"] ** (ratio if s["lazy_betas"] else 1.0))


def reference_iteration(family: str, trainer, ref_cache: dict, before, batch, overrides: dict | None = None):
    """Every leaf of the state after the TF loop's iteration from ``before`` by name; ``overrides`` get some
    of the family's TF settings wrong."""
    cfg, layout = trainer.cfg, trainer.layout
    s = {**FAMILIES[family][1], **(overrides or {})}
    step = int(before.step)  # NVIDIA's running_mb_counter
    cur_nimg = step // s["minibatch_repeats"] * s["minibatch_repeats"] * layout.batch_size
    lod = tf_lod(cfg, cur_nimg)
    resolution = cfg.resolution // 2 ** math.floor(lod)
    alpha = (lod - math.floor(lod)) if s["fade_reversed"] else 1 - (lod - math.floor(lod))
    if resolution not in ref_cache:
        ref_cache[resolution] = Reference(trainer, resolution)
    ref = ref_cache[resolution]
    reals, labels = (np.asarray(x, np.float64) for x in batch)
    reals = fade_lod(reals, lod)

    state = flat_state(before)
    gp, dp, gb, opt = split_state(state)
    cur_layers = trainer.G.num_ws - 2 * math.floor(lod) if ref.style else 0
    d_inputs = draws(trainer, before, labels, "D_main", s, cur_layers, resolution)
    g_inputs = draws(trainer, before, labels, "G_main", s, cur_layers, resolution)
    if s["d_fakes_real_labels"]:  # D_wgangp_acgan, D_logistic_simplegp, D_logistic_r1: G(latents, reals' labels)
        d_inputs["c"] = labels
    g_inputs.pop("u", None)
    weights = (dict(gamma=s["r1_gamma"]) if ref.style else
               dict(**{"lambda": s["wgan_lambda"]}, target=s["wgan_target"], epsilon=s["wgan_epsilon"]))
    # the mistake: the gradient at the training resolution, `factor` times the full resolution's
    weights["grad_scale"] = 1.0 if s["penalty_at_full_resolution"] else float(ref.factor)
    beta_w = s.get("dlatent_avg_beta")
    lazy = "G_reg_interval" in s  # StyleGAN2's lazy regularisation: Adam scaled, R1 and PL in their own steps
    g_adam, d_adam = (lazy_adam(s, s["G_reg_interval"]), lazy_adam(s, s["D_reg_interval"])) if lazy else (s, s)
    run_g_reg = lazy and s["pl_weight"] != 0 and step % s["G_reg_interval"] == 0
    run_d_reg = lazy and step % s["D_reg_interval"] == 0
    pl_mean = state["pl_mean"]
    if run_g_reg:
        pl_inputs = draws(trainer, before, labels, "G_reg", s, cur_layers, resolution)
        pl_inputs.pop("u")
        # TF's y_full / sqrt(R * R) summed over each f x f block: f n / sqrt(R * R) (the mistake: n / sqrt(R * R))
        block_sums = ref.factor if s["pl_noise_block_sums"] else 1.0
        pl_inputs["y"] = pl_inputs["y"] * block_sums / math.sqrt(cfg.resolution * cfg.resolution)
        pl_weights = dict(pl_weight=s["pl_weight"], pl_decay=s["pl_decay"],
                          gain=float(s["G_reg_interval"]) if s["pl_gain"] else 1.0)
    if lazy:
        r1_weights = dict(gamma=weights.pop("gamma"), grad_scale=weights["grad_scale"],
                          gain=float(s["D_reg_interval"]) if s["r1_gain"] else 1.0)

    def d_step():
        grads, w_means = ref.d_grads(nest(dp), nest(gp), gb, d_inputs, reals, labels, alpha, weights)
        tf_adam(dp, unnest(grads), opt, "d_opt", d_adam)
        if ref.style:
            gb["mapping"]["w_avg"] = lerp_w_avg(gb["mapping"]["w_avg"], w_means, beta_w)
        if run_d_reg:  # D_reg_op: D only
            tf_adam(dp, unnest(ref.r1_grads(nest(dp), reals, labels, alpha, r1_weights)), opt, "d_opt", d_adam)

    def g_step():
        nonlocal pl_mean
        grads, w_means = ref.g_grads(nest(gp), gb, nest(dp), g_inputs, alpha)
        tf_adam(gp, unnest(grads), opt, "g_opt", g_adam)
        if ref.style:
            gb["mapping"]["w_avg"] = lerp_w_avg(gb["mapping"]["w_avg"], w_means, beta_w)
        if run_g_reg:  # G_reg_op
            grads, (means, w_means) = ref.pl_grads(nest(gp), gb, state["pl_mean"], pl_inputs, alpha, pl_weights)
            tf_adam(gp, unnest(grads), opt, "g_opt", g_adam)
            pl_mean = np.mean(np.asarray(means))  # each GPU's pl_mean_var: the minibatches' mean (README)
            if s["dlatent_avg_in_g_reg"]:
                gb["mapping"]["w_avg"] = lerp_w_avg(gb["mapping"]["w_avg"], w_means, beta_w)

    if ref.style:
        minibatch = layout.batch_gpu if s["ema_per_gpu_minibatch"] else layout.batch_size
        beta = 0.5 ** (minibatch / (s["G_smoothing_kimg"] * 1000.0))
    else:
        beta = s["G_smoothing"]

    with x64_with_float32_draws():
        if s["d_step_first"]:  # D's step with Gs_update_op, then G's
            d_step()
            ema, ema_buffers = ema_of(gp, state, beta), unnest(gb)  # a copy: G's step moves dlatent_avg
            g_step()
        else:  # G's step(s), then D's with Gs_update_op (G_ema after G's steps)
            g_step()
            d_step()
            ema, ema_buffers = ema_of(gp, state, beta), unnest(gb)

    return state_after(state, opt, pl_mean, g_params=gp, d_params=dp, g_ema_params=ema, g_buffers=gb,
                       g_ema_buffers=ema_buffers)


@pytest.fixture(scope="module")
def references():
    """{family: {training resolution: Reference}}: each family's jitted references, compiled once."""
    return {}


def checked(ratios: dict, family: str) -> dict:
    """The leaves' ratios without `ROUNDOFF`'s."""
    return {k: v for k, v in ratios.items() if not any(k.endswith(leaf) for leaf in ROUNDOFF.get(family, ()))}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_iteration_equals_the_tf_reference(runs, references, family):
    _, trainer, before, batch, after = runs(family)
    expected = reference_iteration(family, trainer, references.setdefault(family, {}), before, batch)
    for leaf in ROUNDOFF.get(family, ()):  # its gradient is float32 roundoff: orders of magnitude below the const's
        gradient, const = (np.abs(expected[f"g_opt/mu/{name}"]).max() for name in (leaf, "synthesis/b4_const"))
        assert gradient < 1e-5 * const, (leaf, gradient, const)
    ratios = checked(compare(after, expected, before), family)
    worst = sorted(ratios.items(), key=lambda kv: -kv[1])[:5]
    assert max(ratios.values()) <= 1, worst


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_the_reference_sees_a_wrong_constant(runs, references, mistake):
    """The tolerance is tight enough: a reference with one of the TF code's settings wrong misses the step."""
    family = MISTAKES[mistake][0]
    _, trainer, before, batch, after = runs(family)
    wrong = reference_iteration(family, trainer, references.setdefault(family, {}), before, batch,
                                MISTAKES[mistake][1])
    ratios = checked(compare(after, wrong, before), family)
    assert max(ratios.values()) > 10, sorted(ratios.items(), key=lambda kv: -kv[1])[:5]
