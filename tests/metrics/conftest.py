"""Shared fixtures: small random NVIDIA-format detectors, a 24-image conditional grayscale dataset and a tiny
conditional generator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax.data.images import encode_png
from stylegan_jax.data.tfds_builder import DatasetSpec, write_dataset
from stylegan_jax.models.stylegan2 import Generator
from tests.metrics.reference_nets import Weights, inception_ref, lpips_ref, vgg_features_ref
from tests.metrics.torchscript_writer import write_torchscript

DIV = 16  # test detectors have NVIDIA's graphs with 1/16 of the channels
RES, C_DIM = 16, 3
G_KWARGS = dict(z_dim=8, c_dim=C_DIM, w_dim=8, img_resolution=RES, img_channels=1, mapping_kwargs=dict(num_layers=1),
                synthesis_kwargs=dict(channel_base=128, channel_max=8, use_noise=False))


def random_images(seed, shape):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


@pytest.fixture(scope="session")
def detectors(tmp_path_factory):
    """A detector directory with small random inception-2015-12-05.pt and vgg16.pt; their state dicts."""
    root = tmp_path_factory.mktemp("detectors")
    inception = Weights(seed=1)
    inception_ref(inception, random_images(0, (1, 16, 16, 3)), DIV, num_classes=12)
    vgg = Weights(seed=2)
    vgg_features_ref(vgg, random_images(0, (1, 16, 16, 3)), DIV)
    lpips_ref(vgg, np.zeros((1, 32, 32, 3)), np.ones((1, 32, 32, 3)), DIV)
    vgg("layers.fc3.weight", (10, 4096 // DIV))  # in the real file, unused by the metrics
    write_torchscript(root / "inception-2015-12-05.pt", inception.state)
    write_torchscript(root / "vgg16.pt", vgg.state)
    return root, inception.state, vgg.state


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """24 blocky 16x16 grayscale images, class i % 3."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 4, 4, 1)).repeat(4, 1).repeat(4, 2).astype(np.uint8)
    spec = DatasetSpec(resolution=RES, channels=1, label_kind="class", c_dim=C_DIM, source="test")
    examples = [{"image": encode_png(im), "label": i % C_DIM} for i, im in enumerate(images)]
    return write_dataset(tmp_path_factory.mktemp("data") / "tiny", spec, examples)


@pytest.fixture(scope="session")
def generator():
    """(G, G_vars): 16x16 grayscale, 3 classes, no noise inputs (so images depend on z and c only)."""
    G = Generator(**G_KWARGS)
    return G, G.init(jax.random.key(0), jnp.zeros((1, 8)), jnp.zeros((1, C_DIM)), noise_mode="const")
