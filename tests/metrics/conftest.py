"""Shared fixtures: a detector directory with small random NVIDIA-format detectors."""

import numpy as np
import pytest

from tests.metrics.reference_nets import Weights, inception_ref, lpips_ref, vgg_features_ref
from tests.metrics.torchscript_writer import write_torchscript

DIV = 16  # test detectors have NVIDIA's graphs with 1/16 of the channels


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
