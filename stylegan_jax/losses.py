"""GAN losses and regularisers: StyleGAN2's as NVIDIA's StyleGAN2Loss computes them (``training/loss.py``),
the lineage's other objectives (minimax, WGAN, WGAN-GP, hinge, PGGAN's epsilon-drift) and R3GAN's
relativistic pairing with its zero-centred R1 and R2 (``R3GAN/Trainer.py``).

Each function works on one minibatch (one device's share; see ``training/steps.py``) and returns per-sample
values or a scalar as documented; the training step takes means and applies the lazy-regularisation gain.
Objectives and D's regularisers are values (`Objective`, `Penalty`) that the config chooses
(`objective`, `d_main_penalties`): a new loss is one entry here, not a branch in the step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections

from stylegan_jax.errors import ConfigError


def generator_nonsaturating(fake_logits: jax.Array) -> jax.Array:
    """G's non-saturating logistic loss per sample: softplus(-D(G(z))). [N, 1] -> [N, 1]."""
    return jax.nn.softplus(-fake_logits)


def discriminator_logistic(fake_logits: jax.Array, real_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """D's logistic loss per sample: (softplus(D(G(z))), softplus(-D(x)))."""
    return jax.nn.softplus(fake_logits), jax.nn.softplus(-real_logits)


def input_gradients(d_fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """D's logits [N, 1] of images ``x`` [N, H, W, C] and, from the same pass, the gradient of their sum with
    respect to each image [N, H, W, C] (NVIDIA's R1: with minibatch standard deviation an image's logit also
    depends on the other images of its group)."""
    logits, vjp = jax.vjp(d_fn, x)
    (grads,) = vjp(jnp.ones_like(logits))
    return logits, grads


def squared_norms(grads: jax.Array) -> jax.Array:
    """The squared norm of each image's gradient [..., H, W, C] -> [...], in float32: R1 (Mescheder et al.
    2018; the loss is ``gamma / 2`` times it) of dD/dx at the reals, R2 (R3GAN) at the fakes."""
    return jnp.sum(jnp.square(grads.astype(jnp.float32)), axis=(-3, -2, -1))


def path_lengths(synthesis_fn: Callable[[jax.Array], jax.Array], ws: jax.Array, key: jax.Array) -> jax.Array:
    """Path lengths |J_w^T y| for y ~ N(0, 1) / sqrt(H * W), per sample (Karras et al. 2020, eq. 4).

    Args:
        synthesis_fn: ws [N, num_ws, w_dim] -> images [N, H, W, C].
        ws: [N, num_ws, w_dim].
        key: PRNG key for the image-space noise y.
    Returns:
        [N]: sqrt(mean over ws of the squared norm of the gradient, summed over w_dim), as NVIDIA.
    """
    images, vjp = jax.vjp(synthesis_fn, ws)
    h, w = images.shape[1], images.shape[2]
    noise = jax.random.normal(key, images.shape, jnp.float32) / jnp.sqrt(jnp.float32(h * w))
    (grads,) = vjp(noise.astype(images.dtype))
    return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))


def update_pl_mean(pl_mean: jax.Array, batch_means: jax.Array, decay: float) -> jax.Array:
    """Each minibatch's running mean of path lengths: lerp(pl_mean, its mean, decay), as each of NVIDIA's GPUs
    updates its own copy once per G_reg phase.

    ``batch_means`` [K] are the K minibatches' mean path lengths. Returns [K]: the running mean each minibatch's
    penalty uses; the run keeps their mean (`Phases.g_reg`). As in NVIDIA's code the stored previous mean is a
    constant but the gradient flows through this minibatch's own mean.
    """
    previous = jax.lax.stop_gradient(pl_mean)
    return previous + decay * (batch_means - previous)


def path_length_penalty(lengths: jax.Array, pl_mean: jax.Array) -> jax.Array:
    """(|J^T y| - a)^2 per sample with ``a`` the running mean from ``update_pl_mean``."""
    return jnp.square(lengths - pl_mean)


# -- the lineage's other objectives (GAN, WGAN, WGAN-GP, hinge) ----------------------------------------------
def generator_minimax(fake_logits: jax.Array) -> jax.Array:
    """G's loss of the original minimax game (Goodfellow et al. 2014): log(1 - D(G(z))) = -softplus(l).
    [N, 1] -> [N, 1]; it saturates when D rejects the fakes confidently."""
    return -jax.nn.softplus(fake_logits)


