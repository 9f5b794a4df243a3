"""One training iteration of a tiny PGGAN run and of a tiny StyleGAN1 run (rung F of the ladder), each in the
middle of a fade-in, against float64 references written from the TensorFlow code that trained them:
tkarras/progressive_growing_of_gans (``loss.py`` G_wgan_acgan / D_wgangp_acgan, ``train.py``) and NVlabs/stylegan
(``training/loss.py`` G_logistic_nonsaturating / D_logistic_simplegp, ``training/training_loop.py``,
``training/networks_stylegan.py`` G_style).

What the references take from the TF code, each constant spelled out in `PGGAN_TF` / `STYLEGAN1_TF`:

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

Known departures of ours kept in the references (README): each minibatch of ``batch_gpu`` images is one of
NVIDIA's GPUs, and ``dlatent_avg`` becomes the mean of the minibatches' updates (NVIDIA keeps GPU 0's). The
copy of ``dlatent_avg`` that ``Gs_update_op`` makes races with D's step's update of it (no control dependency
between them in NVIDIA's graph); the reference takes it after the update.

Shared with the code under test: the Flax modules G and D (checked against NVIDIA's TF networks elsewhere:
tests/models), applied under ``jax.enable_x64`` to float64 parameters, and the derivation of the random inputs
(z, noise keys, the mixing factors and crossovers, `tests.training.step_inputs`). The gradients and
everything after them (Adam, G_ema, dlatent_avg) are NumPy float64; every leaf of the float32 state after
``Trainer.run_iteration`` must match within `tests.training.test_step_reference.within`'s tolerance.

The checked iteration is iteration 4 (nimg 32, a multiple of ``minibatch_repeats``, so that NVIDIA's and our
schedule agree; lod 5/3: 8x8 of the 16x16 networks fading in at alpha 1/3, upscaling factor 2), with the four
iterations before it run at the same schedule so that Adam's moments, G_ema and dlatent_avg hold values (the
loop would have been at 4x4 then and reset Adam when the fade-in began: tests/training/test_growing.py).
``test_the_reference_sees_a_wrong_constant`` checks that each of `MISTAKES` fails the same tolerance.
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
from tests.training.step_inputs import phase_inputs
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
               fade_reversed=False, beta1=0.0, beta2=0.99, epsilon=1e-8, lrate=0.001)
PGGAN_TF = dict(TF_LOOP, wgan_lambda=10.0, wgan_target=1.0, wgan_epsilon=0.001, G_smoothing=0.999,
                mixing_factor_per_sample=True)
STYLEGAN1_TF = dict(TF_LOOP, r1_gamma=10.0, G_smoothing_kimg=10.0, ema_per_gpu_minibatch=False,
                    dlatent_avg_beta=0.995, style_mixing_prob=0.9, mixing_among_layers_in_use=True)
FAMILIES = {"pggan": ("pggan", PGGAN_TF), "stylegan1": ("ablations/stylegan1_f", STYLEGAN1_TF)}

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
}

# Leaves whose gradient is zero in exact arithmetic, so that Adam moves them along float32 roundoff (NVIDIA's
# as ours): StyleGAN1's 4x4 input layer's bias, which instance normalisation removes while the layer's
# pre-activations (the constant, ~1, plus small noise) are all positive and the leaky ReLU linear. The test
# checks that the reference's gradient there is roundoff, and compares the other leaves.
ROUNDOFF = {"stylegan1": ("synthesis/b4_input/bias",)}


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
def pggan_run(data_dir, tmp_path_factory):
    return train_to_checked_step("pggan", data_dir, tmp_path_factory.mktemp("pggan"))


@pytest.fixture(scope="module")
def stylegan1_run(data_dir, tmp_path_factory):
    return train_to_checked_step("stylegan1", data_dir, tmp_path_factory.mktemp("stylegan1"))


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

    def d_full(self, dp, x_full, c, alpha):
        """D of full-resolution images: box-downsampled to the training resolution first (D_paper / D_basic)."""
        return self.D.apply({"params": dp}, downscale(x_full, self.factor), c, alpha=alpha)[:, 0].astype(jnp.float64)

    def generate(self, gp, gb, inputs, alpha):
        """(images [B, r, r, C] at the training resolution, mean w of the unmixed ws or None) of one minibatch:
        ``inputs`` z, c, noise key, and for StyleGAN1 the mixing z and crossover (NVIDIA's G_style)."""
        v = {"params": gp, "buffers": gb}
        grow = dict(resolution=self.resolution, alpha=alpha)
        if not self.style:
            return self.G.apply(v, inputs["z"], inputs["c"], **grow), None
        ws = self.G.apply(v, inputs["z"], inputs["c"], method="map")
        mixed = self.G.apply(v, inputs["z2"], inputs["c"], method="map")
        layer = jnp.arange(ws.shape[1])[None, :, None]
        crossed = jnp.where(layer < inputs["cutoff"], ws, mixed)
        img = self.G.apply(v, crossed, "random", **grow, rngs={"noise": inputs["noise"]}, method="synthesize")
        return img, jnp.mean(ws[:, 0], axis=0)

    def d_loss(self, dp, gp, gb, inputs, reals, labels, alpha, w):
        """D's TF loss, the mean over the global batch of each GPU's per-sample losses (``w``: the weights, and
        ``grad_scale`` 1 on the gradients of the penalties). Aux: each minibatch's mean w."""

        def minibatch(x):
            fakes, w_mean = self.generate(gp, gb, dict(x, c=x["labels"]), alpha)
            fakes, real_full = upscale(jax.lax.stop_gradient(fakes), self.factor), upscale(x["reals"], self.factor)
            real = self.d_full(dp, real_full, x["labels"], alpha)
            fake = self.d_full(dp, fakes, x["labels"], alpha)
            if not self.style:  # D_wgangp_acgan
                mixed = real_full + (fakes - real_full) * x["u"]
                grads = jax.grad(lambda v: jnp.sum(self.d_full(dp, v, x["labels"], alpha)))(mixed) * w["grad_scale"]
                norms = jnp.sqrt(jnp.sum(jnp.square(grads), axis=(1, 2, 3)))
                loss = (fake - real + jnp.square(norms - w["target"]) * (w["lambda"] / w["target"] ** 2)
                        + jnp.square(real) * w["epsilon"])
            else:  # D_logistic_simplegp
                grads = jax.grad(lambda v: jnp.sum(self.d_full(dp, v, x["labels"], alpha)))(real_full) * w["grad_scale"]
                r1 = jnp.sum(jnp.square(grads), axis=(1, 2, 3))
                loss = jax.nn.softplus(fake) + jax.nn.softplus(-real) + r1 * (w["gamma"] * 0.5)
            return jnp.mean(loss), w_mean

        losses, w_means = jax.lax.map(minibatch, dict(inputs, reals=reals, labels=labels))
        return jnp.mean(losses), w_means

    def g_loss(self, gp, gb, dp, inputs, alpha):
        """G's TF loss (PGGAN: -D(G(z)); StyleGAN1: softplus(-D(G(z)))), mean over the global batch. Aux: each
        minibatch's mean w."""

        def minibatch(x):
            fakes, w_mean = self.generate(gp, gb, x, alpha)
            fake = self.D.apply({"params": dp}, fakes, x["c"], alpha=alpha)[:, 0].astype(jnp.float64)
            return jnp.mean(jax.nn.softplus(-fake) if self.style else -fake), w_mean

        losses, w_means = jax.lax.map(minibatch, inputs)
        return jnp.mean(losses), w_means


def tf_adam(params: dict, grads: dict, opt: dict, prefix: str, s: dict) -> None:
    """TensorFlow's AdamOptimizer in float64, in place: lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps),
    i.e. PyTorch's form (`adam`) with epsilon eps / sqrt(1 - b2^t) (``epsilon_hat``: TF's "epsilon hat")."""
    t = opt[f"{prefix}/count"] + 1
    eps = s["epsilon"] / np.sqrt(1 - s["beta2"] ** t) if s["epsilon_hat"] else s["epsilon"]
    adam(params, grads, opt, prefix, s["lrate"], s["beta1"], s["beta2"], eps)


def draws(trainer, before, labels, phase: str, s: dict, cur_layers: int) -> dict:
    """A phase's random inputs as the step draws them (float32, outside x64), per minibatch: z, c, G's noise key,
    StyleGAN1's mixing z and crossover (NVIDIA's: from [1, layers in use) with probability
    ``style_mixing_prob``, else none), PGGAN's interpolation factors u [K, B, 1, 1, 1] (D's phase)."""
    batch_gpu = trainer.layout.batch_gpu
    z, c, keys = phase_inputs(before, labels, phase, batch_gpu, trainer.G.z_dim)
    out = dict(z=z, c=c, noise=[], z2=[], cutoff=[], u=[])
    num_ws = trainer.G.num_ws if trainer.family.has_mapping else 0
    for key in keys:
        k_cut, k_prob, k_z, k_noise = jax.random.split(key, 4)  # steps.Phases.run_G
        out["noise"].append(k_noise)
        if num_ws:
            layers = cur_layers if s["mixing_among_layers_in_use"] else num_ws
            cutoff = int(jax.random.randint(k_cut, (), 1, layers))
            out["cutoff"].append(cutoff if float(jax.random.uniform(k_prob)) < s["style_mixing_prob"] else layers)
            out["z2"].append(np.asarray(jax.random.normal(k_z, (batch_gpu, trainer.G.z_dim))))
        u = np.asarray(jax.random.uniform(jax.random.fold_in(key, 1), (batch_gpu, 1, 1, 1), jnp.float32))
        out["u"].append(u if s.get("mixing_factor_per_sample", True) else np.broadcast_to(u[:1], u.shape))
    out = {k: np.asarray(v) if k != "noise" else jnp.stack(v) for k, v in out.items() if len(v)}
    return {k: (np.asarray(v, np.float64) if k in ("z", "c", "z2", "u") else v) for k, v in out.items()}


def reference_iteration(family: str, trainer, ref_cache: dict, before, batch, overrides: dict | None = None):
    """Every leaf of the state after the TF loop's iteration from ``before`` by name; ``overrides`` get some
    of the family's TF settings wrong."""
    cfg, layout = trainer.cfg, trainer.layout
    s = {**FAMILIES[family][1], **(overrides or {})}
    cur_nimg = int(before.step) // s["minibatch_repeats"] * s["minibatch_repeats"] * layout.batch_size
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
    d_inputs = draws(trainer, before, labels, "D_main", s, cur_layers)
    g_inputs = draws(trainer, before, labels, "G_main", s, cur_layers)
    d_inputs.pop("c")  # D's fakes take the reals' labels (D_wgangp_acgan, D_logistic_simplegp)
    g_inputs.pop("u", None)
    weights = (dict(gamma=s["r1_gamma"]) if ref.style else
               dict(**{"lambda": s["wgan_lambda"]}, target=s["wgan_target"], epsilon=s["wgan_epsilon"]))
    # the mistake: the gradient at the training resolution, `factor` times the full resolution's
    weights["grad_scale"] = 1.0 if s["penalty_at_full_resolution"] else float(ref.factor)
    beta_w = s.get("dlatent_avg_beta")

    def d_step():
        grads, w_means = ref.d_grads(nest(dp), nest(gp), gb, d_inputs, reals, labels, alpha, weights)
        tf_adam(dp, unnest(grads), opt, "d_opt", s)
        if ref.style:
            gb["mapping"]["w_avg"] = lerp_w_avg(gb["mapping"]["w_avg"], w_means, beta_w)

    def g_step():
        grads, w_means = ref.g_grads(nest(gp), gb, nest(dp), g_inputs, alpha)
        tf_adam(gp, unnest(grads), opt, "g_opt", s)
        if ref.style:
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
        else:  # G's step, D's, then G_ema
            g_step()
            d_step()
            ema, ema_buffers = ema_of(gp, state, beta), unnest(gb)

    return state_after(state, opt, state["pl_mean"], g_params=gp, d_params=dp, g_ema_params=ema, g_buffers=gb,
                       g_ema_buffers=ema_buffers)


@pytest.fixture(scope="module")
def references():
    """{family: {training resolution: Reference}}: each family's jitted references, compiled once."""
    return {}


def checked(ratios: dict, family: str) -> dict:
    """The leaves' ratios without `ROUNDOFF`'s."""
    return {k: v for k, v in ratios.items() if not any(k.endswith(leaf) for leaf in ROUNDOFF.get(family, ()))}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_iteration_equals_the_tf_reference(request, references, family):
    _, trainer, before, batch, after = request.getfixturevalue(f"{family}_run")
    expected = reference_iteration(family, trainer, references.setdefault(family, {}), before, batch)
    for leaf in ROUNDOFF.get(family, ()):  # its gradient is float32 roundoff: orders of magnitude below the const's
        gradient, const = (np.abs(expected[f"g_opt/mu/{name}"]).max() for name in (leaf, "synthesis/b4_const"))
        assert gradient < 1e-5 * const, (leaf, gradient, const)
    ratios = checked(compare(after, expected, before), family)
    worst = sorted(ratios.items(), key=lambda kv: -kv[1])[:5]
    assert max(ratios.values()) <= 1, worst


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_the_reference_sees_a_wrong_constant(request, references, mistake):
    """The tolerance is tight enough: a reference with one of the TF code's settings wrong misses the step."""
    family = MISTAKES[mistake][0]
    _, trainer, before, batch, after = request.getfixturevalue(f"{family}_run")
    wrong = reference_iteration(family, trainer, references.setdefault(family, {}), before, batch,
                                MISTAKES[mistake][1])
    ratios = checked(compare(after, wrong, before), family)
    assert max(ratios.values()) > 10, sorted(ratios.items(), key=lambda kv: -kv[1])[:5]
