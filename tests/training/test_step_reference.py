"""One training iteration of the tiny conditional StyleGAN2 against a reference written from NVIDIA's
semantics (stylegan2-ada-pytorch ``training/loss.py`` StyleGAN2Loss and ``training/training_loop.py``).

The reference recomputes the four phases G_main, G_reg, D_main, D_reg of one iteration: each phase's loss is
rebuilt here (non-saturating logistic losses, path lengths |J^T y| with a running mean that lerps by
``pl_decay``, R1 as the squared norm of dD/dx) with the networks applied one minibatch at a time under
``jax.enable_x64``, and everything after the gradients is NumPy float64: NVIDIA's lazy-regularisation gains
(``G_reg_interval`` on PL, ``D_reg_interval`` on R1, R1 weight gamma / 2), Adam with lr and betas scaled by
interval / (interval + 1), ``pl_mean`` and ``w_avg`` (each minibatch lerps the stored value by its own mean, as
each of NVIDIA's GPUs its own copy; the mean of the minibatches' values is kept) and G_ema
(beta = 0.5 ** (batch / ema_nimg), ema_nimg = min(ema_kimg * 1000, cur_nimg * ema_rampup)). Every leaf of the
jitted float32 state after ``Trainer.run_iteration`` must match.

What is shared with the code under test: the Flax modules G and D (tested against NVIDIA's own networks in
``tests/models/test_nvidia_agreement.py``) and the derivation of the random inputs (z, the generated labels'
permutation, noise keys), which ``steps.Phases.latents`` / ``run_G`` / ``g_reg`` define and which is
reproduced here, not imported; the reported losses, equal to the reference's to 1e-5, show that it was.

Not float64 everywhere: the modules cast to float32 internally (the mapping's z and c, the synthesis's ws,
the modulated convolutions' weights and styles, D's fromrgb and epilogue), so under x64 the networks' forward
and backward passes, and therefore the reference's gradients, are still float32 computations, in another
order than the step's (``lax.map`` over the minibatches against ``vmap``). The tolerances below are set from
that: see ``within``. On one CPU device the trainer's ``conv_grad='auto'`` differentiates the convolutions by the
forward-form rule, while the reference is traced under XLA's default rule: every phase's first- and
second-order (R1, path length) convolution gradients of that rule are checked too.

The checked iteration is iteration 4 of a run (G_reg_interval 4 and D_reg_interval 2 both divide it, so all
four phases run) rather than iteration 0: at iteration 0 Adam's first update is lr * g / (|g| + eps), close to
lr * sign(g), blind to a wrong loss weight; the EMA's ramp-up gives beta = 0 (no images seen); pl_mean and
``w_avg`` start at 0. After four iterations the moments, pl_mean, w_avg and G_ema all hold values, and Adam's
betas are (0.5, 0.99) so that the scaling of beta1 is visible too. Iteration 0 is checked as well.
``test_the_reference_sees_a_wrong_constant`` checks that each wrong constant would fail these tolerances.
"""

import contextlib
from unittest import mock

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from stylegan_jax.training.loop import Trainer
from tests.training.conftest import tiny_config
from tests.training.step_inputs import noise_key, phase_inputs, training_labels

# NVIDIA's StyleGAN2 loss without style mixing (the reference would have to reproduce the crossover's draws).
OVERRIDES = dict(style_mixing_prob=0.0, G_reg_interval=4, D_reg_interval=2, r1_gamma=1.0, pl_weight=2.0,
                 pl_decay=0.01, betas=(0.5, 0.99), ema_kimg=10.0, ema_rampup=0.25)
CHECKED = (0, 4)  # iterations compared with the reference; both run all four phases

# The mistakes the reference must be able to see (each a constant of NVIDIA's that an implementation could miss).
MISTAKES = {
    "R1 weight gamma, not gamma / 2": "r1_weight",
    "no D_reg_interval gain on R1": "r1_gain",
    "no G_reg_interval gain on PL": "pl_gain",
    "Adam betas not scaled when lazy": "betas",
    "Adam lr not scaled when lazy": "lr",
    "G_ema without ramp-up": "ema_rampup",
    "pl_mean decay 0.1, not pl_decay": "pl_decay",
    "w_avg updated per minibatch in turn (K rounds on one GPU)": "w_avg_in_turn",
    "pl_mean updated per minibatch in turn (K rounds on one GPU)": "pl_mean_in_turn",
}