def generator_wasserstein(fake_logits: jax.Array) -> jax.Array:
    """G's loss against a critic (WGAN, WGAN-GP, hinge): -D(G(z)). [N, 1] -> [N, 1]."""
    return -fake_logits


def discriminator_wasserstein(fake_logits: jax.Array, real_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The critic's loss per sample: (D(G(z)), -D(x)); their mean estimates minus the Wasserstein-1 distance."""
    return fake_logits, -real_logits


def generator_relativistic(fake_logits: jax.Array, real_logits: jax.Array) -> jax.Array:
    """G's relativistic pairing loss per pair (RpGAN, Jolicoeur-Martineau 2019; R3GAN): softplus(-(D(G(z)) -
    D(x))), fake i paired with real i. [N, 1], [N, 1] -> [N, 1]."""
    return jax.nn.softplus(-(fake_logits - real_logits))


def discriminator_relativistic(fake_logits: jax.Array, real_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """D's relativistic pairing loss: (softplus(-(D(x) - D(G(z)))) per pair, 0): one term per pair, so the
    second (real) term is zero and the means still add up to D's loss."""
    return jax.nn.softplus(-(real_logits - fake_logits)), jnp.zeros_like(real_logits)


def discriminator_hinge(fake_logits: jax.Array, real_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The hinge loss per sample (Lim & Ye 2017, Miyato et al. 2018): (relu(1 + D(G(z))), relu(1 - D(x)))."""
    return jax.nn.relu(1.0 + fake_logits), jax.nn.relu(1.0 - real_logits)


def gradient_penalty(d_fn: Callable[[jax.Array], jax.Array], reals: jax.Array, fakes: jax.Array,
                     key: jax.Array, target: float = 1.0, grad_scale: float = 1.0) -> jax.Array:
    """WGAN-GP's penalty (Gulrajani et al. 2017) as NVIDIA's ``D_wgan_gp``: (|dD(x^)/dx^| - target)^2 at
    x^ = reals + u (fakes - reals), u ~ U[0, 1) per sample.

    Args:
        d_fn: images [N, H, W, C] -> logits [N, 1].
        reals, fakes: [N, H, W, C].
        key: PRNG key for u.
        target: the gradient norm aimed at (1 in the paper).
        grad_scale: multiplies the gradient: training resolution / full resolution while growing, the gradient
            with respect to the full-resolution images NVIDIA's D sees (and box-downsamples).
    Returns:
        [N]; the loss adds ``penalty * lambda / target^2``.
    """
    u = jax.random.uniform(key, (reals.shape[0], 1, 1, 1), reals.dtype)
    mixed = reals + (fakes - reals) * u
    logits, vjp = jax.vjp(d_fn, mixed)
    (grads,) = vjp(jnp.ones_like(logits))
    norms = jnp.sqrt(jnp.sum(jnp.square(grads.astype(jnp.float32)), axis=(1, 2, 3))) * grad_scale
    return jnp.square(norms - target)


def epsilon_drift(real_logits: jax.Array) -> jax.Array:
    """PGGAN's drift penalty D(x)^2 per real sample (weight epsilon_drift 0.001): keeps the critic near 0.
    [N, 1] -> [N]."""
    return jnp.square(real_logits[:, 0])


# -- objectives and regularisers as values -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Objective:
    """An objective: G's per-sample loss, D's per-sample (fake, real) losses (logits [N, 1] each), and the
    `PENALTIES` it always adds to D's loss (WGAN-GP's gradient penalty).

    ``pairs``: the losses compare fake i with real i (relativistic pairing), so G's loss is
    ``generator(fake_logits, real_logits)`` and G's step shows D a real batch too; otherwise
    ``generator(fake_logits)``.
    """

    name: str
    generator: Callable[..., jax.Array]
    discriminator: Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
    penalties: tuple[str, ...] = ()
    pairs: bool = False


@dataclasses.dataclass(frozen=True)
class Penalty:
    """A regulariser that D adds: ``weight(hyper) * mean(per_sample(...))``, logged as ``Loss/<name>``;
    ``hyper`` holds the iteration's hyper-parameters (``training.hyperparams.at``: ``r1_gamma``, ``r2_gamma``,
    ``wgan_lambda``, ``epsilon_drift``; floats, or traced scalars when scheduled).

    ``per_sample(d_real, reals, fakes, real_logits, grads, key, scale) -> [B]`` on one minibatch: ``d_real`` maps
    images [B, H, W, C] to logits [B, 1] with the reals' labels, augmented as D's reals are; ``real_logits``
    [B, 1] are D's on the reals; ``grads`` holds, for each of ``grads_at``
    ('reals', 'fakes'), dD/dx [B, H, W, C] there, taken before blur and augmentation from the pass that gives
    D's loss its logits (a zero-centred gradient penalty costs no second pass of D); ``scale`` multiplies the
    gradients (training / full resolution while growing: NVIDIA's D differentiates full-resolution images).
    """

    name: str
    weight: Callable[[dict], float | jax.Array]
    per_sample: Callable[..., jax.Array]
    grads_at: tuple[str, ...] = ()


#: The ``loss`` config key -> its objective.
OBJECTIVES = {o.name: o for o in (
    Objective("nonsaturating", generator_nonsaturating, discriminator_logistic),
    Objective("minimax", generator_minimax, discriminator_logistic),
    Objective("wgan", generator_wasserstein, discriminator_wasserstein),
    Objective("wgan_gp", generator_wasserstein, discriminator_wasserstein, penalties=("gradient_penalty",)),
    Objective("hinge", generator_wasserstein, discriminator_hinge),
    Objective("rpgan", generator_relativistic, discriminator_relativistic, pairs=True),  # R1, R2: r1/r2_gamma
)}

#: D's regularisers by name, in the order D's main step adds them.
PENALTIES = {p.name: p for p in (
    Penalty("gradient_penalty", lambda hyper: hyper["wgan_lambda"],
            lambda d_real, reals, fakes, real_logits, grads, key, scale: gradient_penalty(d_real, reals, fakes, key,
                                                                                         grad_scale=scale)),
    Penalty("epsilon_penalty", lambda hyper: hyper["epsilon_drift"],
            lambda d_real, reals, fakes, real_logits, grads, key, scale: epsilon_drift(real_logits)),
    Penalty("r1_penalty", lambda hyper: hyper["r1_gamma"] / 2,
            lambda d_real, reals, fakes, real_logits, grads, key, scale: squared_norms(grads["reals"] * scale),
            grads_at=("reals",)),
    # R2 (R3GAN): R1's zero-centred penalty at the fakes, dD/dG(z) with G's images held fixed.
    Penalty("r2_penalty", lambda hyper: hyper["r2_gamma"] / 2,
            lambda d_real, reals, fakes, real_logits, grads, key, scale: squared_norms(grads["fakes"] * scale),
            grads_at=("fakes",)),
)}


def objective(cfg: ml_collections.ConfigDict) -> Objective:
    """``cfg.loss``'s objective; an unknown name is one error listing the known ones."""
    if cfg.loss not in OBJECTIVES:
        raise ConfigError(f"--config.loss: unknown objective {cfg.loss!r}; expected one of {sorted(OBJECTIVES)}")
    return OBJECTIVES[cfg.loss]


def r2_gamma(cfg: ml_collections.ConfigDict) -> float:
    """R2's weight: ``cfg.r2_gamma``, or when None R1's ``r1_gamma`` under a pairing objective (R3GAN's one
    gamma weighting both, ``(gamma / 2) * (R1 + R2)``) and 0 otherwise."""
    if cfg.r2_gamma is not None:
        return cfg.r2_gamma
    return cfg.r1_gamma if objective(cfg).pairs else 0.0


def gradient_penalties(cfg: ml_collections.ConfigDict) -> list[Penalty]:
    """The zero-centred gradient penalties of ``cfg`` (R1 when ``r1_gamma`` > 0, R2 when its `r2_gamma`
    > 0), in `PENALTIES` order: in D's main step, or in their own phase ``D_reg`` when lazy."""
    names = {"r1_penalty"} if cfg.r1_gamma else set()
    if r2_gamma(cfg):
        names.add("r2_penalty")
    return [p for name, p in PENALTIES.items() if name in names]


def d_main_penalties(cfg: ml_collections.ConfigDict) -> list[Penalty]:
    """The regularisers D's main step adds under ``cfg``, in `PENALTIES` order: the objective's own
    (WGAN-GP's gradient penalty), PGGAN's epsilon-drift when ``epsilon_drift`` > 0, the `gradient_penalties`
    when not lazy (lazy, they are their own phase, ``D_reg``). A penalty whose weight is 0 is left out."""
    names = set(objective(cfg).penalties)
    if cfg.epsilon_drift:
        names.add("epsilon_penalty")
    if not cfg.lazy_regularization:
        names.update(p.name for p in gradient_penalties(cfg))
    return [p for name, p in PENALTIES.items() if name in names]
