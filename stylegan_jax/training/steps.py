"""The jitted training phases (NVIDIA's training_loop + StyleGAN2Loss, generalised to the lineage), data-parallel.

Each iteration runs the phases ``G_main`` (every ``n_critic`` iterations), ``G_reg`` (every
``G_reg_interval``), ``D_main`` (which also updates G_ema and counts the iteration) and ``D_reg`` (every
``D_reg_interval``); each is one ``jax.jit`` compiled once per training resolution, parameters replicated and
the batch sharded over the mesh's ``data`` axis. Every phase takes the fade-in ``alpha`` as an input.

The phases ask the model family (``models.registry.Family``), never the network classes: a family with a
mapping network (``has_mapping``: StyleGAN1, StyleGAN2) runs as NVIDIA's StyleGAN2Loss (style mixing,
path-length regularisation, ``w_avg``); the others (DCGAN, PGGAN) call ``G(z, c)`` directly, with batch-norm
buffers when ``batch_norm``. The objective is a value (``losses.objective(cfg)``), and D's main step adds
the regularisers ``losses.d_main_penalties(cfg)`` lists (WGAN-GP's gradient penalty, PGGAN's epsilon-drift,
R1 when not lazy); WGAN's weight clipping follows the update.

Per-GPU semantics, independent of the device count: the global batch is split into ``K = batch /
batch_gpu`` minibatches of NVIDIA's per-GPU size ``batch_gpu`` (arrays [K, batch_gpu, ...], K sharded
over the devices). Within one minibatch, as within one of NVIDIA's GPUs: the minibatch-stddev groups of
D, one style-mixing crossover, one update of ``w_avg`` and ``pl_mean`` (the K minibatches applied in
order, as K rounds on one GPU). Gradients are means over the global batch (NVIDIA with one round per GPU).
So 1 device and 4 devices compute the same step, to float rounding.

Batch norm (DCGAN): statistics per minibatch (as per GPU); G's running averages become the mean over the K
minibatches of each one's update.

Departure: NVIDIA draws the generated images' labels from the whole dataset; here they are the real
batch's labels in a random order (the same distribution, no extra pass over the dataset).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from stylegan_jax import losses
from stylegan_jax.augment import AUGPIPE_PRESETS, AugmentPipe
from stylegan_jax.errors import ConfigError
from stylegan_jax.models.registry import Family
from stylegan_jax.ops.conv2d_resample import gradient_rule
from stylegan_jax.ops.gaussian_blur import gaussian_blur
from stylegan_jax.training.schedule import fade_reals
from stylegan_jax.training.state import TrainState

PHASES = ("G_main", "G_reg", "D_main", "D_reg", "ADA")

#: What each call of D folds into its minibatch's key to draw its augmentation: G's fakes, D's fakes, D's
#: reals (also R1's within D_main: the same augmented reals, as NVIDIA's Dboth), D_reg's reals.
AUG_G, AUG_FAKE, AUG_REAL, AUG_R1 = 10, 11, 12, 13


@dataclass(frozen=True)
class Layout:
    """How the global batch maps onto minibatches and devices."""

    batch_size: int
    batch_gpu: int
    num_devices: int

    @property
    def minibatches(self) -> int:
        return self.batch_size // self.batch_gpu


def make_layout(cfg: ml_collections.ConfigDict, num_devices: int, batch_size: int | None = None,
                batch_gpu: int | None = None) -> Layout:
    """Check the batch arithmetic (``cfg``'s, or one resolution's of a growing run) with errors naming the
    config keys."""
    batch_size = batch_size or cfg.batch_size
    given = cfg.batch_gpu if batch_gpu is None else batch_gpu
    if batch_size < 1 or given < 0:
        raise ConfigError(f"--config.batch_size={batch_size}, --config.batch_gpu={given}: expected a positive "
                          "batch and a non-negative batch_gpu (0: batch_size / devices)")
    if not given and batch_size % num_devices:
        raise ConfigError(f"--config.batch_size={batch_size} cannot be split over {num_devices} devices; use a "
                          f"multiple of {num_devices} or set --config.batch_gpu")
    batch_gpu = given or batch_size // num_devices
    if batch_size % batch_gpu:
        raise ConfigError(f"--config.batch_size={batch_size} is not a multiple of --config.batch_gpu={batch_gpu}")
    layout = Layout(batch_size, batch_gpu, num_devices)
    if layout.minibatches % num_devices:
        raise ConfigError(f"batch_size / batch_gpu = {layout.minibatches} minibatches cannot be split over "
                         f"{num_devices} devices; set --config.batch_gpu so that it divides evenly")
    group = min(cfg.D.get("mbstd_group_size") or batch_gpu, batch_gpu)
    if batch_gpu % group:
        raise ConfigError(f"D.mbstd_group_size {cfg.D.mbstd_group_size} (clamped to {group}) does not divide "
                         f"the per-device batch batch_gpu {batch_gpu}")
    if cfg.pl_weight and batch_gpu // cfg.pl_batch_shrink < 1:
        raise ConfigError(f"batch_gpu {batch_gpu} is smaller than pl_batch_shrink {cfg.pl_batch_shrink}")
    return layout


def update_w_avg(w_avg: jax.Array, w_means: jax.Array, beta: float) -> jax.Array:
    """Apply the K minibatches' mean w [K, w_dim] in order: w_avg = mean + beta * (w_avg - mean)."""

    def step(avg, mean):
        return mean + beta * (avg - mean), None

    return jax.lax.scan(step, w_avg, w_means)[0]


