"""R3GAN in the training loop: the roadmap's rungs and the recipe take the same step on 4 fake devices as on
1; D's step comes first and G's step sees its own real batch; G_ema starts as G (half-life 0); the scheduled
augmentation probability is R3GAN's; a run resumes bit for bit from every checkpoint."""

import json

import jax
import numpy as np
import pytest

from stylegan_jax.models.r3gan import preset
from stylegan_jax.training import hyperparams
from stylegan_jax.training.config import load_experiment, shrink_to_tiny
from stylegan_jax.training.loop import Trainer
from stylegan_jax.training.steps import Phases, active_phases
from tests.training.conftest import leaves
from tests.training.test_resume import assert_resumes_from_every_checkpoint

RUNGS = [f"ablations/r3gan_{r}" for r in "abcde"]


def tiny(data_dir, experiment: str, **overrides):
    c = load_experiment(experiment)
    c.update(tiny=True, data_dir=str(data_dir), **overrides)
    return c


# The paper's Table 2 (FFHQ-256): FID, G and D parameters (millions) of each rung.
TABLE_2 = {"a": ("7.516", 24.767, 24.001), "b": ("12.46", 18.890, 23.996), "c": ("11.65", 18.890, 23.996),
           "d": ("9.950", 23.378, 23.282), "e": ("7.045", 23.058, 23.010)}


def test_rungs_differ_as_table_2_says_with_its_parameter_counts():
    import jax.numpy as jnp

    from stylegan_jax.models import get_family
    from stylegan_jax.training.config import experiment_path

    cfgs = [load_experiment(name) for name in RUNGS]
    assert [c.model for c in cfgs] == ["stylegan2", "stylegan2_stripped", "stylegan2_stripped", "r3gan", "r3gan"]
    assert [c.loss for c in cfgs] == ["nonsaturating", "nonsaturating", "rpgan", "rpgan", "rpgan"]
    assert [c.lazy_regularization for c in cfgs] == [True, False, False, False, False]
    assert [c.G_lr for c in cfgs] == [0.0025] + [5e-5] * 4 and {c.kimg for c in cfgs} == {5000.0}
    assert [c.pl_weight for c in cfgs] == [2.0, 0, 0, 0, 0] and [c.d_first for c in cfgs] == [False, False] + [True] * 3
    for name, cfg in zip(RUNGS, cfgs, strict=True):
        fid, g_count, d_count = TABLE_2[name[-1]]
        assert f"FID {fid}" in " ".join(experiment_path(name).read_text().split())
        G, D = get_family(cfg.model).build(cfg, 0)
        shapes = (jax.eval_shape(lambda G=G: G.init(jax.random.key(0), jnp.zeros((1, G.z_dim)), jnp.zeros((1, 0)))),
                  jax.eval_shape(lambda D=D: D.init(jax.random.key(0), jnp.zeros((1, 256, 256, 3)), jnp.zeros((1, 0)))))
        counts = [sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(s["params"])) for s in shapes]
        assert [round(n / 1e6, 3) for n in counts] == [g_count, d_count], name


# Rungs B (stripped StyleGAN2, the classic loss), C (RpGAN with R1 and R2 on B's networks) and D (R3GAN's networks
# with ungrouped 1-3-1 bottlenecks); E trains R3GAN's final grouped networks, as r3gan_cifar10 does, with D's
# constant settings.
@pytest.mark.parametrize("experiment", ["r3gan_cifar10", *RUNGS[1:4]])
def test_step_on_four_devices_equals_one_device(data_dir, tmp_path, experiment):
    # The rungs without augmentation (the recipe keeps R3GAN's pipe): ADA's own tests cover it on 4 devices.
    cfg = tiny(data_dir, experiment, **({} if experiment == "r3gan_cifar10" else {"aug": "noaug"}))
    results = []
    for devices in (jax.devices()[:1], jax.devices()[:4]):
        trainer = Trainer(cfg, tmp_path / str(len(devices)), devices=devices)
        state = trainer.initial_state()
        for step in range(2):
            state, metrics = trainer.run_iteration(state, trainer.next_batch(), step)
        trainer.manager.close()
        results.append(leaves(state))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    assert list(metrics) == (["D_main", "G_main"] if trainer.cfg.d_first else ["G_main", "D_main"])


