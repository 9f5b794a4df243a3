"""The jitted training phases (NVIDIA's training_loop + StyleGAN2Loss, generalised to the lineage), data-parallel.

Each iteration runs the phases ``G_main`` (every ``n_critic`` iterations), ``G_reg`` (every
``G_reg_interval``), ``D_main`` (which also updates G_ema and counts the iteration) and ``D_reg`` (every
``D_reg_interval``); with ``d_first`` (R3GAN's Trainer; PGGAN's and StyleGAN1's TF loops) D's phases come
first and ``G_main`` ends the iteration, and with ``ema_before_g_step`` too, D_main updates G_ema (the TF
loops' ``Gs_update_op``). Each is one ``jax.jit`` compiled once per training resolution, parameters replicated and the
batch sharded over the mesh's ``data`` axis. Every phase takes the fade-in ``alpha`` and the images seen
before the iteration ``nimg`` (NVIDIA's ``cur_nimg``, one for all of an iteration's phases) as inputs, and
evaluates from ``nimg`` the iteration's hyper-parameters (``training.hyperparams``: R3GAN's cosine
schedules), StyleGAN3-R's blur and G_ema's ramp-up itself. ``nimg`` is the loop's count, not the step times
the batch: a growing run's batch changes with the resolution.

The phases ask the model family (``models.registry.Family``), never the network classes: a family with a
mapping network (``has_mapping``: StyleGAN1, StyleGAN2) runs as NVIDIA's StyleGAN2Loss (style mixing,
path-length regularisation, ``w_avg``); the others (DCGAN, PGGAN) call ``G(z, c)`` directly, with batch-norm
buffers when ``batch_norm``. The objective is a value (``losses.objective(cfg)``), and D's main step adds
the regularisers ``losses.d_main_penalties(cfg)`` lists (WGAN-GP's gradient penalty, PGGAN's epsilon-drift,
R1 and R2 when not lazy); WGAN's weight clipping follows each of D's updates. A pairing objective (R3GAN's RpGAN)
pairs fake i with real i: its iteration's reals are [K, 2 * batch_gpu, ...], the first half D's and the
second G's (R3GAN draws a real batch for each), and the fakes take their real's label; under the others the
fakes take the labels of random training images (``training.labels``, NVIDIA's ``all_gen_c``), except D's
fakes with ``real_labels_for_d_fakes``, which take the real batch's in order (NVIDIA's TF losses).

Per-GPU semantics, independent of the device count: the global batch is split into ``K = batch /
batch_gpu`` minibatches of NVIDIA's per-GPU size ``batch_gpu`` (arrays [K, batch_gpu, ...], K sharded
over the devices). Within one minibatch, as within one of NVIDIA's GPUs: the minibatch-stddev groups of
D, one style-mixing crossover, one update of ``w_avg``, ``pl_mean`` and StyleGAN3's magnitude EMAs per
phase, which this minibatch's penalty or forward pass uses. As NVIDIA's GPUs each keep their own copy of
these buffers, the K minibatches update the same stored value, and the run keeps the mean of their K updated
values (NVIDIA keeps rank 0's): one update per phase with the global batch's mean, so the EMAs' half-lives
are those of NVIDIA's published runs (one round per GPU; StyleGAN3's magnitude beta is ``0.5 ** (batch /
20000)``). Gradients are means over the global batch (NVIDIA with one round per GPU). So 1 device and 4
devices compute the same step, to float rounding.

Batch norm (DCGAN): statistics per minibatch (as per GPU); G's running averages become the mean over the K
minibatches of each one's update.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from stylegan_jax import image_size, losses
from stylegan_jax.augment import AUGPIPE_PRESETS, AugmentPipe
from stylegan_jax.errors import ConfigError
from stylegan_jax.models.registry import Family, get_family, non_square_families
from stylegan_jax.ops.conv2d_resample import gradient_rule
from stylegan_jax.ops.gaussian_blur import gaussian_blur
from stylegan_jax.training import hyperparams
from stylegan_jax.training.labels import LabelDistribution
from stylegan_jax.training.schedule import fade_reals, full_resolution
from stylegan_jax.training.state import TrainState, frozen_mask, set_adam_schedule
from stylegan_jax.training.stats import report, reported_means

PHASES = ("G_main", "G_reg", "D_main", "D_reg", "ADA")
#: The indices of D's phases in `PHASES` (each phase folds its index into the iteration's key).
D_PHASES = (2, 3)

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
                batch_gpu: int | None = None, resolution: int | None = None) -> Layout:
    """Check the batch arithmetic (``cfg``'s, or that of a growing run's ``resolution``, whose batch and
    batch_gpu the tables may give) with errors naming the config keys."""
    batch_size = batch_size or cfg.batch_size
    given = cfg.batch_gpu if batch_gpu is None else batch_gpu
    if batch_size < 1 or given < 0:
        raise ConfigError(f"--config.batch_size={batch_size}, --config.batch_gpu={given}: expected a positive "
                          "batch and a non-negative batch_gpu (0: batch_size / devices)")
    if not given and batch_size % num_devices:
        raise ConfigError(f"--batch / --config.batch_size={batch_size} cannot be split over {num_devices} devices; "
                          f"use a multiple of {num_devices} or set --batch-gpu / --config.batch_gpu")
    batch_gpu = given or batch_size // num_devices
    if batch_size % batch_gpu:
        raise ConfigError(f"--batch / --config.batch_size={batch_size} is not a multiple of --batch-gpu / "
                          f"--config.batch_gpu={batch_gpu}")
    layout = Layout(batch_size, batch_gpu, num_devices)
    if layout.minibatches % num_devices:
        raise ConfigError(f"batch_size / batch_gpu = {layout.minibatches} minibatches cannot be split over "
                         f"{num_devices} devices; set --config.batch_gpu so that it divides evenly")
    group = min(cfg.D.get("mbstd_group_size") or batch_gpu, batch_gpu)
    if batch_gpu % group:
        origin = f"--batch-gpu {batch_gpu}" if given else f"--batch {batch_size} over {num_devices} device(s)"
        if resolution:
            origin += f" at {resolution}x{resolution}, or --config.growing.batch_size/batch_gpu there"
        raise ConfigError(f"the per-device batch {batch_gpu} ({origin}) is not a multiple of D's minibatch-stddev "
                          f"group {group} (--mbstd-group {cfg.D.mbstd_group_size}): change either")
    if cfg.pl_weight and batch_gpu // cfg.pl_batch_shrink < 1:
        raise ConfigError(f"batch_gpu {batch_gpu} is smaller than pl_batch_shrink {cfg.pl_batch_shrink}")
    return layout


def update_w_avg(w_avg: jax.Array, w_means: jax.Array, beta: float) -> jax.Array:
    """One update by the K minibatches' means [K, ...]: ``mean + beta * (w_avg - mean)`` with their mean, which
    is the mean of the K copies that NVIDIA's K GPUs each update by their own minibatch once per phase."""
    mean = jnp.mean(w_means, axis=0)
    return mean + beta * (w_avg - mean)


