"""R3GAN against brownvc/R3GAN's own code: small random networks' outputs and the parameter names, shapes and
counts of train.py's presets (``tests/fixtures/make_r3gan_fixtures.py``); the fix-up initialisation; the
config errors; reduced precision; the training step's call patterns."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from stylegan_jax.errors import ConfigError
from stylegan_jax.models import get_family
from stylegan_jax.models.r3gan import (
    Discriminator,
    Generator,
    config_defaults,
    interpolation_filter,
    preset,
    residual_gain,
)
from stylegan_jax.models.state_dict import flatten_variables, state_dict_to_variables

FIXTURES = Path(__file__).parent.parent / "fixtures"
GOLDEN = np.load(FIXTURES / "r3gan_golden.npz")
NETS = sorted({key.split("/")[0] for key in GOLDEN.files})
COUNTS = json.loads((FIXTURES / "r3gan_param_counts.json").read_text())


def golden_networks(net: str) -> tuple[Generator, Discriminator]:
    cfg = json.loads(str(GOLDEN[f"{net}/config"]))
    lists = ("width_per_stage", "cardinality_per_stage", "blocks_per_stage")
    shared = dict(c_dim=cfg["c_dim"], img_resolution=cfg["img_resolution"], img_channels=3,
                  expansion_factor=cfg["expansion_factor"], kernel_size=cfg["kernel_size"],
                  resampling_filter=tuple(cfg["resampling_filter"]))
    G = Generator(z_dim=cfg["z_dim"], condition_embedding_dim=cfg["G_embedding"],
                  **{k: tuple(cfg[k]) for k in lists}, **shared)
    D = Discriminator(condition_embedding_dim=cfg["D_embedding"], **{k: tuple(cfg[k][::-1]) for k in lists}, **shared)
    return G, D


def torch_state(net: str, prefix: str) -> dict[str, np.ndarray]:
    start = f"{net}/{prefix}/"
    return {key[len(start):]: GOLDEN[key] for key in GOLDEN.files if key.startswith(start)}


@pytest.mark.parametrize("net", NETS)
def test_forward_equals_r3gans(net):
    G, D = golden_networks(net)
    z, c, img = GOLDEN[f"{net}/z"], GOLDEN[f"{net}/c"], GOLDEN[f"{net}/img"]
    g_vars = state_dict_to_variables(torch_state(net, "G"), jax.eval_shape(lambda: G.init(jax.random.key(0), z, c)))
    d_vars = state_dict_to_variables(torch_state(net, "D"), jax.eval_shape(lambda: D.init(jax.random.key(0), img, c)))
    g_out = jax.jit(lambda v: G.apply(v, z, c, noise_mode="const"))(g_vars)
    d_out = jax.jit(lambda v: D.apply(v, img, c))(d_vars)[:, 0]
    for ours, key in ((g_out, "G_out"), (d_out, "D_out")):
        expected = GOLDEN[f"{net}/{key}"]
        assert ours.dtype == jnp.float32 and ours.shape == expected.shape
        np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_allclose(interpolation_filter(json.loads(str(GOLDEN[f"{net}/config"]))["resampling_filter"]),
                               GOLDEN[f"{net}/kernel"], rtol=1e-6)


def family_networks(G_cfg, D_cfg, c_dim: int, resolution: int, img_channels: int = 3):
    cfg = ml_collections.ConfigDict(dict(resolution=resolution, img_channels=img_channels, G=G_cfg, D=D_cfg))
    return get_family("r3gan").build(cfg, c_dim)


def shapes(module, *args) -> dict[str, tuple[int, ...]]:
    variables = jax.eval_shape(lambda: module.init(jax.random.key(0), *args))
    assert set(variables) == {"params"}
    return {name: tuple(leaf.shape) for name, leaf in flatten_variables(variables).items()}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_presets_have_r3gans_parameters(name):
    entry = COUNTS[name]
    c_dim, res = entry["c_dim"], entry["G_kwargs"]["img_resolution"]
    G_cfg, D_cfg = preset(name, conditional=c_dim > 0)
    for ours, theirs in ((G_cfg, entry["G_kwargs"]), (D_cfg, entry["D_kwargs"])):  # train.py's values
        assert ours.width_per_stage == theirs["WidthPerStage"]
        assert ours.cardinality_per_stage == theirs["CardinalityPerStage"]
        assert ours.blocks_per_stage == theirs["BlocksPerStage"]
        assert ours.fp16_stages == theirs["FP16Stages"] and ours.expansion_factor == theirs["ExpansionFactor"]
        assert ours.condition_embedding_dim == theirs.get("ConditionEmbeddingDimension", 0)
    assert G_cfg.z_dim == entry["G_kwargs"]["NoiseDimension"]
    G, D = family_networks(G_cfg, D_cfg, c_dim, res)
    c = jnp.zeros((1, c_dim))
    for module, key, args in ((G, "G", (jnp.zeros((1, G.z_dim)), c)), (D, "D", (jnp.zeros((1, res, res, 3)), c))):
        ours = shapes(module, *args)
        assert sorted(ours.items()) == [(n, tuple(s)) for n, s in entry[key]["params"]]
        assert sum(int(np.prod(s)) for s in ours.values()) == entry[key]["count"]


def test_defaults_are_the_ffhq_256_preset():
    G_cfg, D_cfg = config_defaults()
    G_ffhq, D_ffhq = preset("FFHQ-256", conditional=True)
    assert G_cfg == G_ffhq and D_cfg == D_ffhq
    assert (G_cfg.condition_embedding_dim, D_cfg.condition_embedding_dim) == (64, 768)
    assert preset("FFHQ-256")[0].condition_embedding_dim == 0
    with pytest.raises(ConfigError, match="unknown R3GAN preset 'FFHQ-1024'"):
        preset("FFHQ-1024")


def test_fixup_initialisation():
    G = Generator(z_dim=64, c_dim=10, img_resolution=8, img_channels=3, width_per_stage=(128, 96),
                  cardinality_per_stage=(8, 4), blocks_per_stage=(2, 1), condition_embedding_dim=32)
    params = jax.jit(G.init)(jax.random.key(0), jnp.zeros((1, 64)), jnp.zeros((1, 10)))["params"]
    flat = flatten_variables({"params": params})
    gain = residual_gain(3)
    assert np.isclose(gain, np.sqrt(2 / 1.04) * 3 ** -0.25)
    expected_std = {
        "MainLayers.0.Layers.1.LinearLayer1.Layer.weight": gain / np.sqrt(128),
        "MainLayers.0.Layers.1.LinearLayer2.Layer.weight": gain / np.sqrt(256 // 8 * 9),
        "MainLayers.1.Layers.0.LinearLayer.Layer.weight": 1 / np.sqrt(128),
        "MainLayers.0.Layers.0.LinearLayer.weight": 1 / np.sqrt(64 + 32),
        "MainLayers.0.Layers.0.Basis": 1.0,
        "AggregationLayer.Layer.weight": 1 / np.sqrt(96),
    }
    for name, std in expected_std.items():
        assert abs(float(np.std(flat[name])) / std - 1) < 0.1, name
        assert abs(float(np.mean(flat[name]))) < 0.1 * std, name
    zero = [n for n in flat if n.endswith(("LinearLayer3.Layer.weight", ".Bias"))]
    assert len(zero) == 3 * 3 and all(not np.any(flat[n]) for n in zero)
    D = Discriminator(c_dim=10, img_resolution=4, img_channels=3, width_per_stage=(16,), cardinality_per_stage=(2,),
                      blocks_per_stage=(1,), condition_embedding_dim=512)
    d_flat = flatten_variables(jax.jit(D.init)(jax.random.key(1), jnp.zeros((1, 4, 4, 3)), jnp.zeros((1, 10))))
    embedding = d_flat["EmbeddingLayer.weight"]  # [512, 10]: gain 1 / sqrt(512), fan-in 10
    assert embedding.shape == (512, 10)
    assert abs(float(np.std(embedding)) * np.sqrt(512 * 10) - 1) < 0.1
    assert d_flat["MainLayers.0.Layers.1.Basis.weight"].shape == (16, 1, 4, 4)
    # With the last conv of every block zero, each block starts as the identity: its other parameters do not
    # change G's output.
    z, c = jax.random.normal(jax.random.key(2), (2, 64)), jnp.eye(10)[:2]
    rng = np.random.default_rng(1)
    moved = {name: value + rng.standard_normal(value.shape) if any(
        layer in name for layer in ("NonLinearity", "LinearLayer1", "LinearLayer2")) else value
        for name, value in flat.items()}
    moved = state_dict_to_variables(moved, {"params": params})["params"]
    apply = jax.jit(lambda p: G.apply({"params": p}, z, c))
    np.testing.assert_array_equal(apply(params), apply(moved))


@pytest.mark.parametrize(("section", "change", "key"), [
    ("G", dict(img_resolution=64), "--config.G.width_per_stage"),
    ("D", dict(img_resolution=128), "--config.D.width_per_stage"),
    ("G", dict(cardinality_per_stage=(96, 96)), "--config.G.cardinality_per_stage"),
    ("D", dict(blocks_per_stage=(2,) * 6), "--config.D.blocks_per_stage"),
    ("G", dict(cardinality_per_stage=(96,) * 4 + (48, 24, 7)), "--config.G.cardinality_per_stage"),
    ("D", dict(fp16_stages=(7,)), "--config.D.fp16_stages"),
    ("G", dict(c_dim=10, condition_embedding_dim=0), "--config.G.condition_embedding_dim"),
    ("G", dict(blocks_per_stage=(0,) * 7), "--config.G.blocks_per_stage"),
])
def test_a_bad_config_is_one_line_naming_its_key(section, change, key):
    G_cfg, D_cfg = config_defaults()
    cls, cfg = (Generator, G_cfg) if section == "G" else (Discriminator, D_cfg)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.to_dict().items()}
    kwargs = {**kwargs, "c_dim": 0, "img_resolution": 256, "img_channels": 3, **change}
    module = cls(**kwargs)
    x = jnp.zeros((1, 64)) if section == "G" else jnp.zeros((1, 8, 8, 3))
    args = (x, jnp.zeros((1, kwargs["c_dim"])))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        jax.eval_shape(lambda: module.init(jax.random.key(0), *args))
    assert "\n" not in str(info.value)


def test_default_config_at_the_wrong_resolution_names_the_key():
    G, D = family_networks(*config_defaults(), c_dim=0, resolution=64)
    with pytest.raises(ConfigError, match=r"--config\.G\.width_per_stage has 7 stages.*64px needs 5 stages"):
        jax.eval_shape(lambda: G.init(jax.random.key(0), jnp.zeros((1, 64)), jnp.zeros((1, 0))))


SMALL = dict(width_per_stage=[32, 32, 16], cardinality_per_stage=[4, 4, 2], blocks_per_stage=[1, 1, 1],
             expansion_factor=2, kernel_size=3, resampling_filter=[1, 2, 1])


def random_values(template: dict) -> dict:
    """``template``'s float32 leaves filled with N(0, 1 / fan_in) weights, N(0, 0.3^2) vectors (NumPy draws:
    compiling JAX's RNG for every shape would take longer than the test)."""
    rng = np.random.default_rng(0)

    def draw(leaf):
        assert leaf.dtype == jnp.float32
        scale = 1 / np.sqrt(np.prod(leaf.shape[1:])) if len(leaf.shape) > 1 else 0.3
        return jnp.asarray(rng.standard_normal(leaf.shape) * scale, jnp.float32)

    return jax.tree_util.tree_map(draw, template)


