"""Two training iterations of a tiny R3GAN recipe run against a float64 reference written from brownvc/R3GAN's
semantics (``R3GAN/Trainer.py`` AdversarialTraining, ``training/loss.py`` R3GANLoss, ``training/training_loop.py``
and the schedulers of ``train.py``).

The reference recomputes R3GAN's iteration: the schedules' values at the images seen before it
(``cosine_decay_with_warmup`` without warm-up: lr, Adam's beta2, gamma, the G_ema half-life in images and the
augmentation p); D's step first, on the iteration's first real batch (the iterator's first draw) and fakes
G(z_D, c) that take their real's label, with the relativistic pairing loss softplus(-(D(x_i) - D(G(z_i)))) plus
(gamma / 2) * (R1 + R2), R1 = |d sum D(x) / dx|^2 per real image and R2 the same at the (fixed) fakes; then G's
step on the second draw, softplus(-(D(G(z_i)) - D(x_i))) with D as its step left it; each loss a mean over the
global batch (R3GAN's rounds of ``batch_gpu`` with the gain batch_gpu / batch), followed by PyTorch's Adam with
betas (0, beta2) and eps 1e-8, bias-corrected with the current beta2; then, after both steps, G_ema = G + beta *
(G_ema - G) with beta = 0.5 ** (batch / max(ema_nimg, 1e-8)). Losses and gradients are taken under
``jax.enable_x64``; Adam and the EMA are NumPy float64. Every leaf of the jitted float32 state after
``Trainer.run_iteration`` must match: parameters, Adam's moments and counts, the optimisers' stored lr and beta2
(the iteration's), G_ema, the step, the state's augmentation p (the iteration's) and its count of sign(D(x)) on
D's reals (ADA's accumulator, which the run keeps although a scheduled p does not read it).

Shared with the code under test: the Flax modules G and D (tested against R3GAN's own networks in
``tests/models/test_r3gan.py``) and the derivation of z (``steps.Phases.latents``), re-derived by
``tests.training.step_inputs.phase_inputs``; the reported losses, equal to the reference's to 1e-5, show that the
same z were drawn. The modules compute in float32 inside (they cast their inputs), so the reference's gradients
are float32 computations, in another order and under another convolution gradient rule (XLA's; the step's is
the forward-form rule on one CPU device) than the step's: the tolerance is ``test_step_reference.within``'s,
float32 rounding of the stored results plus 1% of the expected change.

The run: ``r3gan_cifar10`` with ``--config.tiny`` (digits-16, batch 8 in rounds of 2, R3GAN's grouped networks
at 16x16), kept conditional (so that the label a fake takes shows), its schedules shortened to 16 images so that
at the checked iteration 1 (8 images seen) each is half-way, the G_ema half-life going 0 -> 16 images (beta 0.5
there), and gamma 20 -> 2: with the recipe's 0.05 on these tiny networks a wrong R1 / R2 weight exceeds the
tolerance only 11- to 13-fold, with 20 over 100-fold. The augmentation pipe is kept with every transform off
(AugmentPipe is tested against NVIDIA's in ``tests/test_augment.py``), so that its scheduled p is checked while
D sees the images as they are. Iteration 0 is checked too (every schedule at its base value, G_ema = G: half-life
0). ``test_the_reference_sees_each_mistake`` checks that each mistake of ``MISTAKES`` would fail the tolerance.
The ablation rungs C-E (``ablations/r3gan_*``) take the same step with constant hyper-parameters (an unscheduled
Adam); they are not run here, for time.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.training.config import load_experiment, shrink_to_tiny
from stylegan_jax.training.loop import Trainer
from tests.training.step_inputs import phase_inputs
from tests.training.test_r3gan_training import r3gan_cosine
from tests.training.test_step_reference import adam, compare, float64

CHECKED = (0, 1)  # iterations compared with the reference
# The tests compile at LLVM -O0 (tests/conftest.py), under which the reference's second-order gradients run 20x
# slower (3.5 s a call): it is compiled optimised, for the same compile time.
OPTIMISED = {"xla_backend_optimization_level": 2}
ADAM = dict(b1=0.0, eps=1e-8)  # R3GAN's train.py: Adam betas (0, the scheduled beta2), eps 1e-8

# What R3GAN's iteration fixes that an implementation could get wrong (the reference's ``mistake`` argument).
MISTAKES = {
    "R1 and R2 weighted by gamma, not gamma / 2": "penalty_weight",
    "no R2 (R1 only, as StyleGAN2)": "no_r2",
    "lr not scheduled (its base value)": "lr",
    "beta2 not scheduled (its base value)": "beta2",
    "gamma not scheduled (its base value)": "gamma",
    "G_ema half-life not scheduled (its final value)": "ema_nimg",
    "G_ema of G before its step": "ema_before_g",
    "schedules at the images after the iteration": "nimg_after",
    "augmentation p not scheduled (its final value)": "p",
    "Adam beta1 0.9, not 0": "beta1",
    "Adam eps 1e-6, not 1e-8": "eps",
    "non-relativistic loss (NVIDIA's logistic)": "logistic",
    "fake i paired with real i + 1": "rolled_pairs",
    "fakes drawn with other labels than their reals'": "fake_labels",
    "G's step on D's real batch": "g_sees_d_reals",
    "G's step before D's": "g_first",
}


def tiny_r3gan(data_dir):
    """The tiny ``r3gan_cifar10`` of the module docstring."""
    c = load_experiment("r3gan_cifar10")
    c.update(tiny=True, data_dir=str(data_dir))
    c = shrink_to_tiny(c)
    c.update(conditional=True, augpipe={}, decay_kimg=0.016, r1_gamma=20.0)
    c.decay.update(ema_kimg=0.016, r1_gamma=2.0)
    return c


class RecordedDraws:
    """The trainer's data iterator, remembering what it yields (the reference's real batches)."""

    def __init__(self, iterator):
        self.iterator, self.drawn = iterator, []

    def __next__(self):
        self.drawn.append(next(self.iterator))
        return self.drawn[-1]


# -- the run under test -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
    """The trainer and, for each checked iteration, (state before, the iterator's draws, state after, reported
    losses), on host; one device (the step is device-count independent: test_r3gan_training)."""
    trainer = Trainer(tiny_r3gan(data_dir), tmp_path_factory.mktemp("r3gan_reference"), devices=jax.devices()[:1])
    trainer.iterator = draws = RecordedDraws(trainer.iterator)
    state, cases = trainer.initial_state(), {}
    for step in range(max(CHECKED) + 1):
        first = len(draws.drawn)
        batch = trainer.next_batch()
        before = jax.device_get(state)  # the phases donate their input state
        state, metrics = trainer.run_iteration(state, batch, step)
        cases[step] = (before, draws.drawn[first:], jax.device_get(state), jax.device_get(metrics))
    trainer.manager.close()
    return trainer, cases


# -- the reference --------------------------------------------------------------------------------------
def by_name(tree) -> dict:
    """Every leaf of a pytree by its path (``jax.tree_util.keystr``), as NumPy arrays."""
    return {jax.tree_util.keystr(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def as_tree(flat: dict, like):
    """``flat`` (`by_name` of a tree shaped as ``like``) back as that tree."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(like)
    return jax.tree_util.tree_unflatten(treedef, [flat[jax.tree_util.keystr(path)] for path, _ in paths])