F32_EPS = 2.0**-24  # float32's unit roundoff


# -- the run under test -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
    """The trainer and, for each checked iteration, (state before, batch, state after, reported losses), on
    host. Four fake devices exist; one is used (the step is device-count independent, tested elsewhere)."""
    cfg = tiny_config(data_dir, **OVERRIDES)
    trainer = Trainer(cfg, tmp_path_factory.mktemp("reference"), devices=jax.devices()[:1])
    state, cases = trainer.initial_state(), {}
    for step in range(max(CHECKED) + 1):
        batch = trainer.device_batch(next(trainer.iterator))
        before = jax.device_get(state)  # the phases donate their input state
        state, metrics = trainer.run_iteration(state, batch, step)
        if step in CHECKED:
            cases[step] = (before, jax.device_get(batch), jax.device_get(state), jax.device_get(metrics))
    trainer.manager.close()
    return trainer, cases


# -- the reference --------------------------------------------------------------------------------------
def flat(tree) -> dict:
    return {k: np.asarray(v, np.float64) for k, v in flax.traverse_util.flatten_dict(tree, sep="/").items()}


def flat_state(state) -> dict:
    """Every leaf of a TrainState by name, as float64 (integers kept)."""
    out = {"step": np.asarray(state.step), "key": np.asarray(state.key),
           "pl_mean": np.asarray(state.pl_mean, np.float64)}
    for part in ("g_params", "g_buffers", "g_ema_params", "g_ema_buffers", "d_params"):
        out.update({f"{part}/{k}": v for k, v in flat(getattr(state, part)).items()})
    for part in ("g_opt", "d_opt"):
        opt = getattr(state, part)
        out[f"{part}/count"] = np.asarray(optax.tree_utils.tree_get(opt, "count"))
        for moment in ("mu", "nu"):
            out.update({f"{part}/{moment}/{k}": v for k, v in flat(optax.tree_utils.tree_get(opt, moment)).items()})
    return out


@contextlib.contextmanager
def float64():
    """x64 on, except for the synthesis's noise: it draws with ``jax.random.normal(key, shape)``, whose default
    dtype becomes float64 under x64 (other numbers from the same key); float32 draws, as the step's, instead."""
    normal = jax.random.normal

    def draw(key, shape=(), dtype=None, *args, **kwargs):
        return normal(key, shape, jnp.float32 if dtype is None else dtype, *args, **kwargs)

    with jax.enable_x64(True), mock.patch.object(jax.random, "normal", draw):
        yield


