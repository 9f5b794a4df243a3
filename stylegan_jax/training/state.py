"""The training state (one pytree), its initialisation, and the optimisers a config describes."""

from __future__ import annotations

from collections.abc import Sequence

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from stylegan_jax import image_size
from stylegan_jax.errors import ConfigError


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue bit-identically (the data iterator's position is saved beside).

    ``step`` counts iterations (NVIDIA's batch_idx); ``key`` is the raw root PRNG key (uint32[2]) from
    which every iteration derives its own with ``fold_in(key, step)``. ``aug`` is the augmentation's state:
    ``{}`` without augmentation, else ``{"p": float32 [], "signs": float32 [2]}`` (the probability, and the
    sum and count of sign(D(real)) since ADA's last update). Departure: p is saved and restored with the rest, so
    a resumed ADA run continues p exactly; NVIDIA's restarts it at ``augment_p`` (its resume copies G, D and G_ema
    from the pickle, not the augment pipe).
    """

    step: jax.Array
    key: jax.Array
    g_params: dict
    g_buffers: dict
    g_ema_params: dict
    g_ema_buffers: dict
    d_params: dict
    g_opt: optax.OptState
    d_opt: optax.OptState
    pl_mean: jax.Array
    aug: dict


def to_host(tree):
    """Replicated device arrays -> NumPy, on every process (each holds a full copy; ``jax.device_get`` refuses
    arrays that span processes)."""
    return jax.tree_util.tree_map(
        lambda x: np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else x, tree)


def lazy_ratio(reg_interval: int | None) -> float:
    """NVIDIA's lazy-regularisation factor interval / (interval + 1) (1 when not lazy)."""
    return reg_interval / (reg_interval + 1) if reg_interval else 1.0


def make_optimizer(lr: float, cfg: ml_collections.ConfigDict, reg_interval: int | None, scheduled: bool = False):
    """``cfg.optimizer``: Adam (``cfg.betas``, ``cfg.eps``) with NVIDIA's lazy-regularisation scaling, lr
    and betas scaled by interval / (interval + 1); or RMSProp as PyTorch's (decay 0.99, eps added after the
    square root), WGAN's optimiser; with ``cfg.adam_epsilon_hat``, Adam as TensorFlow's AdamOptimizer
    (`scale_by_tf_adam`). ``scheduled``: Adam's lr and b2 are set per step (`set_adam_schedule`)."""
    ratio = lazy_ratio(reg_interval)
    if cfg.optimizer == "adam" and cfg.adam_epsilon_hat:  # TF's AdamOptimizer (never scheduled: checked)
        return optax.chain(scale_by_tf_adam(cfg.betas[0] ** ratio, cfg.betas[1] ** ratio, cfg.eps),
                           optax.scale(-lr * ratio))
    if cfg.optimizer == "adam" and scheduled:
        return optax.inject_hyperparams(optax.adam)(learning_rate=lr * ratio, b1=cfg.betas[0] ** ratio,
                                                     b2=cfg.betas[1] ** ratio, eps=cfg.eps)
    if cfg.optimizer == "adam":
        return optax.adam(lr * ratio, b1=cfg.betas[0] ** ratio, b2=cfg.betas[1] ** ratio, eps=cfg.eps)
    if cfg.optimizer == "rmsprop":
        return optax.rmsprop(lr * ratio, decay=0.99, eps=cfg.eps, eps_in_sqrt=False)
    raise ConfigError(f"--config.optimizer: expected 'adam' or 'rmsprop', got {cfg.optimizer!r}")


def scale_by_tf_adam(b1: float, b2: float, eps: float) -> optax.GradientTransformation:
    """TensorFlow's AdamOptimizer (NVIDIA's TF code): m_hat / (sqrt(v_hat) + eps / sqrt(1 - b2^t)), i.e. its
    "epsilon hat" added to sqrt(v) before the bias correction; optax's ScaleByAdamState (count, mu, nu)."""
    base = optax.scale_by_adam(b1, b2, eps=0.0)

    def update(updates, state, params=None):
        count = optax.safe_int32_increment(state.count)
        mu = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
        nu = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, updates)
        t = count.astype(jnp.float32)
        scale = jnp.sqrt(1 - b2**t) / (1 - b1**t)
        out = jax.tree_util.tree_map(lambda m, v: scale * m / (jnp.sqrt(v) + eps), mu, nu)
        return out, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(base.init, update)


def set_adam_schedule(opt_state, lr, beta2, reg_interval: int | None):
    """A scheduled Adam's state (`make_optimizer` with ``scheduled``) with this step's lr and beta2, lazily
    scaled as the optimiser was built. As PyTorch's Adam, whose betas R3GAN changes every iteration, the
    bias correction uses the current beta2."""
    ratio = lazy_ratio(reg_interval)
    is_injected = lambda x: isinstance(x, optax.InjectHyperparamsState | optax.InjectStatefulHyperparamsState)  # noqa: E731

    def set_values(x):
        if not is_injected(x):
            return x
        hyper = dict(x.hyperparams)
        hyper["learning_rate"] = jnp.asarray(lr * ratio, hyper["learning_rate"].dtype)
        hyper["b2"] = jnp.asarray(beta2**ratio, hyper["b2"].dtype)
        return x._replace(hyperparams=hyper)

    return jax.tree_util.tree_map(set_values, opt_state, is_leaf=is_injected)


def with_frozen(tx: optax.GradientTransformation, frozen: list[str]) -> optax.GradientTransformation:
    """``tx`` on every parameter except those under the paths ``frozen`` (``'b256/fromrgb'``), which never
    change and keep no optimiser state (NVIDIA's frozen layers are buffers)."""
    if not frozen:
        return tx

    def labels(params):
        return jax.tree_util.tree_map(lambda f: "frozen" if f else "trained", frozen_mask(params, frozen))

    return optax.multi_transform({"trained": tx, "frozen": optax.set_to_zero()}, labels)


def frozen_mask(params, frozen: Sequence[str]):
    """A tree of ``params``' structure: True at the leaves under the paths ``frozen`` (``'b256/fromrgb'``)."""

    def is_frozen(path, _) -> bool:
        name = "/".join(str(k.key) for k in path)
        return any(name.startswith(f + "/") for f in frozen)

    return jax.tree_util.tree_map_with_path(is_frozen, params)


def init_state(cfg: ml_collections.ConfigDict, G, D, g_tx, d_tx) -> TrainState:
    """A fresh state from ``cfg.seed``: G_ema starts equal to G, pl_mean at 0."""
    key = jax.random.PRNGKey(cfg.seed)
    k_g, k_d = jax.random.split(jax.random.fold_in(key, 2**31 - 1))
    z = jnp.zeros((1, G.z_dim))
    c = jnp.zeros((1, G.c_dim))
    g_vars = G.init(k_g, z, c, noise_mode="const")
    d_vars = D.init(k_d, jnp.zeros((1, *image_size.parse(cfg.resolution), cfg.img_channels)), c)
    g_buffers = g_vars.get("buffers", {})
    return TrainState(
        step=jnp.zeros((), jnp.int32), key=key, g_params=g_vars["params"], g_buffers=g_buffers,
        g_ema_params=g_vars["params"], g_ema_buffers=g_buffers, d_params=d_vars["params"],
        g_opt=g_tx.init(g_vars["params"]), d_opt=d_tx.init(d_vars["params"]), pl_mean=jnp.zeros((), jnp.float32),
        aug={} if cfg.aug == "noaug" else {"p": jnp.float32(cfg.p), "signs": jnp.zeros(2, jnp.float32)},
    )