def clean_grads(grads):
    """NVIDIA's ``nan_to_num(nan=0, posinf=1e5, neginf=-1e5)`` on every gradient."""
    return jax.tree_util.tree_map(lambda g: jnp.nan_to_num(g, nan=0.0, posinf=1e5, neginf=-1e5), grads)


class Phases:
    """The phases as pure functions of (state, reals [K, B, H, W, C], labels [K, B, c_dim], alpha [] float32,
    nimg [] float32: the images seen before the iteration) at one training resolution (``resolution`` None: the
    networks' own, not growing). A conditional G's generated images take labels drawn from ``labels``, the
    training set's (required then, unless the objective pairs each fake with a real). ``frozen_d``: D's layers
    that ``d_tx`` leaves as they are (`with_frozen`; Freeze-D)."""

    def __init__(self, cfg: ml_collections.ConfigDict, family: Family, G, D, g_tx, d_tx, layout: Layout,
                 resolution: int | None = None, labels: LabelDistribution | None = None,
                 frozen_d: Sequence[str] = ()):
        self.cfg, self.G, self.D, self.g_tx, self.d_tx, self.layout = cfg, G, D, g_tx, d_tx, layout
        self.frozen = {"G": (), "D": tuple(frozen_d)}
        self.resolution = resolution
        self.objective = losses.objective(cfg)
        if G.c_dim and labels is None and not self.objective.pairs:
            raise ValueError("a conditional G's phases draw its labels from the training set's: pass `labels`")
        self.labels = labels
        # NVIDIA's TF networks take full-resolution images (the reals repeated up, G's images upscaled) and D
        # box-downsamples them: a penalty's dD/dx is taken there, the gradient at the training resolution
        # divided by the upscaling factor (progressive_growing_of_gans loss.py, stylegan training/loss.py)
        self.grad_scale = 1.0 if resolution is None else resolution / full_resolution(cfg)
        self.style = family.has_mapping
        self.batch_norm = family.batch_norm
        # The phases whose G forward updates G's tracked averages (w_avg; StyleGAN3's magnitude EMAs).
        self.tracking = ("D_main",) if family.emas_in_d_main else ("G_main", "G_reg", "D_main")
        self.magnitude_beta = (G.synthesis_kwargs or {}).get("magnitude_ema_beta") if family.emas_in_d_main else None
        self.penalties = losses.d_main_penalties(cfg)
        self.augment = augment_pipe(cfg)
        self.scheduled_adam = hyperparams.schedules_adam(cfg)
        self.scheduled_p = "p" in hyperparams.final_values(cfg)
        lazy = cfg.lazy_regularization  # as the optimisers were built (loop.Trainer.phases_for)
        self.reg_intervals = {"G": cfg.G_reg_interval if lazy else None, "D": cfg.D_reg_interval if lazy else None}

    def hyper(self, nimg) -> dict:
        """The hyper-parameters of the iteration after ``nimg`` images (`hyperparams.at`)."""
        return hyperparams.at(self.cfg, jnp.asarray(nimg).astype(jnp.float32))

    def aug_p(self, state, hyper: dict):
        """The augmentation probability of this iteration: scheduled (R3GAN), or the state's (ADA, fixed)."""
        if self.scheduled_p:
            return hyper["p"]
        return state.aug["p"] if state.aug else None

    def apply_updates(self, net: str, grads, opt_state, params, hyper: dict):
        """``net`` ('G' or 'D'): the optimiser step on the gradients (cleaned by `clean_grads` with
        ``cfg.grad_nan_to_num``), Adam's lr and beta2 set to the iteration's when they are scheduled, then D's
        trained parameters clipped to ``cfg.wgan_clip`` when it is set (WGAN's critic). Returns (new params, new
        optimiser state); with ``cfg.skip_nonfinite_updates``, ``params`` and ``opt_state`` as they were when any
        gradient of a trained parameter is not finite (the TensorFlow lineage's ``tf.cond(grad_ok, apply,
        no_op)``: neither the weights nor Adam's moments and step count move). Frozen layers (``frozen_d``)
        neither move nor count."""
        tx = self.g_tx if net == "G" else self.d_tx
        frozen = frozen_mask(params, self.frozen[net])
        before = params, opt_state
        if self.scheduled_adam:
            opt_state = set_adam_schedule(opt_state, hyper[f"{net}_lr"], hyper["beta2"], self.reg_intervals[net])
        updates, opt_state = tx.update(clean_grads(grads) if self.cfg.grad_nan_to_num else grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if net == "D" and self.cfg.wgan_clip:
            clip = self.cfg.wgan_clip
            params = jax.tree_util.tree_map(lambda p, f: p if f else jnp.clip(p, -clip, clip), params, frozen)
        if not self.cfg.skip_nonfinite_updates:
            return params, opt_state
        ok = all_finite(jax.tree_util.tree_map(lambda g, f: None if f else g, grads, frozen))
        return jax.tree_util.tree_map(lambda new, old: jnp.where(ok, new, old), (params, opt_state), before)

    def split(self, reals, labels, net: str):
        """The reals [K, B, ...] and labels of ``net``'s phase: under a pairing objective D's are the first
        half of each minibatch and G's the second, else all of them are D's."""
        if not self.objective.pairs:
            return reals, labels
        b = self.layout.batch_gpu
        part = slice(0, b) if net == "D" else slice(b, 2 * b)
        return reals[:, part], labels[:, part]

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
                num_ws = max(num_ws - 2 * int(np.log2(full_resolution(self.cfg) // self.resolution)), 1)
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

    def blur_sigma(self, nimg) -> jax.Array | None:
        """StyleGAN3-R's blur of D's images in the iteration after ``nimg`` images: ``blur_init_sigma`` fading
        linearly to 0 over ``blur_fade_kimg``; None when the run does not blur."""
        cfg = self.cfg
        if not (cfg.blur_init_sigma > 0 and cfg.blur_fade_kimg > 0):
            return None
        nimg = jnp.asarray(nimg).astype(jnp.float32)
        return jnp.maximum(1 - nimg / (cfg.blur_fade_kimg * 1000), 0) * cfg.blur_init_sigma

    def run_D(self, d_params, img, c, alpha, p, key, blur_sigma=None):
        """D's logits [B, 1] of images [B, H, W, C] (labels c [B, c_dim]), blurred first when ``blur_sigma``
        is given (StyleGAN3-R), then augmented when the run augments (``p``: the iteration's probability,
        ``key`` its draw)."""
        if blur_sigma is not None:
            img = gaussian_blur(img, blur_sigma, self.cfg.blur_init_sigma)
        if self.augment is not None:
            img = self.augment(img, key, p)
        kwargs = {} if self.resolution is None else {"alpha": alpha}
        return self.D.apply({"params": d_params}, img, c, **kwargs)

    def run_D_on(self, d_params, blur, img, c, alpha, keys, aug_draw: int, p, input_grads: bool = False):
        """`run_D` on the K minibatches [K, B, ...] (blurred by ``blur``: `blur_sigma`), minibatch k augmented
        with ``fold_in(keys[k], aug_draw)``: logits [K, B, 1]; with ``input_grads``, (logits, dD/d(img) [K, B,
        H, W, C]) from the same pass, the gradient taken before blur and augmentation (`losses.input_gradients`)."""

        def one(x, c, key):
            def d_fn(v):
                return self.run_D(d_params, v, c, alpha, p, jax.random.fold_in(key, aug_draw), blur)

            return losses.input_gradients(d_fn, x) if input_grads else d_fn(x)

        return jax.vmap(one)(img, c, keys)

    def count_signs(self, state, real_logits) -> dict:
        """The augmentation state with sign(D(real)) of ``real_logits`` added to ADA's accumulator."""
        if not state.aug:
            return state.aug
        signs = jnp.stack([jnp.sum(jnp.sign(real_logits)), jnp.float32(real_logits.size)])
        return {**state.aug, "signs": state.aug["signs"] + signs}

    # -- shared pieces ------------------------------------------------------------------------------
    def latents(self, state, phase: int, labels, batch: int):
        """Per-phase z [K, batch, z_dim], generated labels [K, batch, c_dim] (random training images'; the reals'
        own under a pairing objective, as R3GAN's, and in D's phases with ``real_labels_for_d_fakes``, as NVIDIA's
        TF losses), per-minibatch keys [K]."""
        k = self.layout.minibatches
        key = jax.random.fold_in(jax.random.fold_in(state.key, state.step), phase)
        k_z, k_c, k_run = jax.random.split(key, 3)
        z = jax.random.normal(k_z, (k, batch, self.G.z_dim))
        if self.objective.pairs or not self.G.c_dim or (phase in D_PHASES and self.cfg.real_labels_for_d_fakes):
            return z, labels[:, :batch], jax.random.split(k_run, k)
        return z, self.labels.draw(k_c, (k, batch)), jax.random.split(k_run, k)

    def generate(self, g_params, state, z, c, keys, alpha, phase: str):
        """G on the K minibatches: (images [K, B, H, W, C], the new G buffers: updated when ``phase`` is one
        where the family tracks its averages)."""
        track = phase in self.tracking
        img, _, stats = jax.vmap(functools.partial(self.run_G, track=track), (None, None, 0, 0, 0, None))(
            g_params, state.g_buffers, z, c, keys, alpha)
        return img, self.new_buffers(state, stats) if track else state.g_buffers

    def new_buffers(self, state, stats):
        """G's buffers after the K minibatches: the mean of the K minibatches' updates of ``w_avg`` (and
        StyleGAN3's magnitude EMAs, `update_w_avg`), or of their batch-norm updates."""
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
    def g_main(self, state: TrainState, reals, labels, alpha, nimg):
        hyper, blur = self.hyper(nimg), self.blur_sigma(nimg)
        p = self.aug_p(state, hyper)
        reals, labels = self.split(reals, labels, "G")
        z, c, keys = self.latents(state, 0, labels, self.layout.batch_gpu)
        real = None
        if self.objective.pairs:  # D's logits of G's real batch, fixed (R3GAN: the reals are detached)
            real = self.run_D_on(state.d_params, blur, self.reals(reals, alpha), labels, alpha, keys, AUG_REAL, p)

        def loss_fn(g_params):
            img, g_buffers = self.generate(g_params, state, z, c, keys, alpha, "G_main")
            logits = self.run_D_on(state.d_params, blur, img, c, alpha, keys, AUG_G, p)
            loss = self.objective.generator(logits, real) if self.objective.pairs else self.objective.generator(logits)
            return jnp.mean(loss), (g_buffers, loss, logits)

        (_, (g_buffers, loss, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
        g_params, g_opt = self.apply_updates("G", grads, state.g_opt, state.g_params, hyper)
        state = state.replace(g_params=g_params, g_opt=g_opt, g_buffers=g_buffers)
        if self.cfg.d_first:  # G's step ends the iteration
            state = self.end_iteration(state, hyper, nimg)
        return state, {**report("Loss/G/loss", loss), **self.scores("G", logits, real)}

    def g_reg(self, state: TrainState, reals, labels, alpha, nimg):
        cfg = self.cfg
        hyper = self.hyper(nimg)
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
            return loss, (jnp.mean(means), w_means, penalty)

        (_, (pl_mean, w_means, penalty)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
        g_params, g_opt = self.apply_updates("G", grads, state.g_opt, state.g_params, hyper)
        g_buffers = self.new_buffers(state, w_means) if "G_reg" in self.tracking else state.g_buffers
        state = state.replace(g_params=g_params, g_opt=g_opt, g_buffers=g_buffers, pl_mean=pl_mean)
        return state, {**report("Loss/pl_penalty", penalty), **report("Loss/G/reg", penalty * cfg.pl_weight),
                       "Loss/pl_mean": pl_mean}

    def d_main(self, state: TrainState, reals, labels, alpha, nimg):
        cfg = self.cfg
        hyper = self.hyper(nimg)
        p = self.aug_p(state, hyper)
        reals, labels = self.split(reals, labels, "D")
        z, c, keys = self.latents(state, 2, labels, self.layout.batch_gpu)
        img, g_buffers = self.generate(state.g_params, state, z, c, keys, alpha, "D_main")
        img = jax.lax.stop_gradient(img)
        blur = self.blur_sigma(nimg)
        reals = self.reals(reals, alpha)

        grads_at = {at for penalty in self.penalties for at in penalty.grads_at}

        def loss_fn(d_params):
            input_grads = {}

            def logits(x, x_labels, aug_draw, at):  # with dD/dx from the same pass when a penalty needs it
                if at not in grads_at:
                    return self.run_D_on(d_params, blur, x, x_labels, alpha, keys, aug_draw, p)
                out, input_grads[at] = self.run_D_on(d_params, blur, x, x_labels, alpha, keys, aug_draw, p,
                                                     input_grads=True)
                return out

            fake, real = logits(img, c, AUG_FAKE, "fakes"), logits(reals, labels, AUG_REAL, "reals")
            loss_fake, loss_real = self.objective.discriminator(fake, real)
            extra, reg, reg_per_sample = {}, 0.0, 0.0
            for penalty in self.penalties:
                values = jax.vmap(functools.partial(self.penalty_of, penalty, d_params, alpha, p, blur))(
                    reals, labels, img, real, input_grads, keys)  # [K, B]
                extra.update(report(f"Loss/{penalty.name}", values))
                reg = reg + jnp.mean(values) * penalty.weight(hyper)  # what is differentiated, summed as before
                reg_per_sample = reg_per_sample + values * penalty.weight(hyper)  # what is reported
            if self.penalties:  # NVIDIA's Dboth: the penalties' weighted sum
                extra.update(report("Loss/D/reg", reg_per_sample))
            loss = jnp.mean(loss_fake) + jnp.mean(loss_real)
            return loss + reg, (fake, real, extra, loss_fake + loss_real)  # NVIDIA's D/loss: each pair's sum

        (_, (fake_logits, real_logits, extra, loss)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
        extra = {**extra, **self.scores("D", fake_logits, real_logits)}
        d_params, d_opt = self.apply_updates("D", grads, state.d_opt, state.d_params, hyper)
        state = state.replace(d_params=d_params, d_opt=d_opt, g_buffers=g_buffers,
                              aug=self.count_signs(state, real_logits))
        if cfg.ema_before_g_step:  # NVIDIA's TF loop: Gs_update_op runs with D's step, before G's
            state = self.update_ema(state, hyper, nimg)
        if not cfg.d_first:  # D's step ends the iteration
            state = self.end_iteration(state, hyper, nimg)
        return state, {**report("Loss/D/loss", loss), **extra}

    def scores(self, net: str, fake_logits, real_logits) -> dict:
        """The scores and signs G's (``net`` "G") or D's main step reports: NVIDIA's D(G(z)) (and in D's step
        D(x)); under a pairing objective R3GAN's relativistic ones, G's ``Loss/scores/fake`` = D(G(z)) - D(x)
        and D's only ``Loss/scores/real`` = D(x) - D(G(z)), per pair."""
        if self.objective.pairs:
            name, scores = ("fake", fake_logits - real_logits) if net == "G" else ("real", real_logits - fake_logits)
            return {**report(f"Loss/scores/{name}", scores), **report(f"Loss/signs/{name}", jnp.sign(scores))}
        out = {**report("Loss/scores/fake", fake_logits), **report("Loss/signs/fake", jnp.sign(fake_logits))}
        if net == "D":
            out.update({**report("Loss/scores/real", real_logits), **report("Loss/signs/real", jnp.sign(real_logits))})
        return out

    def penalty_of(self, penalty, d_params, alpha, p, blur, reals, labels, fakes, real_logits, input_grads, key):
        """One penalty's per-sample values on one minibatch, D seeing the reals augmented as in D's loss (the
        same draw: NVIDIA's Dboth; gradients are taken before blur and augmentation)."""

        def d_real(v):
            return self.run_D(d_params, v, labels, alpha, p, jax.random.fold_in(key, AUG_REAL), blur)

        return penalty.per_sample(d_real, reals, fakes, real_logits, input_grads, jax.random.fold_in(key, 1),
                                  self.grad_scale)

    def end_iteration(self, state: TrainState, hyper: dict, nimg) -> TrainState:
        """G_ema (unless D_main updated it: ``ema_before_g_step``), and the iteration counted. G_ema: a fixed
        beta (PGGAN), or a half-life of ``ema_kimg`` (scheduled: R3GAN) optionally ramped up with the images
        seen before the iteration (``nimg``); buffers copied. A scheduled
        augmentation probability is recorded as the state's (what the tick reports)."""
        if not self.cfg.ema_before_g_step:
            state = self.update_ema(state, hyper, nimg)
        aug = {**state.aug, "p": jnp.float32(hyper["p"])} if self.scheduled_p else state.aug
        return state.replace(step=state.step + 1, aug=aug)

    def update_ema(self, state: TrainState, hyper: dict, nimg) -> TrainState:
        """G_ema lerped towards G (see `end_iteration`), G's buffers copied."""
        cfg, batch = self.cfg, self.layout.batch_size
        if cfg.ema_beta is not None:
            beta = jnp.float32(cfg.ema_beta)
        else:
            ema_nimg = jnp.float32(hyper["ema_kimg"] * 1000)
            if cfg.ema_rampup is not None:
                ema_nimg = jnp.minimum(ema_nimg, jnp.asarray(nimg).astype(jnp.float32) * cfg.ema_rampup)
            beta = jnp.float32(0.5) ** (batch / jnp.maximum(ema_nimg, 1e-8))
        g_ema = jax.tree_util.tree_map(lambda p, e: p + beta * (e - p), state.g_params, state.g_ema_params)
        return state.replace(g_ema_params=g_ema, g_ema_buffers=state.g_buffers)

    def d_reg(self, state: TrainState, reals, labels, alpha, nimg):
        """The lazy zero-centred gradient penalties (`losses.gradient_penalties`: R1 at the reals, R2 at G's
        images, held fixed), each ``mean(per_sample * weight) * D_reg_interval``, the gradients taken before
        blur and augmentation; D runs once on each set of images a penalty needs."""
        cfg = self.cfg
        hyper, blur = self.hyper(nimg), self.blur_sigma(nimg)
        p = self.aug_p(state, hyper)
        penalties = losses.gradient_penalties(cfg)
        reals, labels = self.split(reals, labels, "D")
        keys = jax.random.split(jax.random.fold_in(jax.random.fold_in(state.key, state.step), 3),
                                self.layout.minibatches)
        reals, fakes = self.reals(reals, alpha), None
        images = {"reals": (reals, labels, AUG_R1)}
        if any("fakes" in q.grads_at for q in penalties):  # G's images for R2, fixed
            z, c, g_keys = self.latents(state, 3, labels, self.layout.batch_gpu)
            fakes = jax.lax.stop_gradient(self.generate(state.g_params, state, z, c, g_keys, alpha, "D_reg")[0])
            images["fakes"] = (fakes, c, AUG_FAKE)
        needed = list(dict.fromkeys(at for q in penalties for at in q.grads_at))  # reals before fakes

        def loss_fn(d_params):
            logits, input_grads = {}, {}
            for at in needed:
                x, x_labels, aug_draw = images[at]
                logits[at], input_grads[at] = self.run_D_on(d_params, blur, x, x_labels, alpha, keys, aug_draw,
                                                            p, input_grads=True)
            reg, reg_per_sample, out = 0.0, 0.0, {}
            for penalty in penalties:
                values = jax.vmap(functools.partial(self.penalty_of, penalty, d_params, alpha, p, blur))(
                    reals, labels, fakes, logits.get("reals"), input_grads, keys)  # [K, B]
                reg = reg + jnp.mean(values * penalty.weight(hyper))
                reg_per_sample = reg_per_sample + values * penalty.weight(hyper)
                out.update(report(f"Loss/{penalty.name}", values))
            # NVIDIA's: the weighted penalties, before the interval's gain
            out.update(report("Loss/D/reg", reg_per_sample))
            if "reals" in logits:  # NVIDIA's Dreg reports D's scores of the reals it differentiates
                out.update(report("Loss/scores/real", logits["reals"]))
                out.update(report("Loss/signs/real", jnp.sign(logits["reals"])))
            return reg * cfg.D_reg_interval, (out, logits.get("reals"))

        (_, (out, real_logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
        d_params, d_opt = self.apply_updates("D", grads, state.d_opt, state.d_params, hyper)
        aug = state.aug if real_logits is None else self.count_signs(state, real_logits)
        return state.replace(d_params=d_params, d_opt=d_opt, aug=aug), out

    def ada(self, state: TrainState, reals, labels, alpha, nimg):
        """NVIDIA's ADA heuristic, every ``ada_interval`` iterations: p moves by ``sign(E[sign(D(real))] -
        ada_target) * batch * ada_interval / (ada_kimg * 1000)`` (the mean over every real D saw since the
        last update, in D_main and D_reg), clamped at 0 as NVIDIA's (p may pass 1: every transform then
        applies, and p takes as long to come back as it went beyond)."""
        cfg = self.cfg
        total, count = state.aug["signs"][0], state.aug["signs"][1]
        mean = total / jnp.maximum(count, 1)
        adjust = jnp.sign(mean - cfg.ada_target) * (self.layout.batch_size * cfg.ada_interval / (cfg.ada_kimg * 1000))
        p = jnp.maximum(state.aug["p"] + adjust, 0).astype(jnp.float32)
        # The statistic p follows, apart from Loss/signs/real (each D step's, as NVIDIA's stats report it).
        return state.replace(aug={"p": p, "signs": jnp.zeros_like(state.aug["signs"])}), {"ADA/signs/real": mean}


#: The key of a phase's output that says whether its losses and updated parameters are all finite (a bool).
FINITE = "finite"


def all_finite(tree) -> jax.Array:
    """True when every element of every leaf of ``tree`` is finite (a scalar bool, computed on device)."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


def augment_pipe(cfg: ml_collections.ConfigDict) -> AugmentPipe | None:
    """The run's `AugmentPipe` (``cfg.augpipe``: a preset name or AugmentPipe's keyword arguments), or None
    when ``cfg.aug`` is 'noaug' or 'fixed' at p 0 with no schedule of p (NVIDIA builds no pipe then: it would
    change nothing at a cost). ``cfg.augpipe`` is checked in every case: a checkpoint records it, and a resumed
    run must give the same."""
    if cfg.aug not in ("noaug", "ada", "fixed"):
        raise ConfigError(f"--aug: expected 'noaug', 'ada' or 'fixed', got {cfg.aug!r}")
    spec = cfg.augpipe
    if not (spec in AUGPIPE_PRESETS if isinstance(spec, str) else hasattr(spec, "keys")):
        raise ConfigError(f"--augpipe: expected a preset name ({', '.join(sorted(AUGPIPE_PRESETS))}) or a dict of "
                          f"AugmentPipe's keyword arguments, got {spec!r}")
    if isinstance(spec, str):
        pipe = AugmentPipe.preset(spec)
    else:
        try:
            pipe = AugmentPipe(**dict(spec))
        except (TypeError, ValueError) as e:  # an unknown keyword; a value that is not a number, bands != 4
            raise ConfigError(f"--augpipe: {e}") from None
    idle = cfg.aug == "fixed" and not cfg.p and "p" not in hyperparams.final_values(cfg)
    return None if cfg.aug == "noaug" or idle else pipe


def compile_phases(phases: Phases, conv_grad: str = "xla", allow_tf32: bool = True) -> dict:
    """Each phase jitted once, the state donated, traced under ``conv2d``'s gradient rule ``conv_grad``
    (``'xla'`` or ``'forward'``: `resolve_conv_grad`) and, without ``allow_tf32``, with every float32
    convolution and matrix product in full float32 (``jax.default_matmul_precision('float32')``: NVIDIA's
    ``allow_tf32=False``; with it, the backend's default: TF32 on NVIDIA GPUs, one bfloat16 pass on TPUs, no
    change on the CPU). A phase returns ``(state, outputs)``: its reported
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
            precision = contextlib.nullcontext() if allow_tf32 else jax.default_matmul_precision("float32")
            with gradient_rule(conv_grad), precision:
                state, out = fn(*args)
            # the reported means only: a finite loss's square may overflow
            return state, {**out, FINITE: all_finite((reported_means(out), state.g_params, state.d_params))}

        return phase

    return {name: jax.jit(scoped(fn), donate_argnums=0) for name, fn in fns.items()}


def checked_resolution(cfg: ml_collections.ConfigDict, from_dataset: bool = False) -> int | str:
    """``cfg.resolution`` spelled as datasets record it (N or 'WxH': `stylegan_jax.image_size`), checked to be
    a size ``cfg.model``'s networks make; else one `ConfigError` saying which sizes and families work, naming
    the flag, or the dataset where the size is the dataset's (``from_dataset``)."""
    origin = f"the dataset {cfg.dataset}'s size " if from_dataset else "--config.resolution="
    try:
        height, width = image_size.parse(cfg.resolution)
        if height != width:
            image_size.base(height, width)
    except image_size.ImageSizeError as e:
        raise ConfigError(f"{origin}{cfg.resolution}: {e}") from None
    if height != width and not get_family(cfg.model).non_square:
        raise ConfigError(f"{origin}{cfg.resolution}: model {cfg.model!r} makes square images only "
                          f"(W x H images: {', '.join(non_square_families())})")
    return image_size.text(height, width)


def resolve_conv_grad(choice: str, mesh_devices: int, backend: str) -> str:
    """``cfg.conv_grad`` for a run on ``mesh_devices`` devices of ``backend``: ``'auto'`` is ``'forward'``
    on one CPU device (faster second-order gradients: docs/performance.md) and ``'xla'`` otherwise."""
    if choice not in ("auto", "xla", "forward"):
        raise ConfigError(f"--config.conv_grad: expected 'auto', 'xla' or 'forward', got {choice!r}")
    if choice == "auto":
        return "forward" if backend == "cpu" and mesh_devices == 1 else "xla"
    return choice


def active_phases(cfg: ml_collections.ConfigDict, step: int) -> list[str]:
    """The phases iteration ``step`` runs, in NVIDIA's order: G_main every ``n_critic`` iterations (each
    iteration shows D one real batch), G_reg and D_reg when lazy (none when pl_weight is 0 / without R1
    and R2), then ADA's update of p every ``ada_interval`` iterations. With ``d_first`` (R3GAN, PGGAN,
    StyleGAN1), D_main and D_reg come before G_reg and G_main (which then ends the iteration)."""
    g = ["G_main"] if step % cfg.n_critic == 0 else []
    if cfg.pl_weight and cfg.lazy_regularization and step % cfg.G_reg_interval == 0:
        g = ["G_reg", *g] if cfg.d_first else [*g, "G_reg"]
    d = ["D_main"]
    if losses.gradient_penalties(cfg) and cfg.lazy_regularization and step % cfg.D_reg_interval == 0:
        d.append("D_reg")
    names = d + g if cfg.d_first else g + d
    if cfg.aug == "ada" and (step + 1) % cfg.ada_interval == 0:  # NVIDIA: after the iteration, on batch_idx
        names.append("ADA")
    return names


def _is_tick_pair(pair) -> bool:
    """Whether ``pair`` is one entry of ``tick_by_resolution``: (a positive resolution, positive finite kimg)."""
    if not (isinstance(pair, tuple | list) and len(pair) == 2):
        return False
    resolution, kimg = pair
    return (isinstance(resolution, int) and resolution > 0 and isinstance(kimg, int | float) and math.isfinite(kimg)
            and kimg > 0)


#: Hyper-parameters and their ranges (lowest, highest; None: unbounded; both included), as the flags that set
#: some of them check theirs (``--glr``, ``--gamma``): a finite number within, or None where the key is unset.
#: Adam's betas, checked apart (`_check_ranges`), stay under 1: its bias correction divides by 1 - beta2^t.
NUMBER_RANGES = {
    "G_lr": (0, None), "D_lr": (0, None), "eps": (0, None), "r1_gamma": (0, None), "r2_gamma": (0, None),
    "pl_weight": (0, None), "pl_decay": (0, 1), "style_mixing_prob": (0, 1), "ema_kimg": (0, None),
    "ema_rampup": (0, None), "ema_beta": (0, 1), "wgan_lambda": (0, None), "epsilon_drift": (0, None),
    "wgan_clip": (0, None), "blur_init_sigma": (0, None), "blur_fade_kimg": (0, None),
    "decay.G_lr": (0, None), "decay.D_lr": (0, None), "decay.r1_gamma": (0, None),
    "decay.r2_gamma": (0, None), "decay.ema_kimg": (0, None), "decay.p": (0, 1), "G.w_avg_beta": (0, 1),
}


def _is_number(value) -> bool:
    """A finite int or float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_ranges(cfg: ml_collections.ConfigDict) -> None:
    """`NUMBER_RANGES`; Adam's ``betas`` (two numbers) and a scheduled final ``decay.beta2`` in [0, 1);
    ``pl_batch_shrink`` a whole number >= 1; G's and D's numeric keyword arguments never negative; D's
    ``mbstd_group_size`` None or >= 1 for stylegan2-ada-pytorch's D (the one with ``mbstd_num_channels``), a
    whole number for the TensorFlow lineages' (PGGAN's, StyleGAN1's, StyleGAN2's; 0 or 1: no minibatch stddev)."""
    for key, (lowest, highest) in NUMBER_RANGES.items():
        value = functools.reduce(lambda node, name: node.get(name) if node is not None else None, key.split("."), cfg)
        if value is not None and not (_is_number(value) and lowest <= value and (highest is None or value <= highest)):
            bound = f">= {lowest}" if highest is None else f"in [{lowest}, {highest}]"
            raise ConfigError(f"--config.{key}: expected a finite number {bound}, got {value!r}")
    betas, beta2 = cfg.betas, cfg.decay.get("beta2")
    if not (isinstance(betas, tuple | list) and len(betas) == 2 and all(_is_number(b) and 0 <= b < 1 for b in betas)):
        raise ConfigError(f"--config.betas: expected Adam's two betas in [0, 1), got {betas!r}")
    if beta2 is not None and not (_is_number(beta2) and 0 <= beta2 < 1):
        raise ConfigError(f"--config.decay.beta2: expected Adam's beta2 in [0, 1), got {beta2!r}")
    if not (isinstance(cfg.pl_batch_shrink, int) and cfg.pl_batch_shrink >= 1):
        raise ConfigError(f"--config.pl_batch_shrink: expected a whole number >= 1, got {cfg.pl_batch_shrink!r}")
    for net in ("G", "D"):
        for key, value in cfg[net].items():
            if isinstance(value, int | float) and not isinstance(value, bool) and not value >= 0:
                raise ConfigError(f"--config.{net}.{key}: expected a number >= 0, got {value!r}")
    group = cfg.D.get("mbstd_group_size")
    if "mbstd_num_channels" in cfg.D and group == 0:
        raise ConfigError("--config.D.mbstd_group_size: expected None (the whole per-device batch) or a group of "
                          "at least 1, got 0 (--config.D.mbstd_num_channels=0 turns the layer off)")
    if "mbstd_group_size" in cfg.D and "mbstd_num_channels" not in cfg.D and not isinstance(group, int):
        raise ConfigError(f"--config.D.mbstd_group_size: expected a whole number (0 or 1: no minibatch stddev, as "
                          f"NVIDIA's TensorFlow D), got {group!r}")


def check_config(cfg: ml_collections.ConfigDict, family: Family) -> None:
    """Values and combinations a run cannot use, as one clear error naming the keys; checked before the
    first step, so that nothing fails at the first save."""
    _check_ranges(cfg)
    for key, lowest in (("kimg", 0), ("tick", 0)):
        if not (isinstance(cfg[key], int | float) and math.isfinite(cfg[key]) and cfg[key] > lowest):
            raise ConfigError(f"--{key}: expected a positive number of kimg, got {cfg[key]!r}")
    table = cfg.get("tick_by_resolution", ())
    if not (isinstance(table, tuple | list) and all(_is_tick_pair(pair) for pair in table)):
        raise ConfigError(f"--config.tick_by_resolution: expected (resolution, positive kimg) pairs, got {table!r}")
    for key, flag in (("snap", "--snap"), ("keep", "--config.keep"), ("grid", "--config.grid")):
        if not (isinstance(cfg[key], int) and cfg[key] >= 1):
            raise ConfigError(f"{flag}: expected a whole number >= 1, got {cfg[key]!r}")
    if not (isinstance(cfg.keep_every, int) and cfg.keep_every >= 0):
        raise ConfigError(f"--config.keep_every: expected a whole number of steps >= 0 (0: the newest --config.keep "
                          f"only), got {cfg.keep_every!r}")
    if not (isinstance(cfg.image_snap, int) and cfg.image_snap >= 0):
        raise ConfigError(f"--config.image_snap: expected a whole number of ticks >= 0 (0: grids at the snapshots "
                          f"only), got {cfg.image_snap!r}")
    if cfg.grid_noise not in ("const", "random"):
        raise ConfigError(f"--config.grid_noise: expected 'const' or 'random', got {cfg.grid_noise!r}")
    if not (isinstance(cfg.freeze_d, int) and cfg.freeze_d >= 0):  # NVIDIA: "--freezed must be non-negative"
        raise ConfigError(f"--config.freeze_d: expected a whole number of D's layers >= 0, got {cfg.freeze_d!r}")
    if not (isinstance(cfg.workers, int) and not isinstance(cfg.workers, bool) and cfg.workers >= 0):  # as --workers
        raise ConfigError(f"--config.workers: expected a whole number of data workers >= 0 (0: none), got "
                          f"{cfg.workers!r}")
    if not (isinstance(cfg.subset, int) and cfg.subset >= 0):
        raise ConfigError(f"--subset: expected a whole number of images >= 0 (0: all), got {cfg.subset!r}")
    losses.objective(cfg)
    pipe = augment_pipe(cfg)
    if pipe is not None and pipe.imgfilter > 0:  # the image-space filter reflect-pads by 21 pixels
        smallest = min(image_size.parse(cfg.resolution))
        if cfg.growing.initial_resolution:
            smallest = min(smallest, cfg.growing.initial_resolution)
        if smallest <= 21:
            raise ConfigError(f"--augpipe: imgfilter needs images whose short side is over 21 pixels (it "
                              f"reflect-pads by 21 pixels); this run trains at {smallest} on the short side")
    hyperparams.check(cfg)
    if cfg.ema_before_g_step and not cfg.d_first:
        raise ConfigError("--config.ema_before_g_step=True needs d_first=True (NVIDIA's TF loop: D's step, G_ema, G's)")
    if cfg.adam_epsilon_hat and cfg.optimizer != "adam":
        raise ConfigError(f"--config.adam_epsilon_hat=True needs --config.optimizer=adam, got {cfg.optimizer!r}")
    if cfg.adam_epsilon_hat and hyperparams.schedules_adam(cfg):
        raise ConfigError("--config.adam_epsilon_hat=True (TensorFlow's Adam) takes no lr or beta2 schedule "
                          "(--config.decay.G_lr/D_lr/beta2)")
    if cfg.d_first and cfg.n_critic != 1:
        raise ConfigError(f"--config.d_first=True needs n_critic=1 (G's step ends each iteration), got {cfg.n_critic}")
    if hyperparams.schedules_adam(cfg) and cfg.growing.initial_resolution:
        raise ConfigError("--config.decay.G_lr/D_lr/beta2: a growing run takes its learning rates from "
                          "growing.G_lr/D_lr, and no Adam schedule")
    if not 0 <= cfg.p <= 1:  # checked whatever aug is, as augpipe (a checkpoint records them all)
        raise ConfigError(f"--p: expected a probability in [0, 1], got {cfg.p!r}")
    if not (cfg.ada_interval >= 1 and cfg.ada_kimg > 0 and 0 <= cfg.ada_target <= 1):
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
    if not (isinstance(cfg.minibatch_repeats, int) and cfg.minibatch_repeats >= 1):
        raise ConfigError(f"--config.minibatch_repeats: expected a whole number >= 1, got {cfg.minibatch_repeats!r}")
    if cfg.lazy_regularization:  # 0 (NVIDIA's None) only where the phase never runs
        for key, used in (("G_reg_interval", cfg.pl_weight), ("D_reg_interval", losses.gradient_penalties(cfg))):
            if not (isinstance(cfg[key], int) and (cfg[key] >= 1 or (cfg[key] == 0 and not used))):
                raise ConfigError(f"--config.{key}: expected a whole number >= 1 (0 only without its regulariser), "
                                  f"got {cfg[key]!r}")
    _check_metric_names(cfg.metrics)


def _check_metric_names(names: tuple | list) -> None:
    """``cfg.metrics`` names registered metrics (checked before training, not at the first snapshot)."""
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"--metrics: expected a tuple of metric names, got {names!r}")
    if names:
        from stylegan_jax.metrics import METRICS  # lazily: the metrics package is optional for training

        unknown = [n for n in names if n not in METRICS]
        if unknown:
            raise ConfigError(f"--metrics: unknown metric {unknown[0]!r}; valid: {', '.join(METRICS)}")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"--metrics: {', '.join(twice)} given twice; give each metric once")