class Reference:
    """The phases' losses on float64 parameters, one minibatch after another (``lax.map`` / ``lax.scan``
    over the minibatches, not the step's ``vmap``), each phase jitted once."""

    def __init__(self, G, D):
        self.G, self.D = G, D
        self.g_main = jax.jit(jax.grad(self.g_main_loss, has_aux=True))
        self.g_reg = jax.jit(jax.grad(self.g_reg_loss, has_aux=True), static_argnums=9)
        self.fakes = jax.jit(self.generate_all)
        self.d_main = jax.jit(jax.grad(self.d_main_loss, has_aux=True))
        self.d_reg = jax.jit(jax.grad(self.d_reg_loss, has_aux=True))

    def generate(self, gp, gb, z, c, noise_key):
        """(images, ws) of one minibatch; noise drawn from ``noise_key`` as the step's synthesis draws it."""
        v = {"params": gp, "buffers": gb}
        ws = self.G.apply(v, z, c, method="map")
        return self.G.apply(v, ws, "random", rngs={"noise": noise_key}, method="synthesize"), ws

    def logits(self, dp, img, c):
        return self.D.apply({"params": dp}, img, c).astype(jnp.float64)

    def g_main_loss(self, gp, gb, dp, z, c, noise_keys):
        """NVIDIA's Gmain: mean softplus(-D(G(z, c), c)) over the global batch; aux: each minibatch's mean w,
        the loss, the mean logit."""

        def minibatch(inputs):
            img, ws = self.generate(gp, gb, *inputs)
            return self.logits(dp, img, inputs[1]), jnp.mean(ws[:, 0], axis=0)

        logits, w_means = jax.lax.map(minibatch, (z, c, noise_keys))
        loss = jnp.mean(jnp.logaddexp(0.0, -logits))
        return loss, (w_means, loss, jnp.mean(logits))

    def g_reg_loss(self, gp, gb, pl_mean, z, c, noise_keys, ys, pl_decay, weight, in_turn=False):
        """NVIDIA's Greg: per minibatch (as per GPU), path lengths |J_w^T y| = sqrt(mean over ws of
        |d sum(img * y) / dw|^2), the stored pl_mean lerped towards their mean by ``pl_decay`` (the stored mean a
        constant, this minibatch's mean not; ``in_turn``: the previous minibatch's result, as K rounds on one
        GPU), penalty (length - pl_mean)^2; loss mean(penalty) * pl_weight * G_reg_interval (``weight``).
        Aux: the minibatches' mean w, their running means, the mean penalty."""
        v = {"params": gp, "buffers": gb}

        def minibatch(running, inputs):
            z, c, key, y = inputs
            ws = self.G.apply(v, z, c, method="map")
            _, vjp = jax.vjp(lambda w: self.G.apply(v, w, "random", rngs={"noise": key}, method="synthesize")
                             .astype(jnp.float64), ws)
            (grads,) = vjp(y)
            lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads.astype(jnp.float64)), axis=2), axis=1))
            previous = jax.lax.stop_gradient(running if in_turn else pl_mean)
            mean = previous + (jnp.mean(lengths) - previous) * pl_decay
            return mean, (jnp.square(lengths - mean), mean, jnp.mean(ws[:, 0], axis=0))

        _, (penalties, means, w_means) = jax.lax.scan(minibatch, pl_mean, (z, c, noise_keys, ys))
        penalty = jnp.mean(penalties)
        return penalty * weight, (w_means, means, penalty)

    def generate_all(self, gp, gb, z, c, noise_keys):
        """(images [K, B, ...], each minibatch's mean w) for D_main."""
        img, ws = jax.lax.map(lambda inputs: self.generate(gp, gb, *inputs), (z, c, noise_keys))
        return img, jnp.mean(ws[:, :, 0], axis=1)

    def d_main_loss(self, dp, fakes, c, reals, labels):
        """NVIDIA's Dmain: mean softplus(D(fake)) + mean softplus(-D(real)); D sees one minibatch at a time
        (its minibatch-stddev groups). Aux: the loss, the mean fake and real logits."""
        fake = jax.lax.map(lambda inputs: self.logits(dp, *inputs), (fakes, c))
        real = jax.lax.map(lambda inputs: self.logits(dp, *inputs), (reals, labels))
        loss = jnp.mean(jnp.logaddexp(0.0, fake)) + jnp.mean(jnp.logaddexp(0.0, -real))
        return loss, (loss, jnp.mean(fake), jnp.mean(real))

    def d_reg_loss(self, dp, reals, labels, weight):
        """NVIDIA's Dreg: R1 = |d sum(D(x)) / dx|^2 per real image; loss mean(R1) * gamma / 2 * D_reg_interval
        (``weight``). Aux: the mean R1."""

        def minibatch(inputs):
            x, c = inputs
            grads = jax.grad(lambda x: jnp.sum(self.logits(dp, x, c)))(x)
            return jnp.sum(jnp.square(grads.astype(jnp.float64)), axis=(1, 2, 3))

        penalty = jnp.mean(jax.lax.map(minibatch, (reals, labels)))
        return penalty * weight, penalty


def adam(params: dict, grads: dict, opt: dict, prefix: str, lr: float, b1: float, b2: float, eps: float) -> None:
    """PyTorch's (and optax's) Adam in float64, in place: m, v lerped, bias-corrected with the step count."""
    opt[f"{prefix}/count"] = count = opt[f"{prefix}/count"] + 1
    for name, g in grads.items():
        g = np.asarray(g, np.float64)
        mu = opt[f"{prefix}/mu/{name}"] = b1 * opt[f"{prefix}/mu/{name}"] + (1 - b1) * g
        nu = opt[f"{prefix}/nu/{name}"] = b2 * opt[f"{prefix}/nu/{name}"] + (1 - b2) * g * g
        params[name] = params[name] - lr * (mu / (1 - b1**count)) / (np.sqrt(nu / (1 - b2**count)) + eps)