def test_the_training_calls_gray_images_and_reduced_precision():
    G_cfg = ml_collections.ConfigDict(dict(SMALL, z_dim=16, condition_embedding_dim=16, fp16_stages=[-1, -2]))
    D_cfg = ml_collections.ConfigDict({**{k: v[::-1] if isinstance(v, list) and k != "resampling_filter" else v
                                          for k, v in SMALL.items()}, "condition_embedding_dim": 32,
                                       "fp16_stages": [1, 0]})
    G, D = family_networks(G_cfg, D_cfg, c_dim=4, resolution=16, img_channels=1)
    z, c = jax.random.normal(jax.random.key(0), (3, 16)), jnp.eye(4)[:3]
    g_vars = random_values(jax.eval_shape(lambda: G.init(jax.random.key(1), z, c, noise_mode="const")))
    d_params = random_values(jax.eval_shape(lambda: D.init(jax.random.key(2), jnp.zeros((3, 16, 16, 1)), c)))["params"]
    img = jax.jit(lambda v, k: G.apply(v, z, c, rngs={"noise": k}))(g_vars, jax.random.key(3))
    assert img.shape == (3, 16, 16, 1) and img.dtype == jnp.float32
    exact = jax.jit(lambda v: G.apply(v, z, c, noise_mode="const", force_fp32=True))(g_vars)
    assert not np.array_equal(img, exact)  # the last two stages ran in bfloat16
    np.testing.assert_allclose(img, exact, atol=0.05 * float(jnp.abs(exact).max()))
    d_apply = jax.jit(lambda x, c: D.apply({"params": d_params}, x, c))
    logits = d_apply(img, c)
    assert logits.shape == (3, 1) and logits.dtype == jnp.float32
    assert not np.allclose(logits, d_apply(img, jnp.eye(4)[1:4]))
    # R1 needs D's gradient with respect to its input, in float32.
    total = jax.jit(lambda x: jnp.sum(D.apply({"params": d_params}, x, c, force_fp32=True)))
    grad = jax.jit(jax.grad(total))(exact)
    assert grad.shape == exact.shape and bool(jnp.all(jnp.isfinite(grad)))
    # a central difference along a random direction (D's leaky ReLUs make wider steps cross kinks: 3% off at
    # h = 1e-2; here 0.3%)
    direction, h = jax.random.normal(jax.random.key(4), exact.shape), 3e-4
    slope = (total(exact + h * direction) - total(exact - h * direction)) / (2 * h)
    assert float(jnp.vdot(grad, direction)) == pytest.approx(float(slope), rel=2e-2)