def clean_grads(grads):
    """NVIDIA's ``nan_to_num(nan=0, posinf=1e5, neginf=-1e5)`` on every gradient."""
    return jax.tree_util.tree_map(lambda g: jnp.nan_to_num(g, nan=0.0, posinf=1e5, neginf=-1e5), grads)


class Phases:
    """The phases as pure functions of (state, reals [K, B, H, W, C], labels [K, B, c_dim], alpha []) at one
    training resolution (``resolution`` None: the networks' own, not growing)."""

    def __init__(self, cfg: ml_collections.ConfigDict, family: Family, G, D, g_tx, d_tx, layout: Layout,
                 resolution: int | None = None):
        self.cfg, self.G, self.D, self.g_tx, self.d_tx, self.layout = cfg, G, D, g_tx, d_tx, layout
        self.resolution = resolution
        self.style = family.has_mapping
        self.batch_norm = family.batch_norm
        # The phases whose G forward updates G's tracked averages (w_avg; StyleGAN3's magnitude EMAs).
        self.tracking = ("D_main",) if family.emas_in_d_main else ("G_main", "G_reg", "D_main")
        self.magnitude_beta = (G.synthesis_kwargs or {}).get("magnitude_ema_beta") if family.emas_in_d_main else None
        self.objective = losses.objective(cfg)
        self.penalties = losses.d_main_penalties(cfg)
        self.augment = augment_pipe(cfg)

    def grow(self, alpha) -> dict:
        """The growing networks' keyword arguments ({} when not growing)."""
        return {} if self.resolution is None else {"resolution": self.resolution, "alpha": alpha}

    # -- networks on one minibatch ------------------------------------------------------------------
    def run_G(self, g_params, g_buffers, z, c, key, alpha, track: bool = False):
        """z [B, z_dim], c [B, c_dim] -> (images [B, H, W, C], ws [B, num_ws, w_dim] or None, the buffer
        statistics of this minibatch: {"w": mean w [w_dim], "magnitude": the magnitude EMAs' inputs (with
        ``track``, for a family that tracks them)}, G's updated batch-norm buffers, or None)."""
        G = self.G
        variables = {"params": g_params, "buffers": g_buffers}
        k_cut, k_prob, k_z, k_noise = jax.random.split(key, 4)
        if not self.style:
            if self.batch_norm:
                img, new = G.apply(variables, z, c, train=True, **self.grow(alpha), rngs={"noise": k_noise},
                                   mutable=["buffers"])
                return img, None, new["buffers"]
            return G.apply(variables, z, c, **self.grow(alpha), rngs={"noise": k_noise}), None, None
        prob = self.cfg.style_mixing_prob
        ws = G.apply(variables, z, c, method="map")
        stats = {"w": jnp.mean(ws[:, 0], axis=0)}
        if prob > 0:
            num_ws = ws.shape[1]
            if self.resolution is not None:  # NVIDIA: the crossover among the layers in use
                num_ws = max(num_ws - 2 * int(np.log2(self.cfg.resolution // self.resolution)), 1)
            cutoff = jax.random.randint(k_cut, (), 1, num_ws)
            cutoff = jnp.where(jax.random.uniform(k_prob) < prob, cutoff, num_ws)
            mixed = G.apply(variables, jax.random.normal(k_z, z.shape), c, method="map")
            ws = jnp.where(jnp.arange(ws.shape[1])[None, :, None] < cutoff, ws, mixed)
        if track and self.magnitude_beta is not None:
            img, out = self.G.apply(variables, ws, "random", update_emas=True, rngs={"noise": k_noise},
                                    method="synthesize", mutable=["buffers", "ema_stats"])
            return img, ws, {**stats, "magnitude": out["ema_stats"]}
        return self.synthesize(g_params, g_buffers, ws, k_noise, alpha), ws, stats

    def synthesize(self, g_params, g_buffers, ws, key, alpha):
        return self.G.apply({"params": g_params, "buffers": g_buffers}, ws, "random", **self.grow(alpha),
                            rngs={"noise": key}, method="synthesize")

    def blur_sigma(self, state) -> jax.Array | None:
        """StyleGAN3-R's blur of D's images at this iteration: ``blur_init_sigma`` fading linearly to 0 over
        ``blur_fade_kimg`` (the images seen before the iteration); None when the run does not blur."""
        cfg = self.cfg
        if not (cfg.blur_init_sigma > 0 and cfg.blur_fade_kimg > 0):
            return None
        nimg = state.step.astype(jnp.float32) * self.layout.batch_size
        return jnp.maximum(1 - nimg / (cfg.blur_fade_kimg * 1000), 0) * cfg.blur_init_sigma

    def run_D(self, d_params, img, c, alpha, aug: dict, key, blur_sigma=None):
        """D's logits [B, 1] of images [B, H, W, C] (labels c [B, c_dim]), blurred first when ``blur_sigma``
        is given (StyleGAN3-R), then augmented when the run augments (``aug``: the state's augmentation,
        ``key`` its draw)."""
        if blur_sigma is not None:
            img = gaussian_blur(img, blur_sigma, self.cfg.blur_init_sigma)
        if self.augment is not None:
            img = self.augment(img, key, aug["p"])
        kwargs = {} if self.resolution is None else {"alpha": alpha}
        return self.D.apply({"params": d_params}, img, c, **kwargs)

    def run_D_on(self, d_params, state, img, c, alpha, keys, aug_draw: int):
        """`run_D` on the K minibatches [K, B, ...], minibatch k augmented with ``fold_in(keys[k], aug_draw)``."""
        blur = self.blur_sigma(state)

        def one(x, c, key):
            return self.run_D(d_params, x, c, alpha, state.aug, jax.random.fold_in(key, aug_draw), blur)

        return jax.vmap(one)(img, c, keys)

    def count_signs(self, state, real_logits) -> dict:
        """The augmentation state with sign(D(real)) of ``real_logits`` added to ADA's accumulator."""
        if not state.aug:
            return state.aug
        signs = jnp.stack([jnp.sum(jnp.sign(real_logits)), jnp.float32(real_logits.size)])
        return {**state.aug, "signs": state.aug["signs"] + signs}

    # -- shared pieces ------------------------------------------------------------------------------
    def latents(self, state, phase: int, labels, batch: int):
        """Per-phase z [K, batch, z_dim], generated labels [K, batch, c_dim], per-minibatch keys [K]."""
        k = self.layout.minibatches
        key = jax.random.fold_in(jax.random.fold_in(state.key, state.step), phase)
        k_z, k_c, k_run = jax.random.split(key, 3)
        z = jax.random.normal(k_z, (k, batch, self.G.z_dim))
        n = labels.shape[0] * labels.shape[1]
        flat = labels.reshape(n, labels.shape[2])
        c = flat[jax.random.permutation(k_c, n)].reshape(labels.shape)[:, :batch]
        return z, c, jax.random.split(k_run, k)

    def generate(self, g_params, state, z, c, keys, alpha, phase: str):
        """G on the K minibatches: (images [K, B, H, W, C], the new G buffers: updated when ``phase`` is one
        where the family tracks its averages)."""
        track = phase in self.tracking
        img, _, stats = jax.vmap(functools.partial(self.run_G, track=track), (None, None, 0, 0, 0, None))(
            g_params, state.g_buffers, z, c, keys, alpha)
        return img, self.new_buffers(state, stats) if track else state.g_buffers

    def new_buffers(self, state, stats):
        """G's buffers after the K minibatches: ``w_avg`` (and StyleGAN3's magnitude EMAs) updated with each
        minibatch's mean in order, or the mean of the minibatches' batch-norm updates."""
        if self.batch_norm:
            return jax.tree_util.tree_map(lambda x: jnp.mean(x, axis=0), stats)
        if not self.style:
            return state.g_buffers
        magnitudes = flax.traverse_util.flatten_dict(stats.get("magnitude", {}))
        flat = flax.traverse_util.flatten_dict(state.g_buffers)
        for k, v in flat.items():
            if k[-1] == "w_avg":
                flat[k] = update_w_avg(v, stats["w"], self.cfg.G.w_avg_beta)
            elif k in magnitudes:  # sown as a one-element tuple per minibatch: [K]
                flat[k] = update_w_avg(v, magnitudes[k][0], self.magnitude_beta)
        return flax.traverse_util.unflatten_dict(flat)

    def reals(self, reals, alpha):
        """Reals faded between this resolution and the one below while a fade-in runs (growing only)."""
        return reals if self.resolution is None else fade_reals(reals, alpha)

    # -- phases -------------------------------------------------------------------------------------
    def g_main(self, state: TrainState, reals, labels, alpha):
        z, c, keys = self.latents(state, 0, labels, self.layout.batch_gpu)

        def loss_fn(g_params):
            img, g_buffers = self.generate(g_params, state, z, c, keys, alpha, "G_main")
            logits = self.run_D_on(state.d_params, state, img, c, alpha, keys, AUG_G)
            return jnp.mean(self.objective.generator(logits)), (g_buffers, jnp.mean(logits))

        (loss, (g_buffers, fake_score)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
        updates, g_opt = self.g_tx.update(clean_grads(grads), state.g_opt, state.g_params)
        state = state.replace(g_params=optax.apply_updates(state.g_params, updates), g_opt=g_opt,
                              g_buffers=g_buffers)
        return state, {"Loss/G/loss": loss, "Loss/scores/fake_G": fake_score}

    def g_reg(self, state: TrainState, reals, labels, alpha):
        cfg = self.cfg
        z, c, keys = self.latents(state, 1, labels, self.layout.batch_gpu // cfg.pl_batch_shrink)

        def lengths_of(g_params, z, c, key):
            k_g, k_pl = jax.random.split(key)
            _, ws, stats = self.run_G(g_params, state.g_buffers, z, c, k_g, alpha)
            k_noise = jax.random.fold_in(k_g, 1)
            fn = lambda ws: self.synthesize(g_params, state.g_buffers, ws, k_noise, alpha)  # noqa: E731
            return losses.path_lengths(fn, ws, k_pl), stats

        def loss_fn(g_params):
            lengths, w_means = jax.vmap(lengths_of, (None, 0, 0, 0))(g_params, z, c, keys)  # [K, B]
            means = losses.update_pl_mean(state.pl_mean, jnp.mean(lengths, axis=1), cfg.pl_decay)
            penalty = losses.path_length_penalty(lengths, means[:, None])
            loss = jnp.mean(penalty * cfg.pl_weight) * cfg.G_reg_interval
            return loss, (means[-1], w_means, jnp.mean(penalty))

        (_, (pl_mean, w_means, penalty)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
        updates, g_opt = self.g_tx.update(clean_grads(grads), state.g_opt, state.g_params)
        g_buffers = self.new_buffers(state, w_means) if "G_reg" in self.tracking else state.g_buffers
        state = state.replace(g_params=optax.apply_updates(state.g_params, updates), g_opt=g_opt,
                              g_buffers=g_buffers, pl_mean=pl_mean)
        return state, {"Loss/pl_penalty": penalty, "Loss/pl_mean": pl_mean}

    def d_main(self, state: TrainState, reals, labels, alpha):
        cfg = self.cfg
        z, c, keys = self.latents(state, 2, labels, self.layout.batch_gpu)
        img, g_buffers = self.generate(state.g_params, state, z, c, keys, alpha, "D_main")
        img = jax.lax.stop_gradient(img)
        blur = self.blur_sigma(state)
        reals = self.reals(reals, alpha)

        def loss_fn(d_params):
            fake = self.run_D_on(d_params, state, img, c, alpha, keys, AUG_FAKE)
            real = self.run_D_on(d_params, state, reals, labels, alpha, keys, AUG_REAL)
            loss_fake, loss_real = self.objective.discriminator(fake, real)
            loss, extra = jnp.mean(loss_fake) + jnp.mean(loss_real), {}
            for penalty in self.penalties:
                def per_minibatch(x, y, c, logits, key, penalty=penalty):
                    def d_fn(v):
                        return self.run_D(d_params, v, c, alpha, state.aug, jax.random.fold_in(key, AUG_REAL), blur)

                    return penalty.per_sample(d_fn, x, y, logits, jax.random.fold_in(key, 1))

                value = jnp.mean(jax.vmap(per_minibatch)(reals, img, labels, real, keys))
                extra[f"Loss/{penalty.name}"] = value
                loss = loss + value * penalty.weight(cfg)
            return loss, (jnp.mean(fake), real, extra)

        (loss, (fake, real_logits, extra)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
        real = jnp.mean(real_logits)
        updates, d_opt = self.d_tx.update(clean_grads(grads), state.d_opt, state.d_params)
        d_params = optax.apply_updates(state.d_params, updates)
        if cfg.wgan_clip:
            d_params = jax.tree_util.tree_map(lambda p: jnp.clip(p, -cfg.wgan_clip, cfg.wgan_clip), d_params)

        # G_ema: a fixed beta (PGGAN), or a half-life of ema_kimg optionally ramped up with the images seen so
        # far; buffers copied.
        batch = self.layout.batch_size
        if cfg.ema_beta is not None:
            beta = jnp.float32(cfg.ema_beta)
        else:
            ema_nimg = jnp.float32(cfg.ema_kimg * 1000)
            if cfg.ema_rampup is not None:
                ema_nimg = jnp.minimum(ema_nimg, state.step.astype(jnp.float32) * batch * cfg.ema_rampup)
            beta = jnp.float32(0.5) ** (batch / jnp.maximum(ema_nimg, 1e-8))
        g_ema = jax.tree_util.tree_map(lambda p, e: p + beta * (e - p), state.g_params, state.g_ema_params)
        state = state.replace(d_params=d_params, d_opt=d_opt, g_buffers=g_buffers, g_ema_params=g_ema,
                              g_ema_buffers=g_buffers, step=state.step + 1, aug=self.count_signs(state, real_logits))
        return state, {"Loss/D/loss": loss, "Loss/scores/fake": fake, "Loss/scores/real": real, **extra}

    def d_reg(self, state: TrainState, reals, labels, alpha):
        cfg = self.cfg
        reals = self.reals(reals, alpha)
        keys = jax.random.split(jax.random.fold_in(jax.random.fold_in(state.key, state.step), 3),
                                self.layout.minibatches)
        blur = self.blur_sigma(state)

        def loss_fn(d_params):
            def penalty_of(x, c, key):  # R1 with respect to the reals before blur and augmentation
                def d_fn(x):
                    return self.run_D(d_params, x, c, alpha, state.aug, jax.random.fold_in(key, AUG_R1), blur)

                return losses.r1_penalty(d_fn, x)

            penalty, logits = jax.vmap(penalty_of)(reals, labels, keys)  # [K, B], [K, B, 1]
            return jnp.mean(penalty * (cfg.r1_gamma / 2)) * cfg.D_reg_interval, (jnp.mean(penalty), logits)

        (_, (penalty, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
        updates, d_opt = self.d_tx.update(clean_grads(grads), state.d_opt, state.d_params)
        return state.replace(d_params=optax.apply_updates(state.d_params, updates), d_opt=d_opt,
                             aug=self.count_signs(state, logits)), {"Loss/r1_penalty": penalty}

    def ada(self, state: TrainState, reals, labels, alpha):
        """NVIDIA's ADA heuristic, every ``ada_interval`` iterations: p moves by ``sign(E[sign(D(real))] -
        ada_target) * batch * ada_interval / (ada_kimg * 1000)`` (the mean over every real D saw since the
        last update, in D_main and D_reg), clamped to [0, 1] (NVIDIA clamps only at 0)."""
        cfg = self.cfg
        total, count = state.aug["signs"][0], state.aug["signs"][1]
        mean = total / jnp.maximum(count, 1)
        adjust = jnp.sign(mean - cfg.ada_target) * (self.layout.batch_size * cfg.ada_interval / (cfg.ada_kimg * 1000))
        p = jnp.clip(state.aug["p"] + adjust, 0, 1).astype(jnp.float32)
        return state.replace(aug={"p": p, "signs": jnp.zeros_like(state.aug["signs"])}), {"Loss/signs/real": mean}


#: The key of a phase's output that says whether its losses and updated parameters are all finite (a bool).
FINITE = "finite"


def all_finite(tree) -> jax.Array:
    """True when every element of every leaf of ``tree`` is finite (a scalar bool, computed on device)."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


def augment_pipe(cfg: ml_collections.ConfigDict) -> AugmentPipe | None:
    """The run's `AugmentPipe` (``cfg.augpipe``: a preset name or AugmentPipe's keyword arguments), or None
    when ``cfg.aug`` is 'noaug'."""
    if cfg.aug not in ("noaug", "ada", "fixed"):
        raise ConfigError(f"--aug: expected 'noaug', 'ada' or 'fixed', got {cfg.aug!r}")
    if cfg.aug == "noaug":
        return None
    spec = cfg.augpipe
    if isinstance(spec, str):
        if spec not in AUGPIPE_PRESETS:
            raise ConfigError(f"--augpipe: unknown preset {spec!r}; expected one of {sorted(AUGPIPE_PRESETS)} or a "
                              "dict of AugmentPipe's keyword arguments")
        return AugmentPipe.preset(spec)
    try:
        return AugmentPipe(**dict(spec))
    except TypeError as e:
        raise ConfigError(f"--augpipe: {e}") from None


def compile_phases(phases: Phases, conv_grad: str = "xla") -> dict:
    """Each phase jitted once, the state donated, traced under ``conv2d``'s gradient rule ``conv_grad``
    (``'xla'`` or ``'forward'``: `resolve_conv_grad`). A phase returns ``(state, outputs)``: its reported
    losses and, under `FINITE`, whether they and the updated G and D parameters are all finite. The shardings
    come from the inputs: the caller places the state replicated (``P()``) and the batch sharded over ``data``
    (``P('data')``), and XLA keeps the updated state replicated (the compile-count test checks that nothing
    reshards). No explicit ``in_shardings``/``out_shardings``: they made a CPU phase slower
    (docs/performance.md, "Explicit in/out shardings")."""
    fns = {"G_main": phases.g_main, "G_reg": phases.g_reg, "D_main": phases.d_main, "D_reg": phases.d_reg,
           "ADA": phases.ada}

    def scoped(fn):
        @functools.wraps(fn)  # the phase's name in compile logs
        def phase(*args):
            with gradient_rule(conv_grad):
                state, out = fn(*args)
            return state, {**out, FINITE: all_finite((out, state.g_params, state.d_params))}

        return phase

    return {name: jax.jit(scoped(fn), donate_argnums=0) for name, fn in fns.items()}


def resolve_conv_grad(choice: str, mesh_devices: int, backend: str) -> str:
    """``cfg.conv_grad`` for a run on ``mesh_devices`` devices of ``backend``: ``'auto'`` is ``'forward'``
    on one CPU device (faster second-order gradients: docs/performance.md) and ``'xla'`` otherwise; forcing
    ``'forward'`` over a sharded minibatch axis (more than one device), where XLA's partitioner computes
    wrong weight gradients, is an error."""
    if choice not in ("auto", "xla", "forward"):
        raise ConfigError(f"--config.conv_grad: expected 'auto', 'xla' or 'forward', got {choice!r}")
    if choice == "auto":
        return "forward" if backend == "cpu" and mesh_devices == 1 else "xla"
    if choice == "forward" and mesh_devices > 1:
        raise ConfigError(f"--config.conv_grad='forward' on {mesh_devices} devices: its weight gradients are wrong "
                         "when the minibatch axis is sharded (XLA's partitioner); use 'xla' or 'auto'")
    return choice


def active_phases(cfg: ml_collections.ConfigDict, step: int) -> list[str]:
    """The phases iteration ``step`` runs, in NVIDIA's order: G_main every ``n_critic`` iterations (each
    iteration shows D one real batch), G_reg and D_reg when lazy (none when pl_weight / r1_gamma is 0), then
    ADA's update of p every ``ada_interval`` iterations."""
    names = ["G_main"] if step % cfg.n_critic == 0 else []
    if cfg.pl_weight and cfg.lazy_regularization and step % cfg.G_reg_interval == 0:
        names.append("G_reg")
    names.append("D_main")
    if cfg.r1_gamma and cfg.lazy_regularization and step % cfg.D_reg_interval == 0:
        names.append("D_reg")
    if cfg.aug == "ada" and (step + 1) % cfg.ada_interval == 0:  # NVIDIA: after the iteration, on batch_idx
        names.append("ADA")
    return names


def check_config(cfg: ml_collections.ConfigDict, family: Family) -> None:
    """Values and combinations a run cannot use, as one clear error naming the keys; checked before the
    first step, so that nothing fails at the first save."""
    for key, lowest in (("kimg", 0), ("tick", 0)):
        if not (isinstance(cfg[key], int | float) and math.isfinite(cfg[key]) and cfg[key] > lowest):
            raise ConfigError(f"--{key}: expected a positive number of kimg, got {cfg[key]!r}")
    for key, flag in (("snap", "--snap"), ("keep", "--config.keep")):
        if not (isinstance(cfg[key], int) and cfg[key] >= 1):
            raise ConfigError(f"{flag}: expected a whole number >= 1, got {cfg[key]!r}")
    losses.objective(cfg)
    augment_pipe(cfg)
    if cfg.aug != "noaug" and not 0 <= cfg.p <= 1:
        raise ConfigError(f"--p: expected a probability in [0, 1], got {cfg.p!r}")
    if cfg.aug == "ada" and not (cfg.ada_interval >= 1 and cfg.ada_kimg > 0 and 0 <= cfg.ada_target <= 1):
        raise ConfigError(f"--config.ada_interval={cfg.ada_interval}, ada_kimg={cfg.ada_kimg}, --target="
                          f"{cfg.ada_target}: expected an interval >= 1, a positive kimg and a target in [0, 1]")
    if cfg.growing.initial_resolution and not family.grows:
        raise ConfigError(f"--config.growing.initial_resolution={cfg.growing.initial_resolution}: model "
                         f"{cfg.model!r} does not grow (set it to 0)")
    if cfg.pl_weight and not family.has_mapping:
        raise ConfigError(f"--config.pl_weight={cfg.pl_weight}: path-length regularisation needs a mapping network; "
                         f"model {cfg.model!r} has none (set pl_weight=0)")
    if cfg.pl_weight and not cfg.lazy_regularization:
        raise ConfigError("--config.pl_weight needs lazy_regularization=True (NVIDIA's configs use PL only lazily)")
    if cfg.n_critic < 1:
        raise ConfigError(f"--config.n_critic must be >= 1, got {cfg.n_critic}")