def lerp_w_avg(w_avg, w_means, beta: float, in_turn: bool = False):
    """The mean over the minibatches of ``w_avg`` lerped by each one's mean w (NVIDIA's per-GPU copies, one
    update per phase); ``in_turn``: lerped by each mean in turn instead (K rounds on one GPU)."""
    w_means = np.asarray(w_means, np.float64)
    if in_turn:
        for mean in w_means:
            w_avg = mean + beta * (w_avg - mean)
        return w_avg
    return np.mean([mean + beta * (w_avg - mean) for mean in w_means], axis=0)


def nest(flat: dict) -> dict:
    """{'a/b': x} -> {'a': {'b': x}}: a network's variables from `flat_state`'s names."""
    return flax.traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in flat.items()})


def unnest(tree) -> dict:
    """A network's (gradient) tree on host -> {'a/b': x}."""
    return flax.traverse_util.flatten_dict(jax.device_get(tree), sep="/")


def split_state(s: dict) -> tuple[dict, dict, dict, dict]:
    """(G's parameters, D's parameters, G's buffers as a tree, both optimisers' leaves) of `flat_state`'s
    ``s``; parameters and optimiser leaves by name, for `adam` to update in place."""
    part = lambda prefix: {k[len(prefix):]: v for k, v in s.items() if k.startswith(prefix)}  # noqa: E731
    opt = {k: v for k, v in s.items() if k.startswith(("g_opt/", "d_opt/"))}
    return part("g_params/"), part("d_params/"), nest(part("g_buffers/")), opt


def lazy_adams(cfg, mistake: str | None = None) -> tuple[dict, dict]:
    """`adam`'s arguments for G and D with NVIDIA's lazy-regularisation scaling (lr and betas to the power
    interval / (interval + 1)); ``mistake`` 'lr' or 'betas' leaves that one unscaled."""
    def optimiser(lr, interval):
        ratio = 1.0 if mistake == "lr" else interval / (interval + 1)
        b_ratio = 1.0 if mistake == "betas" else interval / (interval + 1)
        return dict(lr=lr * ratio, b1=cfg.betas[0] ** b_ratio, b2=cfg.betas[1] ** b_ratio, eps=cfg.eps)

    return optimiser(cfg.G_lr, cfg.G_reg_interval), optimiser(cfg.D_lr, cfg.D_reg_interval)


def ema_of(g_params: dict, before: dict, beta: float) -> dict:
    """G_ema = G + beta * (G_ema - G), with G_ema from `flat_state`'s ``before``."""
    return {k: v + beta * (before[f"g_ema_params/{k}"] - v) for k, v in g_params.items()}


