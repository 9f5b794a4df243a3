"""Experiment configs: ``experiments/<name>.py`` files with ``get_config() -> ConfigDict``, overrides given as
``--config.KEY=VALUE``, and the StyleGAN2 defaults every experiment starts from (NVIDIA's names and
values: stylegan2-ada-pytorch ``train.py`` and ``training/training_loop.py``)."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
from pathlib import Path

import ml_collections
from ml_collections import config_dict

from stylegan_jax import image_size
from stylegan_jax.errors import ConfigError
from stylegan_jax.models import get_family

# The repository's experiments/: installed from a wheel as the package stylegan_jax.experiments (setup.py maps it);
# in a source checkout or an editable install, at the repository root.
EXPERIMENTS_DIR = Path(__file__).resolve().parents[1] / "experiments"
if not EXPERIMENTS_DIR.is_dir():
    EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"


def stylegan2_defaults() -> ml_collections.ConfigDict:
    """StyleGAN2 as stylegan2-ada-pytorch trains it; experiments override what their preset changes."""
    c = ml_collections.ConfigDict()
    c.name = "stylegan2"
    c.model = "stylegan2"
    c.dataset = ""  # a built-in name, a converted dataset's name under data_dir, or a path
    c.data_dir = ""  # '' = $STYLEGAN_JAX_DATA or ~/.cache/stylegan_jax/datasets
    # N for N x N images, or 'WxH' (width first, as the dataset records it: stylegan_jax.image_size); None (as
    # img_channels): the dataset's (see fill_from_dataset).
    c.resolution = config_dict.FieldReference(256, field_type=object)
    c.img_channels = 3
    c.conditional = False  # use the dataset's labels
    c.xflip = False  # NVIDIA's --mirror
    c.subset = 0  # train on a random N of the dataset's images, chosen by the seed (NVIDIA's --subset); 0 = all
    c.c_dim = 0  # label dimension of a conditional run: 0 = the dataset's (a preset may state it: --dry-run)
    c.workers = 0  # grain worker processes

    c.batch_size = 32  # global minibatch
    c.batch_gpu = 0  # NVIDIA's per-GPU batch: mbstd groups and mixing crossovers live within one; 0 = batch/devices
    c.kimg = 25000.0
    c.tick = 4.0  # kimg per tick (NVIDIA's kimg_per_tick)
    # (resolution, kimg per tick) pairs that override `tick` at those training resolutions, the full one when not
    # growing (the TensorFlow lineage's tick_kimg_dict)
    c.tick_by_resolution = ()
    c.snap = 50  # ticks between checkpoints, grids, network snapshots and metrics (from tick 0, if any)
    c.tick_zero = True  # NVIDIA's tick 0, a new run's first iteration (group), a snapshot point
    # (stylegan2-ada-pytorch and StyleGAN2's TF loop); False: the first tick, numbered 1, takes its kimg as the
    # rest, and the initial fakes grid is fakes000000.png, not fakes_init.png (PGGAN's and StyleGAN1's)
    c.snap_tick_one = False  # tick 1 a snapshot point too (StyleGAN1's TF loop)
    # ticks between fakes grids besides those of the snapshots (NVIDIA's image_snapshot_ticks where it differs from
    # network_snapshot_ticks: the TensorFlow lineage's 1 against 10); 0 = the snapshots' only
    c.image_snap = 0
    c.seed = 0
    c.keep = 3  # checkpoints kept
    c.keep_every = 0  # also keep the first checkpoint and then one at least every N steps (0 = none)
    c.grid = 8  # the reals and fakes grids: grid x grid images (a conditional run's rows one label each, NVIDIA's)
    # The fakes grids' noise inputs: const (stylegan2-ada-pytorch's noise_mode='const') | random (the TF loops'
    # randomize_noise: drawn anew for each grid, here from the seed and the grid's image count)
    c.grid_noise = "const"

    c.G, c.D = get_family(c.model).config_defaults()  # constructor kwargs (see the family's network_kwargs)

    c.G_lr = 0.002
    c.D_lr = 0.002
    c.betas = (0.0, 0.99)
    c.eps = 1e-8
    c.r1_gamma = 10.0
    c.pl_weight = 2.0
    c.pl_batch_shrink = 2
    c.pl_decay = 0.01
    c.style_mixing_prob = 0.9
    c.G_reg_interval = 4  # 0: no G regularisation phase and G's Adam unscaled (NVIDIA's None, StyleGAN3)
    c.D_reg_interval = 16
    c.ema_kimg = 10.0
    c.ema_rampup = config_dict.placeholder(float)
    c.ema_beta = config_dict.placeholder(float)  # a fixed G_ema beta per iteration (PGGAN's 0.999) instead

    # The objective and optimiser (any model): see losses.OBJECTIVES and losses.d_main_penalties.
    c.loss = "nonsaturating"  # 'nonsaturating' | 'minimax' | 'wgan' | 'wgan_gp' | 'hinge' | 'rpgan' (R3GAN)
    c.r2_gamma = config_dict.placeholder(float)  # R2 (zero-centred, at the fakes); None: r1_gamma under 'rpgan'
    c.d_first = False  # each iteration runs D's phases before G's (R3GAN's Trainer; PGGAN's and StyleGAN1's TF
    # loops); G first: stylegan2-ada-pytorch's order and StyleGAN2's TF loop
    c.ema_before_g_step = False  # with d_first: G_ema follows G after D's step, before G's (PGGAN's and
    # StyleGAN1's TF loops run Gs_update_op with D's step)
    c.real_labels_for_d_fakes = False  # a conditional run's D step makes its fakes with the real batch's labels
    # (NVIDIA's TF losses: D_wgan_gp, D_logistic_simplegp, D_logistic_r1); False: random training images' labels,
    # as every other phase's (stylegan2-ada-pytorch's all_gen_c)
    c.adam_epsilon_hat = False  # Adam's eps added to sqrt(v) before the bias correction (TensorFlow's AdamOptimizer)
    c.optimizer = "adam"  # 'adam' (betas, eps) | 'rmsprop' (decay 0.99, eps outside the root: PyTorch's)
    c.grad_nan_to_num = True  # NVIDIA's nan_to_num(nan=0, posinf=1e5, neginf=-1e5) on the gradients; R3GAN's: off
    c.skip_nonfinite_updates = False  # the TensorFlow lineages' optimiser: a phase whose gradients are not all
    # finite moves neither the network nor its optimiser state (grad_nan_to_num then changes nothing; the
    # gradients of layers freeze_d freezes are never applied and not looked at)
    c.lazy_regularization = True  # R1 / PL as separate phases, Adam's lr and betas scaled; False: R1 in D_main
    c.n_critic = 1  # D steps (each on a new real batch) per G step
    c.minibatch_repeats = 1  # iterations per evaluation of the schedule, ticks, the end and stops (NVIDIA's TF
    # loops: 4; stylegan2-ada-pytorch's: 1)
    c.wgan_lambda = 10.0  # gradient penalty weight when loss == 'wgan_gp'
    c.epsilon_drift = 0.0  # PGGAN's drift penalty weight on D(x)^2
    c.wgan_clip = 0.0  # clip D's trained parameters to [-wgan_clip, wgan_clip] after each D update (WGAN)

    # Progressive growing (NVIDIA's TrainingSchedule): off while initial_resolution is 0. Tables are tuples of
    # (resolution, value) pairs; a resolution missing from one takes the flat value (batch_size, G_lr, ...).
    c.growing = ml_collections.ConfigDict(dict(
        initial_resolution=0, training_kimg=600.0, transition_kimg=600.0, batch_size=(), batch_gpu=(),
        G_lr=(), D_lr=(), reset_optimizer=True,
    ))
    c.metrics = ()  # metric names computed at every snapshot, e.g. ('fid50k_full',)

    # Discriminator augmentation (StyleGAN2-ADA; stylegan_jax.augment): what D sees, reals and fakes, in every
    # phase. NVIDIA's train.py names: --aug, --augpipe, --p, --target; ada_interval and ada_kimg its loop's.
    c.aug = "noaug"  # 'noaug' | 'ada' (p adjusted towards ada_target) | 'fixed' (p stays at p)
    c.augpipe = config_dict.FieldReference("bgc", field_type=object)  # a preset of augment.AUGPIPE_PRESETS or a
    # dict of AugmentPipe's keyword arguments
    c.p = 0.0  # the augmentation probability to start from ('ada') or to keep ('fixed')
    c.ada_target = 0.6  # the target of E[sign(D(real))]
    c.ada_interval = 4  # iterations between p's updates
    c.ada_kimg = 500.0  # images (kimg) over which p can move from 0 to 1

    # R3GAN's cosine schedules (training.hyperparams): each key of ``decay`` given moves from its base value
    # (G_lr, D_lr, betas[1] as beta2, r1_gamma, r2_gamma, ema_kimg, p) to the value given over decay_kimg.
    c.decay_kimg = 0.0  # 0: every hyper-parameter stays constant
    c.decay = ml_collections.ConfigDict({k: config_dict.placeholder(float) for k in (
        "G_lr", "D_lr", "beta2", "r1_gamma", "r2_gamma", "ema_kimg", "p")})

    # StyleGAN3-R's blur of every image D sees (NVIDIA's loss blur_init_sigma, blur_fade_kimg): a Gaussian of
    # sigma blur_init_sigma pixels, fading linearly to 0 over blur_fade_kimg; 0 = none.
    c.blur_init_sigma = 0.0
    c.blur_fade_kimg = 0.0

    # Transfer learning (NVIDIA's --resume and --freezed): a new run starts from a pretrained network.
    c.resume_from = ""  # an NVIDIA pickle or a network-snapshot directory: initialises G, G_ema and D
    c.freeze_d = 0  # freeze D's N highest-resolution layers (Freeze-D; the family's d_layers)

    # Backend choices, made once by the run and recorded resolved in config.json.
    c.conv_grad = "auto"  # conv2d's gradient rule: 'auto' | 'xla' | 'forward' (ops.conv2d_resample.gradient_rule)
    # float32 convolutions and matrix products at the backend's default precision (TF32 on NVIDIA GPUs, one
    # bfloat16 pass on TPUs); False: in full float32, NVIDIA's default (steps.compile_phases)
    c.allow_tf32 = True
    c.cpu_fusion = True  # XLA:CPU's YNNPACK fusion of dots and reductions (runtime.configure_runtime)
    c.compile_cache = "auto"  # JAX's persistent compilation cache: auto | run | off | a directory (loop.compile_cache)
    c.tiny = False  # shrink to a CPU-size run on the built-in digits-16 (see shrink_to_tiny)
    c.auto = False  # fill the AUTO_KEYS left None with NVIDIA's --cfg=auto values (see resolve_auto)
    return c


def lineage_defaults(model: str) -> ml_collections.ConfigDict:
    """The training defaults with another model family's G and D sections (its ``config_defaults()``)."""
    c = stylegan2_defaults()
    c.name = c.model = model
    c.G, c.D = get_family(model).config_defaults()
    return c