class Reference:
    """R3GAN's two steps on float64 parameters, each jitted once. R3GAN accumulates its rounds of ``batch_gpu``
    images with the gain batch_gpu / batch, which makes the global batch's mean, and its networks have no term
    across images (no minibatch stddev, no normalisation): the reference takes the whole batch [N] at once.
    The pairing is explicit so that a mistake needs no new compilation: the reals' logits are paired through
    the permutation ``pairs`` [N, N] (the identity: fake i with real i), and ``relativistic`` 0 gives NVIDIA's
    logistic loss instead."""

    def __init__(self, G, D):
        self.G, self.D = G, D
        jit = functools.partial(jax.jit, compiler_options=OPTIMISED)
        self.generate = jit(lambda gp, z, c: self.G.apply({"params": gp}, z, c).astype(jnp.float64))
        self.d_grads = jit(jax.grad(self.d_loss, has_aux=True))
        self.g_grads = jit(jax.grad(self.g_loss, has_aux=True))

    def logits(self, dp, x, c):
        return self.D.apply({"params": dp}, x, c).astype(jnp.float64)[:, 0]

    def logits_and_penalty(self, dp, x, c):
        """D(x) [N] and |d sum D(x) / dx|^2 per image [N] (R3GAN's ZeroCenteredGradientPenalty)."""
        logits, vjp = jax.vjp(lambda x: self.logits(dp, x, c), x)
        (grads,) = vjp(jnp.ones_like(logits))
        return logits, jnp.sum(jnp.square(grads.astype(jnp.float64)), axis=(1, 2, 3))

    def d_loss(self, dp, reals, labels, fakes, fake_labels, r1_weight, r2_weight, relativistic, pairs):
        """R3GAN's AccumulateDiscriminatorGradients: mean over the batch of softplus(-(D(x) - D(G(z)))) +
        r1_weight * R1 + r2_weight * R2 (R3GAN: both gamma / 2). Aux: the means of the adversarial loss, R1,
        R2 and the relativistic logits D(x) - D(G(z)), and D(x) [N]."""
        real, r1 = self.logits_and_penalty(dp, reals, labels)
        fake, r2 = self.logits_and_penalty(dp, fakes, fake_labels)
        real = pairs @ real
        loss = (relativistic * jax.nn.softplus(-(real - fake))
                + (1 - relativistic) * (jax.nn.softplus(fake) + jax.nn.softplus(-real)))
        total = jnp.mean(loss) + r1_weight * jnp.mean(r1) + r2_weight * jnp.mean(r2)
        return total, (jnp.mean(loss), jnp.mean(r1), jnp.mean(r2), jnp.mean(real - fake), real)

    def g_loss(self, gp, dp, reals, labels, z, fake_labels, relativistic, pairs):
        """R3GAN's AccumulateGeneratorGradients: mean softplus(-(D(G(z)) - D(x))), the reals fixed. Aux: the
        means of the loss and of the relativistic logits D(G(z)) - D(x)."""
        fake = self.logits(dp, self.G.apply({"params": gp}, z, fake_labels), fake_labels)
        real = pairs @ self.logits(dp, reals, labels)
        loss = relativistic * jax.nn.softplus(-(fake - real)) + (1 - relativistic) * jax.nn.softplus(-fake)
        return jnp.mean(loss), (jnp.mean(loss), jnp.mean(fake - real))