def ema_beta(cfg, batch: int, cur_nimg: int, rampup: bool = True) -> float:
    """NVIDIA's G_ema beta: a half-life of ``ema_kimg``, ramped up to ``cur_nimg * ema_rampup`` (with
    ``rampup``)."""
    ema_nimg = cfg.ema_kimg * 1000
    if rampup:
        ema_nimg = min(ema_nimg, cur_nimg * cfg.ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


def state_after(before: dict, opt: dict, pl_mean, **parts: dict) -> dict:
    """`flat_state`'s names of the state after an iteration from ``before``: the step counted, the key kept,
    ``opt``'s optimiser leaves, and each of ``parts`` (g_params, d_params, g_ema_params, g_buffers,
    g_ema_buffers; flat by name or nested) as float64."""
    after = {"step": before["step"] + 1, "key": before["key"], "pl_mean": pl_mean, **opt}
    for part, values in parts.items():
        after.update({f"{part}/{k}": np.asarray(v, np.float64)
                      for k, v in flax.traverse_util.flatten_dict(values, sep="/").items()})
    return after


def reference_iteration(trainer, ref: Reference, before, batch, mistake: str | None = None):
    """(every leaf of the state after one iteration by name, the phases' losses, G_ema's beta), from
    ``before``; ``mistake`` (a value of ``MISTAKES``) gets one constant wrong."""
    cfg, layout = trainer.cfg, trainer.layout
    reals, labels = (np.asarray(x, np.float64) for x in batch)
    s = flat_state(before)
    gp, dp, gb, opt = split_state(s)
    g_adam, d_adam = lazy_adams(cfg, mistake)
    w_avg_beta, in_turn = cfg.G.w_avg_beta, mistake == "w_avg_in_turn"
    out = {}
    res, channels = cfg.resolution, cfg.img_channels

    # Random inputs as the step derives them (outside x64: float32 draws).
    z_dim, f64 = trainer.G.z_dim, lambda x: np.asarray(x, np.float64)  # noqa: E731
    z0, c0, keys0 = phase_inputs(before, labels, "G_main", layout.batch_gpu, z_dim, training_labels(trainer))
    noise0 = [noise_key(k) for k in keys0]
    pl_batch = layout.batch_gpu // cfg.pl_batch_shrink
    z1, c1, keys1 = phase_inputs(before, labels, "G_reg", pl_batch, z_dim, training_labels(trainer))
    k_g, k_pl = zip(*[jax.random.split(k) for k in keys1], strict=True)  # g_reg: run_G's key, y's key
    noise1 = [jax.random.fold_in(k, 1) for k in k_g]  # g_reg: the synthesis differentiated for |J^T y|
    ys = np.stack([f64(jax.random.normal(k, (pl_batch, res, res, channels), jnp.float32)) / np.sqrt(res * res)
                   for k in k_pl])
    z2, c2, keys2 = phase_inputs(before, labels, "D_main", layout.batch_gpu, z_dim, training_labels(trainer))
    noise2 = [noise_key(k) for k in keys2]
    z0, c0, z1, c1, z2, c2 = map(f64, (z0, c0, z1, c1, z2, c2))

    with float64():
        buffers = lambda: jax.tree_util.tree_map(jnp.asarray, gb)  # noqa: E731
        # G_main at the state's parameters.
        grads, (w_means, out["G_main/loss"], out["G_main/score"]) = ref.g_main(
            nest(gp), buffers(), nest(dp), z0, c0, jnp.stack(noise0))
        adam(gp, unnest(grads), opt, "g_opt", **g_adam)
        gb["mapping"]["w_avg"] = lerp_w_avg(gb["mapping"]["w_avg"], w_means, w_avg_beta, in_turn)

        # G_reg at G_main's result.
        pl_weight = cfg.pl_weight * (1 if mistake == "pl_gain" else cfg.G_reg_interval)
        pl_decay = 0.1 if mistake == "pl_decay" else cfg.pl_decay
        grads, (w_means, means, out["G_reg/penalty"]) = ref.g_reg(
            nest(gp), buffers(), s["pl_mean"], z1, c1, jnp.stack(noise1), ys, pl_decay, pl_weight,
            mistake == "pl_mean_in_turn")
        adam(gp, unnest(grads), opt, "g_opt", **g_adam)
        gb["mapping"]["w_avg"] = lerp_w_avg(gb["mapping"]["w_avg"], w_means, w_avg_beta, in_turn)
        pl_mean = np.asarray(means)[-1] if mistake == "pl_mean_in_turn" else np.mean(np.asarray(means))

        # D_main on fakes of G after both G phases; G_ema.
        fakes, w_means = ref.fakes(nest(gp), buffers(), z2, c2, jnp.stack(noise2))
        gb["mapping"]["w_avg"] = lerp_w_avg(gb["mapping"]["w_avg"], w_means, w_avg_beta, in_turn)
        grads, (out["D_main/loss"], out["D_main/fake"], out["D_main/real"]) = ref.d_main(
            nest(dp), fakes, c2, reals, labels)
        adam(dp, unnest(grads), opt, "d_opt", **d_adam)

        # D_reg at D_main's result.
        r1_weight = cfg.r1_gamma * (1 if mistake == "r1_weight" else 0.5)
        r1_weight *= 1 if mistake == "r1_gain" else cfg.D_reg_interval
        grads, out["D_reg/penalty"] = ref.d_reg(nest(dp), reals, labels, r1_weight)
        adam(dp, unnest(grads), opt, "d_opt", **d_adam)

    beta = ema_beta(cfg, layout.batch_size, int(s["step"]) * layout.batch_size, rampup=mistake != "ema_rampup")

    after = state_after(s, opt, pl_mean, g_params=gp, d_params=dp, g_ema_params=ema_of(gp, s, beta), g_buffers=gb,
                        g_ema_buffers=gb)  # G_ema copies G's buffers
    return after, {k: float(v) for k, v in out.items()}, beta


# -- comparison -------------------------------------------------------------------------------------------
def within(got, expected, before) -> float:
    """The worst ratio |got - expected| / tolerance over a leaf (<= 1: within), comparing changes from
    ``before`` so that the tolerance scales with what the iteration did, not with the leaf's size:

    - 4 * 2^-24 * (|before| + |change|): float32 rounding of the stored result, rounded after each of up to
      two phases' updates (it dominates for the mapping's weights, ~280 with lr_multiplier 0.01, where one
      rounding, 1.5e-5, is 0.6% of a 0.0025 update);
    - 1e-2 * (|expected change| + rms of the leaf's expected changes): the reference's gradients are float32
      computations in another order (and another convolution gradient rule) than the step's (see the module
      docstring), so small gradient elements differ relatively more; Adam, which divides by sqrt(nu), passes
      that on to the update. The tail is what sets it (in D's b4/fc/weight the 99th percentile ratio is ~0.01).

    Measured: the correct reference's worst ratio is 0.35 at iteration 0 (an element of D's b4/fc/weight with
    a 1e-6 gradient whose update differs by 0.8%) and 0.28 at iteration 4 (the mapping's weights, where
    rounding dominates); each wrong constant of ``MISTAKES`` exceeds the tolerance at least 40-fold (R1's gain,
    on D's Adam moments; 8-fold on D's parameters; the others 50- to 6 * 10^4-fold).
    """
    got, expected, before = (np.asarray(x, np.float64) for x in (got, expected, before))
    change, expected_change = got - before, expected - before
    rms = np.sqrt(np.mean(np.square(expected_change)))
    tol = 4 * F32_EPS * (np.abs(before) + np.abs(expected_change)) + 1e-2 * (np.abs(expected_change) + rms)
    tol = np.maximum(tol, 1e-30)
    return float(np.max(np.abs(change - expected_change) / tol))


def compare(step_state, reference: dict, before, flatten=flat_state) -> dict:
    """{leaf: worst ratio} over every leaf of the step's state, named by ``flatten``; integers (step, key,
    count) must be equal."""
    got, prior = flatten(step_state), flatten(before)
    assert sorted(got) == sorted(reference), set(got) ^ set(reference)
    assert len(got) == len(jax.tree_util.tree_leaves(step_state))  # every leaf is compared
    ratios = {}
    for name, value in got.items():
        if np.issubdtype(value.dtype, np.integer):
            ratios[name] = 0.0 if np.array_equal(value, reference[name]) else np.inf
        else:
            ratios[name] = within(value, reference[name], prior[name])
    return ratios


# -- tests -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(run):
    trainer, _ = run
    return Reference(trainer.G, trainer.D)


@pytest.mark.parametrize("iteration", CHECKED)
def test_iteration_equals_the_float64_reference(run, reference, iteration):
    trainer, cases = run
    before, batch, after, metrics = cases[iteration]
    assert set(metrics) == {"G_main", "G_reg", "D_main", "D_reg"}
    expected, losses, beta = reference_iteration(trainer, reference, before, batch)
    # The reported losses equal the reference's: the same z, labels and noise were drawn.
    reported = {"G_main/loss": metrics["G_main"]["Loss/G/loss"], "G_main/score": metrics["G_main"][
        "Loss/scores/fake"], "G_reg/penalty": metrics["G_reg"]["Loss/pl_penalty"],
        "D_main/loss": metrics["D_main"]["Loss/D/loss"], "D_main/fake": metrics["D_main"]["Loss/scores/fake"],
        "D_main/real": metrics["D_main"]["Loss/scores/real"], "D_reg/penalty": metrics["D_reg"]["Loss/r1_penalty"]}
    for name, value in reported.items():
        np.testing.assert_allclose(float(value), losses[name], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(float(metrics["G_reg"]["Loss/pl_mean"]), expected["pl_mean"], rtol=1e-5)
    assert beta == (0.0 if iteration == 0 else 0.5)  # cur_nimg 32 * ema_rampup 0.25 = 8 = batch: beta 0.5
    ratios = compare(after, expected, before)
    worst = sorted(ratios.items(), key=lambda kv: -kv[1])[:5]
    assert max(ratios.values()) <= 1, worst


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_the_reference_sees_a_wrong_constant(run, reference, mistake):
    """The tolerances are tight enough: a reference with one of NVIDIA's constants wrong misses the step."""
    trainer, cases = run
    before, batch, after, _ = cases[max(CHECKED)]
    wrong, _, _ = reference_iteration(trainer, reference, before, batch, MISTAKES[mistake])
    ratios = compare(after, wrong, before)
    assert max(ratios.values()) > 10, sorted(ratios.items(), key=lambda kv: -kv[1])[:5]