#: NVIDIA's per-resolution learning rates of both StyleGAN papers' growing FFHQ 1024 runs.
FFHQ1024_LADDER_LRS = ((128, 0.0015), (256, 0.002), (512, 0.003), (1024, 0.003))


def ffhq1024_ladder(lr: float, growing_batch: tuple, growing_batch_gpu: tuple) -> ml_collections.ConfigDict:
    """What the StyleGAN1 and StyleGAN2 ablation ladders share (FFHQ 1024 on 8 GPUs): FFHQ 1024x1024 with
    x-flip; global minibatch 32 in per-GPU minibatches of 4 at full resolution; ``lr`` for G and D; Adam betas
    (0, 0.99), eps 1e-8; G_ema half-life 10 kimg; fid50k at snapshots (``fid50k_full``); growing by NVIDIA's
    schedule (600 kimg to fade in, 600 to stabilise) with the ``((resolution, size), ...)`` minibatch tables
    given, `FFHQ1024_LADDER_LRS` and the optimisers reset at every fade-in's start and end."""
    c = lineage_defaults("stylegan1")
    c.dataset, c.resolution, c.xflip = "ffhq1024", 1024, True
    c.batch_size, c.batch_gpu = 32, 4
    c.G_lr = c.D_lr = lr
    c.betas, c.eps = (0.0, 0.99), 1e-8
    c.ema_kimg = 10.0
    c.metrics = ("fid50k_full",)
    c.growing.update(training_kimg=600.0, transition_kimg=600.0, batch_size=growing_batch,
                     batch_gpu=growing_batch_gpu, G_lr=FFHQ1024_LADDER_LRS, D_lr=FFHQ1024_LADDER_LRS,
                     reset_optimizer=True)
    return c