@pytest.fixture(scope="module")
def recipe_trainer(data_dir, tmp_path_factory):
    """The tiny R3GAN recipe on one device, its phases compiled once for the tests below."""
    trainer = Trainer(tiny(data_dir, "r3gan_cifar10"), tmp_path_factory.mktemp("r3gan"), devices=jax.devices()[:1])
    yield trainer
    trainer.manager.close()


def test_d_steps_first_and_each_network_sees_its_own_real_batch(recipe_trainer):
    trainer = recipe_trainer
    cfg = trainer.cfg
    assert active_phases(cfg, 0) == ["D_main", "G_main"]
    reals, labels = trainer.next_batch()
    assert reals.shape[:2] == (trainer.layout.minibatches, 2 * trainer.layout.batch_gpu)  # D's half, G's half
    b = trainer.layout.batch_gpu
    swapped = np.array(reals)
    swapped[:, b:] = -swapped[:, b:]  # G's half changed, D's kept

    def run(phase, images):
        state = trainer.initial_state()
        if phase == "G_main":
            state, _ = trainer.phases["D_main"](state, reals, labels, np.float32(1), np.float32(0))
        state, out = trainer.phases[phase](state, images, labels, np.float32(1), np.float32(0))
        return leaves(state), {k: float(v) for k, v in jax.device_get(out).items()}

    d_same, d_swapped = run("D_main", reals), run("D_main", swapped)
    for a, c in zip(d_same[0], d_swapped[0], strict=True):
        np.testing.assert_array_equal(a, c)  # D never sees G's half
    g_same, g_swapped = run("G_main", reals), run("G_main", swapped)
    assert g_same[1]["Loss/G/loss"] != g_swapped[1]["Loss/G/loss"]  # G's pairing uses G's half

    state = trainer.initial_state()  # one iteration: G_ema = G (half-life 0 at the start), step counted once
    state, _ = trainer.run_iteration(state, (reals, labels), 0)
    assert int(state.step) == 1
    for a, c in zip(leaves(state.g_params), leaves(state.g_ema_params), strict=True):
        np.testing.assert_array_equal(a, c)


def test_the_augmentation_probability_follows_the_schedule(recipe_trainer):
    trainer = recipe_trainer
    cfg, state = trainer.cfg, trainer.initial_state()
    assert cfg.aug == "fixed" and cfg.decay_kimg == cfg.kimg  # tiny: the schedules' whole course
    seen = []
    for step in range(4):
        state, _ = trainer.run_iteration(state, trainer.next_batch(), step)
        seen.append(float(state.aug["p"]))
        expected = float(hyperparams.at(cfg, step * cfg.batch_size)["p"])
        assert seen[-1] == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert seen[0] == 0 and 0 < seen[1] < seen[2] < seen[3] <= 0.55


def test_scores_are_r3gans_relativistic_logits(recipe_trainer):
    """R3GAN's loss.py reports G's Loss/scores/fake = D(G(z)) - D(x) and D's Loss/scores/real = D(x) - D(G(z)),
    per pair, with their signs, and no other scores."""
    t = recipe_trainer
    phases = Phases(t.cfg, t.family, t.G, t.D, t.g_tx, t.d_tx, t.layout, None)
    fake, real = np.array([[3.0], [-1.0], [0.5]], np.float32), np.array([[1.0], [2.0], [0.5]], np.float32)
    expected = {"G": ("fake", [2.0, -3.0, 0.0]), "D": ("real", [-2.0, 3.0, 0.0])}
    for net, (name, scores) in expected.items():
        out = {k: float(v) for k, v in phases.scores(net, fake, real).items()}
        assert out == pytest.approx({f"Loss/scores/{name}": np.mean(scores), f"Loss/signs/{name}": -0.0,
                                     f"Loss/scores/{name}@squares": np.mean(np.square(scores)),
                                     f"Loss/signs/{name}@squares": 2 / 3, f"Loss/scores/{name}@count": 3,
                                     f"Loss/signs/{name}@count": 3})
    _, out = t.phases["D_main"](t.initial_state(), *t.next_batch(), np.float32(1), np.float32(0))
    assert {k for k in out if k.startswith(("Loss/scores", "Loss/signs"))} == {
        "Loss/scores/real", "Loss/scores/real@squares", "Loss/scores/real@count", "Loss/signs/real",
        "Loss/signs/real@squares", "Loss/signs/real@count"}


