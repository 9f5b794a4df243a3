"""The hyper-parameters of one iteration: constant, or cosine-decayed over the run (R3GAN's schedules).

R3GAN (``training/training_loop.py``) moves the learning rate, Adam's beta2, gamma, the G_ema half-life and
the augmentation probability from a base value to a final value along a half cosine over ``decay_nimg``
images, with no warm-up in any preset. Here the base values are the usual config keys (``G_lr``, ``D_lr``,
``betas[1]``, ``r1_gamma``, ``r2_gamma``, ``ema_kimg``, ``p``), the final values ``cfg.decay.<key>`` (None:
constant) and the length ``cfg.decay_kimg`` (0: nothing decays). `at` evaluates them inside the jitted
phases from the images seen before the iteration, so a schedule never recompiles.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from stylegan_jax import losses
from stylegan_jax.errors import ConfigError

#: The keys ``cfg.decay`` may schedule, and the config value each starts from.
SCHEDULED = ("G_lr", "D_lr", "beta2", "r1_gamma", "r2_gamma", "ema_kimg", "p")


def cosine_decay(nimg: jax.Array | float, base: float, final: float, total_nimg: float) -> jax.Array:
    """R3GAN's ``cosine_decay_with_warmup`` without warm-up or hold: ``base + (1 - d) * (final - base)`` with
    ``d = (1 + cos(pi * nimg / total_nimg)) / 2``, and ``final`` once ``nimg`` passes ``total_nimg``.
    ``1 - d`` is computed as ``sin(pi / 2 * nimg / total_nimg)^2`` (the same number, without float32's
    cancellation in the first steps)."""
    nimg = jnp.asarray(nimg, jnp.float32)
    progress = jnp.square(jnp.sin(jnp.float32(jnp.pi / 2) * nimg / jnp.float32(total_nimg)))
    return jnp.where(nimg > total_nimg, jnp.float32(final), base + progress * (final - base))


def base_values(cfg: ml_collections.ConfigDict) -> dict[str, float]:
    """Each `SCHEDULED` key's value at the start of the run (and throughout when it does not decay)."""
    return {"G_lr": cfg.G_lr, "D_lr": cfg.D_lr, "beta2": cfg.betas[1], "r1_gamma": cfg.r1_gamma,
            "r2_gamma": losses.r2_gamma(cfg), "ema_kimg": cfg.ema_kimg, "p": cfg.p}


def final_values(cfg: ml_collections.ConfigDict) -> dict[str, float]:
    """The `SCHEDULED` keys that decay, with their final values; R2's weight follows R1's schedule while
    ``r2_gamma`` is None (R3GAN's one gamma)."""
    if not cfg.decay_kimg:
        return {}
    finals = {k: v for k, v in cfg.decay.to_dict().items() if v is not None}
    if "r1_gamma" in finals and cfg.r2_gamma is None and losses.r2_gamma(cfg):
        finals.setdefault("r2_gamma", finals["r1_gamma"])
    return finals


def schedules_adam(cfg: ml_collections.ConfigDict) -> bool:
    """Whether the run changes Adam's lr or beta2 per step (its optimisers are built for it)."""
    return bool(final_values(cfg).keys() & {"G_lr", "D_lr", "beta2"})


def check(cfg: ml_collections.ConfigDict) -> None:
    """Schedules a run cannot use, as one error naming the keys."""
    if cfg.decay_kimg < 0:
        raise ConfigError(f"--config.decay_kimg: expected kimg >= 0, got {cfg.decay_kimg}")
    unknown = sorted(set(cfg.decay.to_dict()) - set(SCHEDULED))
    if unknown:
        raise ConfigError(f"--config.decay: unknown keys {unknown}; expected some of {list(SCHEDULED)}")
    finals = final_values(cfg)
    for key in ("r1_gamma", "r2_gamma"):
        if not base_values(cfg)[key] and finals.get(key):  # a penalty weighted 0 is never computed
            start = ("r1_gamma 0 (--gamma or --config.r1_gamma)" if key == "r1_gamma" else
                     "r2_gamma 0 (--config.r2_gamma)" if cfg.r2_gamma is not None else
                     f"r2_gamma None (following r1_gamma {cfg.r1_gamma} under this objective, or R2 off)")
            raise ConfigError(f"{start} turns the penalty off, but the run schedules {key} to {finals[key]} "
                              f"(--config.decay.{key}): give --config.decay.{key}=None too to keep it off, or a "
                              "start above 0")
    if "p" in finals and cfg.aug != "fixed":
        raise ConfigError(f"--config.decay.p: a scheduled augmentation probability needs --aug=fixed, got {cfg.aug!r}")
    if finals.keys() & {"G_lr", "D_lr", "beta2"} and cfg.optimizer != "adam":
        raise ConfigError("--config.decay: scheduling lr or beta2 needs --config.optimizer='adam'")


def at(cfg: ml_collections.ConfigDict, nimg: jax.Array | float) -> dict:
    """Every `SCHEDULED` key's value after ``nimg`` images, plus the constant penalty weights ``wgan_lambda``
    and ``epsilon_drift``: Python floats where constant (so an unscheduled run computes exactly as before),
    float32 scalars where decaying."""
    values: dict = base_values(cfg)
    for key, final in final_values(cfg).items():
        values[key] = cosine_decay(nimg, values[key], final, cfg.decay_kimg * 1000)
    return {**values, "wgan_lambda": cfg.wgan_lambda, "epsilon_drift": cfg.epsilon_drift}


def progress(cfg: ml_collections.ConfigDict, nimg: float) -> dict[str, float]:
    """R3GAN's per-tick record of a scheduled run, its values after ``nimg`` images: ``Progress/lr`` (G's),
    ``Progress/ema_mimg`` (the G_ema half-life in Mimg), ``Progress/beta2`` and ``Progress/gamma`` (R1's);
    {} for a run that schedules nothing."""
    if not final_values(cfg):
        return {}
    values = {k: float(v) for k, v in at(cfg, nimg).items()}
    return {"Progress/lr": values["G_lr"], "Progress/ema_mimg": values["ema_kimg"] / 1000,
            "Progress/beta2": values["beta2"], "Progress/gamma": values["r1_gamma"]}