#: R3GAN's augmentation (its train.py with --aug=1): ADA's pipe, geometric at 1, colour at 0.5, cutout at 1.
R3GAN_AUGPIPE = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=0.5, contrast=0.5,
                     lumaflip=0.5, hue=0.5, saturation=0.5, cutout=1)


def r3gan_recipe(preset: str, conditional: bool, gamma: tuple[float, float], ema_kimg: float, p: float,
                 decay_kimg: float = 20000.0) -> ml_collections.ConfigDict:
    """R3GAN's training recipe (brownvc/R3GAN ``train.py`` and ``training/training_loop.py``) with one of its
    network presets (``models.r3gan.preset``): the RpGAN objective with R1 and R2 every iteration, weighted by
    one gamma (``(gamma / 2) * (R1 + R2)``); D's step before G's, each on its own real batch; Adam (0, beta2),
    eps 1e-8, on the gradients as they are (its loop has no nan_to_num); cosine schedules (no warm-up) over
    ``decay_kimg`` (20 Mimg; its ImageNet recipes' 200 Mimg) of lr 2e-4 -> 5e-5, beta2 0.9 -> 0.99, gamma
    ``gamma[0] -> gamma[1]``, G_ema half-life 0 -> ``ema_kimg`` and the augmentation p 0 -> ``p`` (fixed, not
    adaptive: `R3GAN_AUGPIPE`); no style mixing, path length or lazy regularisation; x-flip; ticks of 1 kimg and
    snapshots every 200 (its README's --tick=1 --snap=200). Experiments set the dataset, batch and length."""
    from stylegan_jax.models.r3gan import preset as r3gan_preset

    c = lineage_defaults("r3gan")
    c.G, c.D = r3gan_preset(preset, conditional=conditional)
    c.conditional, c.xflip = conditional, True
    c.loss, c.r1_gamma, c.r2_gamma = "rpgan", gamma[0], None
    c.lazy_regularization, c.pl_weight, c.style_mixing_prob, c.G_reg_interval = False, 0.0, 0.0, 0
    c.d_first = True
    c.grad_nan_to_num = False  # its loop dropped StyleGAN2-ADA's nan_to_num of the gradients
    c.G_lr = c.D_lr = 2e-4
    c.betas, c.eps = (0.0, 0.9), 1e-8
    c.ema_kimg, c.ema_rampup = 0.0, None
    c.aug, c.augpipe, c.p = "fixed", dict(R3GAN_AUGPIPE), 0.0
    c.decay_kimg = decay_kimg
    c.decay.update(G_lr=5e-5, D_lr=5e-5, beta2=0.99, r1_gamma=gamma[1], ema_kimg=ema_kimg, p=p)
    c.tick, c.snap = 1.0, 200
    c.metrics = ("fid50k_full",)
    return c