# brownvc/R3GAN's train.py presets and README commands: (preset, batch, batch per GPU (batch / --gpus), gamma
# base and final, G_ema half-life final (Mimg), augmentation p final, decay length (Mimg), --cond).
R3GAN_RECIPES = {
    "r3gan_cifar10": ("CIFAR10", 512, 64, (0.05, 0.005), 5.0, 0.55, 20.0, True),
    "r3gan_ffhq64": ("FFHQ-64", 256, 32, (2.0, 0.2), 0.5, 0.3, 20.0, False),
    "r3gan_ffhq256": ("FFHQ-256", 256, 32, (150.0, 15.0), 0.5, 0.3, 20.0, False),
    "r3gan_imagenet32": ("ImageNet-32", 4096, 128, (0.5, 0.05), 50.0, 0.5, 200.0, True),
    "r3gan_imagenet64": ("ImageNet-64", 4096, 64, (1.0, 0.1), 50.0, 0.4, 200.0, True),
}


@pytest.mark.parametrize("experiment", sorted(R3GAN_RECIPES))
def test_experiments_are_r3gans_presets_and_recipes(experiment):
    preset_name, batch, batch_gpu, gamma, ema_mimg, p, decay_mimg, conditional = R3GAN_RECIPES[experiment]
    c = load_experiment(experiment)
    assert (c.batch_size, c.batch_gpu, c.conditional, c.xflip) == (batch, batch_gpu, conditional, True)
    assert (c.r1_gamma, c.decay.r1_gamma, c.r2_gamma) == (gamma[0], gamma[1], None)
    assert (c.ema_kimg, c.decay.ema_kimg, c.p, c.decay.p) == (0.0, ema_mimg * 1000, 0.0, p)
    assert (c.G_lr, c.decay.G_lr, c.betas, c.decay.beta2) == (2e-4, 5e-5, (0.0, 0.9), 0.99)
    assert c.decay_kimg == decay_mimg * 1000
    assert (c.G, c.D) == preset(preset_name, conditional=conditional)  # train.py's: tests/models/test_r3gan.py


def r3gan_cosine(nimg: float, base: float, final: float, total_nimg: float) -> float:
    """R3GAN's ``cosine_decay_with_warmup`` without warm-up or hold (training/training_loop.py), float64."""
    decay = 0.5 * (1 + np.cos(np.pi * nimg / total_nimg))
    return final if nimg > total_nimg else base + (1 - decay) * (final - base)


@pytest.mark.slow
def test_r3gan_resumes_from_every_periodic_checkpoint(data_dir, tmp_path):
    # tiny: 8 iterations of 8 images, NVIDIA's tick 0 after the first, then a tick every 2, a checkpoint every 2
    # ticks (1, 5) and at the end (8); every hyper-parameter moves along its schedule over the 8.
    cfg = tiny(data_dir, "r3gan_cifar10", keep=100)
    assert_resumes_from_every_checkpoint(cfg, tmp_path, [1, 5, 8])
    # R3GAN's per-tick record of its schedules, at each tick's last iteration (the images before it)
    cfg = shrink_to_tiny(cfg)  # what the run trained: the schedules' whole course within its 64 images
    total, lines = cfg.decay_kimg * 1000, (tmp_path / "full" / "stats.jsonl").read_text().splitlines()
    assert len(lines) == 5
    for stats in map(json.loads, lines):
        nimg = round(stats["Progress/kimg"]["mean"] * 1000) - cfg.batch_size
        expected = {"Progress/lr": r3gan_cosine(nimg, cfg.G_lr, cfg.decay.G_lr, total),
                    "Progress/beta2": r3gan_cosine(nimg, cfg.betas[1], cfg.decay.beta2, total),
                    "Progress/gamma": r3gan_cosine(nimg, cfg.r1_gamma, cfg.decay.r1_gamma, total),
                    "Progress/ema_mimg": r3gan_cosine(nimg, cfg.ema_kimg, cfg.decay.ema_kimg, total) / 1000}
        assert {k: stats[k]["mean"] for k in expected} == pytest.approx(expected, rel=1e-5)
