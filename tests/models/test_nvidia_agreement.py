"""Our G and D against NVIDIA's own code: tiny networks built and run by stylegan2-ada-pytorch, their
state dicts and outputs stored in ``tests/fixtures/nvidia_networks.npz`` (made by
``tests/fixtures/make_nvidia_networks.py``)."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.models.state_dict import state_dict_to_variables
from stylegan_jax.models.stylegan2 import Discriminator, Generator

FIXTURE = np.load(Path(__file__).parent.parent / "fixtures" / "nvidia_networks.npz")
CONFIGS = sorted({key.split("/")[0] for key in FIXTURE.files})


def load(name):
    cfg = json.loads(str(FIXTURE[f"{name}/kwargs"]))
    data = {k.split("/", 1)[1]: FIXTURE[k] for k in FIXTURE.files if k.startswith(name + "/")}
    G, D = Generator(**cfg["G"]), Discriminator(**cfg["D"])
    z, c = jnp.asarray(data["z"]), jnp.asarray(data["c"])
    img = jnp.asarray(data["img"]).transpose(0, 2, 3, 1)
    g_template = jax.eval_shape(lambda: G.init(jax.random.key(0), z, c))
    d_template = jax.eval_shape(lambda: D.init(jax.random.key(0), img, c))
    state = {prefix: {k[2:]: v for k, v in data.items() if k.startswith(prefix + "/")} for prefix in "GD"}
    g_vars = state_dict_to_variables(state["G"], g_template, "G")
    d_vars = state_dict_to_variables(state["D"], d_template, "D")
    return G, D, g_vars, d_vars, z, c, data


@pytest.mark.parametrize("name", CONFIGS)
def test_generator_and_discriminator_match_nvidia(name):
    G, D, g_vars, d_vars, z, c, data = load(name)
    ws = jax.jit(lambda v, z, c: G.apply(v, z, c, 0.7, 2, method=Generator.map))(g_vars, z, c)
    np.testing.assert_allclose(np.asarray(ws), data["ws"], rtol=1e-4, atol=1e-5)
    img = jax.jit(lambda v, ws: G.apply(v, ws, "const", method=Generator.synthesize))(g_vars, ws)
    expected = data["img"].transpose(0, 2, 3, 1)
    np.testing.assert_allclose(np.asarray(img), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    logits = jax.jit(D.apply)(d_vars, jnp.asarray(expected), c)
    np.testing.assert_allclose(np.asarray(logits), data["logits"], rtol=1e-4, atol=1e-4)


def test_state_dict_of_another_architecture_is_refused():
    G, _, g_vars, _, z, c, data = load(CONFIGS[0])
    state = {k[2:]: v for k, v in data.items() if k.startswith("G/")}
    other = Generator(**{**json.loads(str(FIXTURE[f"{CONFIGS[0]}/kwargs"]))["G"], "img_resolution": 32})
    template = jax.eval_shape(lambda: other.init(jax.random.key(0), z, c))
    with pytest.raises(ValueError, match="missing"):
        state_dict_to_variables(state, template, "G")