def shrink_to_tiny(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """With ``cfg.tiny``: a copy that runs on CPU in seconds, every switch kept (objective, growing, lazy
    regularisation, mixing...): built-in ``digits-16``, 16x16 gray (a W x H experiment, portrait or landscape:
    the 24x32 portraits of ``lfw-faces-portrait``, so that its networks stay W x H), batch 8 in minibatches of
    2, narrow networks, growing from 4x4 with 16 + 16 images per resolution, cosine schedules over the whole
    run, 64 images in all; the copy's ``tiny`` is False (applied once: later overrides stay). Without it,
    ``cfg``."""
    if not cfg.get("tiny"):
        return cfg
    c = copy.deepcopy(cfg)
    try:
        height, width = image_size.parse(cfg.resolution)
    except image_size.ImageSizeError:  # None (auto) or a bad value, which the run's checks name
        height = width = 0
    dataset, resolution = ("digits-16", 16) if height == width else ("lfw-faces-portrait", "24x32")
    c.update(tiny=False, dataset=dataset, resolution=resolution, img_channels=1, conditional=False, xflip=False,
             batch_size=8, batch_gpu=2, kimg=0.064, tick=0.016, tick_by_resolution=(), snap=2, grid=2, metrics=())
    for net, base in ((c.G, 128), (c.D, 128)):
        small = dict(channel_base=base, channel_max=16, fmap_base=base, fmap_max=16, z_dim=16, w_dim=16, embed_dim=8,
                     mapping_fmaps=16, mbstd_group_size=2, mapping_layers=min(net.get("mapping_layers", 1), 2),
                     num_fp16_res=0, condition_embedding_dim=16, fp16_stages=())
        if "width_per_stage" in net:  # R3GAN's three stages at 16x16, G's from 4x4 up, D's from 16x16 down
            order = 1 if net is c.G else -1
            grouped = any(g > 1 for g in net.cardinality_per_stage)  # ungrouped rungs stay ungrouped
            small.update(width_per_stage=(32, 32, 16)[::order], blocks_per_stage=(1, 1, 1),
                         cardinality_per_stage=((4, 4, 2) if grouped else (1, 1, 1))[::order])
        for key, value in small.items():
            if key in net:
                net[key] = value
    if c.decay_kimg:  # R3GAN's schedules run their whole course within the tiny run
        c.decay_kimg = c.kimg
    if c.growing.initial_resolution:
        c.growing.update(initial_resolution=4, training_kimg=0.016, transition_kimg=0.016, batch_size=(),
                         batch_gpu=(), G_lr=(), D_lr=())
    return c


#: The values NVIDIA's ``--cfg=auto`` derives from the resolution and the GPU count (`resolve_auto`).
AUTO_KEYS = ("batch_size", "batch_gpu", "D.mbstd_group_size", "G.channel_base", "D.channel_base", "G_lr", "D_lr",
             "r1_gamma", "ema_kimg")


def fill_from_dataset(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``cfg`` with ``resolution`` and ``img_channels`` left None (``experiments/auto.py``) set to the dataset's
    (``resolution``: N or 'WxH', and ``channels`` as it records them), as NVIDIA's train.py takes
    ``training_set.resolution`` and ``num_channels``. A copy; ``cfg`` itself when neither is None.

    A dataset that cannot be found or read: a one-line `ConfigError` (the dataset's error, and
    ``--config.resolution``) when the resolution is None; when only the channels are, 3, so that ``--dry-run``
    with ``--config.resolution`` needs no dataset (a run stops on the missing dataset itself)."""
    if cfg.get("resolution", 0) is not None and cfg.get("img_channels", 0) is not None:
        return cfg
    from stylegan_jax.data import DatasetError, read_dataset_info, resolve_dataset  # tensorflow_datasets: lazily

    try:
        if not cfg.dataset:
            raise DatasetError("none given: --config.dataset=NAME or PATH")
        info = read_dataset_info(resolve_dataset(cfg.dataset, data_dir=cfg.data_dir or None))
    except DatasetError as e:
        if cfg.resolution is None:
            raise ConfigError(f"the resolution comes from the dataset ({e}) or --config.resolution=N") from None
        info = {"channels": 3}
    c = copy.deepcopy(cfg)
    if c.resolution is None:
        c.resolution = info["resolution"]
    if c.img_channels is None:
        c.img_channels = info["channels"]
    return c


def resolve_auto(cfg: ml_collections.ConfigDict, num_devices: int) -> ml_collections.ConfigDict:
    """NVIDIA's ``--cfg=auto`` for a run on ``num_devices`` devices (its GPUs) at ``cfg.resolution``, the
    dataset's when None (`fill_from_dataset`, for any config; ``img_channels`` too): each of `AUTO_KEYS` left
    None (``experiments/auto.py``) gets auto's value; a value given (``--batch 32``) stays. As NVIDIA's, auto's
    values come from its own batch: a batch given changes the batch (and ``batch_gpu``, the batch over the
    devices) only, not the gamma, EMA or mbstd group derived from auto's. A copy; ``cfg`` itself when nothing
    is None."""
    cfg = fill_from_dataset(cfg)
    if not cfg.get("auto"):
        return cfg
    c = copy.deepcopy(cfg)
    # A W x H run takes auto's values of its long side, and the gamma of its area (NVIDIA's res**2).
    height, width = image_size.parse(c.resolution)
    res, gpus = max(height, width), num_devices
    own = max(min(gpus * min(4096 // res, 32), 64), gpus)  # auto's batch, which its other values follow
    batch = c.batch_size if c.batch_size is not None else own
    auto = {"batch_size": batch, "batch_gpu": batch // gpus, "D.mbstd_group_size": min(own // gpus, 4),
            "G.channel_base": 32768 if res >= 512 else 16384, "D.channel_base": 32768 if res >= 512 else 16384,
            "G_lr": 0.002 if res >= 1024 else 0.0025, "D_lr": 0.002 if res >= 1024 else 0.0025,
            "r1_gamma": 0.0002 * height * width / own, "ema_kimg": own * 10 / 32}
    changed = False
    for key, value in auto.items():
        *parents, leaf = key.split(".")
        section = c[parents[0]] if parents else c
        if section[leaf] is None:
            section[leaf], changed = value, True
    return c if changed else cfg


#: Values stylegan3's train.py derives from the batch, per image of it, for the keys an experiment leaves None:
#: G_ema's half-life (10 kimg per 32 images) and StyleGAN3-R's blur fade (200 kimg per 32), so that ``--batch``
#: moves them as NVIDIA's ``--batch`` does (``auto`` fills its EMA from its own batch first: `resolve_auto`).
BATCH_DERIVED = {"ema_kimg": 10 / 32, "blur_fade_kimg": 200 / 32}


def resolve_batch_derived(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``cfg`` with each `BATCH_DERIVED` key left None set from ``cfg.batch_size`` (a copy; ``cfg`` itself when
    none is None)."""
    unset = [key for key in BATCH_DERIVED if cfg.get(key, 0) is None]
    if not unset:
        return cfg
    c = copy.deepcopy(cfg)
    for key in unset:
        c[key] = c.batch_size * BATCH_DERIVED[key]
    return c


def experiment_path(name_or_path: str) -> Path:
    """``quickstart`` -> experiments/quickstart.py, ``ablations/stylegan2_c`` -> experiments/ablations/...; a path
    to a .py file is taken as is."""
    path = Path(name_or_path)
    if path.suffix == ".py":
        if not path.is_file():
            raise ConfigError(f"--experiment: no config file at {path}")
        return path
    path = EXPERIMENTS_DIR / f"{name_or_path}.py"
    if not path.is_file():
        found = (p.relative_to(EXPERIMENTS_DIR) for p in EXPERIMENTS_DIR.rglob("*.py"))
        names = sorted(p.with_suffix("").as_posix() for p in found if not any(s.startswith("_") for s in p.parts))
        raise ConfigError(f"--experiment: unknown experiment {name_or_path!r}; expected one of {names} "
                          "or a path to a config file")
    return path


class _BrokenExperimentError(ConfigError):
    """A broken experiment file (``FILE:LINE: ...``); an experiment that loads another (an ablation rung its
    previous rung) passes it on unchanged."""


def load_experiment(name_or_path: str) -> ml_collections.ConfigDict:
    """Import the experiment file and call its ``get_config()``, which returns an ``ml_collections.ConfigDict``.

    A broken file is a `ConfigError` of one line naming the file and the line: a syntax error, an exception
    while importing the file or in ``get_config()`` (its type and message; the exception is the ``__cause__``),
    a ``get_config()`` that returns anything else.
    """
    path = experiment_path(name_or_path)
    spec = importlib.util.spec_from_file_location(f"stylegan_jax_experiment_{path.stem}", path)
    filename = spec.origin  # the absolute path: the file's code objects' co_filename

    def broken(e: Exception, doing: str) -> _BrokenExperimentError:
        line, tb = None, e.__traceback__
        while tb is not None:  # the innermost line of this file
            if tb.tb_frame.f_code.co_filename == filename:
                line = tb.tb_lineno
            tb = tb.tb_next
        message = " ".join(str(e).split())
        if isinstance(e, SyntaxError) and e.filename == filename:
            line, message = e.lineno, " ".join(str(e.msg).split())
        return _BrokenExperimentError(f"{path}{f':{line}' if line else ''}: {doing}{type(e).__name__}"
                                      + (f": {message}" if message else ""))

    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except _BrokenExperimentError:
        raise
    except Exception as e:  # anything the file raises is the file's error
        raise broken(e, "") from e
    get_config = getattr(module, "get_config", None)
    if not callable(get_config):
        raise _BrokenExperimentError(f"{path}: an experiment file must define get_config()")
    try:
        cfg = get_config()
    except _BrokenExperimentError:
        raise
    except Exception as e:
        raise broken(e, "get_config() raised ") from e
    if not isinstance(cfg, ml_collections.ConfigDict):
        code = getattr(get_config, "__code__", None)
        line = f":{code.co_firstlineno}" if code is not None and code.co_filename == filename else ""
        raise _BrokenExperimentError(f"{path}{line}: get_config() returned {type(cfg).__name__}; expected an "
                                     "ml_collections.ConfigDict")
    return cfg


def valid_keys(cfg: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    """All dotted leaf keys of ``cfg``."""
    keys = []
    for key, value in cfg.items():
        # augpipe is one value (a preset name or a dict of AugmentPipe's keywords), though a copy of the config
        # holds its dict as a ConfigDict: set as a whole, as before the copy (shrink_to_tiny re-applies it)
        if isinstance(value, ml_collections.ConfigDict) and f"{prefix}{key}" != "augpipe":
            keys += valid_keys(value, f"{prefix}{key}.")
        else:
            keys.append(prefix + key)
    return keys


def _parse_value(text: str, current: object) -> object:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    if isinstance(current, bool) and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    return value


def _as_tuple(text: str) -> tuple:
    """The tuple a value given for a tuple key most likely meant: its literal in one (``0.99`` -> ``(0.99,)``),
    or its comma-separated words (``fid50k_full,kid50k_full`` -> ``('fid50k_full', 'kid50k_full')``)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return tuple(text.split(","))
    return value if isinstance(value, tuple) else (value,)


def apply_override(cfg: ml_collections.ConfigDict, key: str, text: str) -> None:
    """Set dotted ``key`` to the Python literal ``text``; an unknown key names the valid ones."""
    keys = valid_keys(cfg)
    if key not in keys:
        raise ConfigError(f"--config.{key}: unknown key; valid keys: {', '.join(keys)}")
    *parents, leaf = key.split(".")
    node = cfg
    for parent in parents:
        node = node[parent]
    try:
        node[leaf] = _parse_value(text, node[leaf])
    except TypeError:  # ml_collections keeps a field's type
        example = f"; e.g. --config.{key}=\"{_as_tuple(text)!r}\"" if isinstance(node[leaf], tuple) else ""
        raise ConfigError(f"--config.{key}={text}: expected a Python {type(node[leaf]).__name__} literal (the "
                          f"config holds {node[leaf]!r}){example}") from None
    except ValueError as e:
        raise ConfigError(f"--config.{key}={text}: {e}") from None


def to_json(cfg: ml_collections.ConfigDict) -> str:
    """The resolved config as JSON (written to the run directory)."""
    return json.dumps(cfg.to_dict(), indent=2, sort_keys=True, default=list)