def r3gan_schedules(cfg, nimg: float) -> dict:
    """R3GAN's cur_lr, cur_beta2, cur_gamma, cur_ema_nimg and cur_aug_p after ``nimg`` images: train.py's
    schedulers (base, final) over decay_kimg, as the config states them; one lr for both networks."""
    assert cfg.D_lr == cfg.G_lr and cfg.decay.D_lr == cfg.decay.G_lr  # R3GAN's one lr_scheduler
    total = cfg.decay_kimg * 1000
    return {"lr": r3gan_cosine(nimg, cfg.G_lr, cfg.decay.G_lr, total),
            "beta2": r3gan_cosine(nimg, cfg.betas[1], cfg.decay.beta2, total),
            "gamma": r3gan_cosine(nimg, cfg.r1_gamma, cfg.decay.r1_gamma, total),
            "ema_nimg": r3gan_cosine(nimg, cfg.ema_kimg * 1000, cfg.decay.ema_kimg * 1000, total),
            "p": r3gan_cosine(nimg, cfg.p, cfg.decay.p, total)}


def reference_iteration(trainer, ref: Reference, before, draws, mistake: str | None = None):
    """(every leaf of the state after one iteration by name, the losses, G_ema's beta), from ``before`` and
    the iteration's draws from the iterator (D's batch, then G's); ``mistake`` (a value of ``MISTAKES``) gets
    one thing wrong."""
    cfg, layout, c_dim = trainer.cfg, trainer.layout, trainer.c_dim
    k, b = layout.minibatches, layout.batch_gpu
    batch = layout.batch_size
    nimg = int(before.step) * batch + (batch if mistake == "nimg_after" else 0)
    hyper = r3gan_schedules(cfg, nimg)
    base, final = r3gan_schedules(cfg, 0), r3gan_schedules(cfg, cfg.decay_kimg * 1000)
    for name, wrong in (("lr", base), ("beta2", base), ("gamma", base), ("ema_nimg", final), ("p", final)):
        if mistake == name:
            hyper[name] = wrong[name]
    adam_args = dict(lr=hyper["lr"], b1=0.9 if mistake == "beta1" else ADAM["b1"], b2=hyper["beta2"],
                     eps=1e-6 if mistake == "eps" else ADAM["eps"])

    # D's reals from the first draw, G's from the second; z as the phases draw them, [K, batch_gpu] -> [N] in
    # the order of R3GAN's rounds (consecutive images of the draw); each fake takes its real's label.
    (d_reals, d_labels), (g_reals, g_labels) = [
        (np.asarray(d["image"], np.float64), np.asarray(d["label"][:, :c_dim], np.float64)) for d in draws]
    if mistake == "g_sees_d_reals":
        g_reals, g_labels = d_reals, d_labels
    z_d, z_g = (np.asarray(phase_inputs(before, labels.reshape(k, b, c_dim), phase, b, trainer.G.z_dim)[0],
                           np.float64).reshape(k * b, -1) for phase, labels in (("D_main", d_labels),
                                                                               ("G_main", g_labels)))
    d_fake_labels, g_fake_labels = d_labels, g_labels
    if mistake == "fake_labels":
        d_fake_labels, g_fake_labels = np.roll(d_labels, 1, axis=0), np.roll(g_labels, 1, axis=0)
    relativistic = np.float64(0.0 if mistake == "logistic" else 1.0)
    pairs = np.roll(np.eye(k * b), 1, axis=1) if mistake == "rolled_pairs" else np.eye(k * b)
    r1_weight = np.float64(hyper["gamma"] * (1 if mistake == "penalty_weight" else 0.5))
    r2_weight = np.float64(0.0 if mistake == "no_r2" else r1_weight)

    s = {name: np.asarray(v, np.float64) if np.issubdtype(np.asarray(v).dtype, np.floating) else np.asarray(v)
         for name, v in by_name(before).items()}
    out, sums, ema_of = {}, {}, {}

    def parameters(net: str) -> dict:
        return {name[len(f".{net}_params"):]: v for name, v in s.items() if name.startswith(f".{net}_params")}

    def update(net: str, grads) -> None:
        """PyTorch's Adam on ``net``'s parameters in ``s`` (`test_step_reference.adam`); the optimiser state
        records the iteration's lr and beta2."""
        params, grads, opt = parameters(net), by_name(grads), {}
        inner = f".{net}_opt.inner_state[0]"
        opt["o/count"] = s[f"{inner}.count"]
        for name in params:
            opt[f"o/mu/{name}"], opt[f"o/nu/{name}"] = s[f"{inner}.mu{name}"], s[f"{inner}.nu{name}"]
        adam(params, grads, opt, "o", **adam_args)
        for name in params:
            s[f".{net}_params{name}"] = params[name]
            s[f"{inner}.mu{name}"], s[f"{inner}.nu{name}"] = opt[f"o/mu/{name}"], opt[f"o/nu/{name}"]
        s[f"{inner}.count"] = s[f".{net}_opt.count"] = opt["o/count"]
        s[f".{net}_opt.hyperparams['learning_rate']"] = hyper["lr"]
        s[f".{net}_opt.hyperparams['b2']"] = hyper["beta2"]

    with float64():
        g_tree, d_tree = before.g_params, before.d_params

        def d_step():
            fakes = ref.generate(as_tree(parameters("g"), g_tree), z_d, d_fake_labels)
            grads, (out["D/loss"], out["r1"], out["r2"], out["D/scores"], real) = ref.d_grads(
                as_tree(parameters("d"), d_tree), d_reals, d_labels, fakes, d_fake_labels, r1_weight, r2_weight,
                relativistic, pairs)
            sums["signs"] = np.array([np.sum(np.sign(real)), real.size], np.float64)
            update("d", grads)

        def g_step():
            if mistake == "ema_before_g":  # G_ema then lerps towards G as it was before G's step
                ema_of.update(parameters("g"))
            grads, (out["G/loss"], out["G/scores"]) = ref.g_grads(
                as_tree(parameters("g"), g_tree), as_tree(parameters("d"), d_tree), g_reals, g_labels, z_g,
                g_fake_labels, relativistic, pairs)
            update("g", grads)

        for step in (g_step, d_step) if mistake == "g_first" else (d_step, g_step):
            step()

    # G_ema after both steps; the iteration counted; the scheduled p recorded; ADA's sign count.
    beta = 0.5 ** (batch / max(hyper["ema_nimg"], 1e-8))
    for name, v in {**parameters("g"), **ema_of}.items():
        s[f".g_ema_params{name}"] = v + beta * (s[f".g_ema_params{name}"] - v)
    s[".step"] = s[".step"] + 1
    s[".aug['p']"] = np.float64(hyper["p"])
    s[".aug['signs']"] = s[".aug['signs']"] + sums["signs"]
    return s, {name: float(v) for name, v in out.items()}, beta


# -- tests -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(run):
    trainer, _ = run
    return Reference(trainer.G, trainer.D)


@pytest.mark.parametrize("iteration", CHECKED)
def test_iteration_equals_the_float64_reference(run, reference, iteration):
    """Measured: the worst ratio is 0.11 at iteration 0 (the stored lr and beta2: float32's 2e-4 and 0.9 against
    float64's) and 0.11 at iteration 1 (G_ema's generative basis, rounding); each of ``MISTAKES`` exceeds the
    tolerance at least 25-fold (a p not scheduled, on the state's p), 46-fold (a G_ema half-life not scheduled)
    and over 100-fold for the others."""
    trainer, cases = run
    before, draws, after, metrics = cases[iteration]
    assert list(metrics) == ["D_main", "G_main"]
    expected, losses, beta = reference_iteration(trainer, reference, before, draws)
    # The reported losses equal the reference's: the same z and reals were used.
    reported = {"D/loss": metrics["D_main"]["Loss/D/loss"], "r1": metrics["D_main"]["Loss/r1_penalty"],
                "r2": metrics["D_main"]["Loss/r2_penalty"], "D/scores": metrics["D_main"]["Loss/scores/real"],
                "G/loss": metrics["G_main"]["Loss/G/loss"], "G/scores": metrics["G_main"]["Loss/scores/fake"]}
    for name, value in reported.items():
        np.testing.assert_allclose(float(value), losses[name], rtol=1e-5, atol=1e-7, err_msg=name)
    assert beta == pytest.approx(0.0 if iteration == 0 else 0.5)  # half-life 0 at first, then 8 images
    ratios = compare(after, expected, before, flatten=by_name)
    worst = sorted(ratios.items(), key=lambda kv: -kv[1])[:5]
    assert max(ratios.values()) <= 1, worst


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_the_reference_sees_each_mistake(run, reference, mistake):
    """The tolerance is tight enough: a reference with one of R3GAN's choices wrong misses the step."""
    trainer, cases = run
    before, draws, after, _ = cases[max(CHECKED)]
    wrong, _, _ = reference_iteration(trainer, reference, before, draws, MISTAKES[mistake])
    ratios = compare(after, wrong, before, flatten=by_name)
    worst = sorted(ratios.items(), key=lambda kv: -kv[1])[:5]
    assert max(ratios.values()) > 10, worst
