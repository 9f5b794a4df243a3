"""Finding and loading NVIDIA's feature detectors (TorchScript files placed by the user; nothing is
downloaded).

The detector directory is ``--detector-dir``, else ``$STYLEGAN_JAX_DETECTORS``, else
``~/.cache/stylegan_jax/detectors``. It holds NVIDIA's files under their own names:
``inception-2015-12-05.pt`` (FID, KID, IS) and ``vgg16.pt`` (precision/recall, PPL), from
https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.io.torch_format import TorchFormatError
from stylegan_jax.metrics.inception import InceptionV3
from stylegan_jax.metrics.torchscript import load_torchscript_weights
from stylegan_jax.metrics.vgg16 import VGG16

DETECTOR_DIR_ENV = "STYLEGAN_JAX_DETECTORS"
DEFAULT_DETECTOR_DIR = "~/.cache/stylegan_jax/detectors"
NVIDIA_METRICS_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
INCEPTION_FILE = "inception-2015-12-05.pt"
VGG16_FILE = "vgg16.pt"


class DetectorError(ValueError):
    """A detector file is missing or is not the expected network; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Detector:
    """A loaded detector: ``module.apply({"params": params}, images, method=...)``; ``name`` is the file's
    stem (``inception-2015-12-05``) and ``digest`` the MD5 of its bytes (keys the dataset statistics cache)."""

    name: str
    module: nn.Module
    params: Any
    digest: str


def detector_dir(path: str | os.PathLike | None = None) -> Path:
    """The detector directory: ``path`` if given, else $STYLEGAN_JAX_DETECTORS, else the default."""
    return Path(path or os.environ.get(DETECTOR_DIR_ENV) or DEFAULT_DETECTOR_DIR).expanduser()


def detector_file(filename: str, directory: str | os.PathLike | None = None) -> Path:
    """The path of ``filename`` in the detector directory; a clear error when it is not there."""
    root = detector_dir(directory)
    path = root / filename
    if root.exists() and not root.is_dir():
        raise DetectorError(f"detector directory {root} is a file, not a directory")
    if not path.is_file():
        source = ("--detector-dir" if directory else f"${DETECTOR_DIR_ENV}" if os.environ.get(DETECTOR_DIR_ENV)
                  else f"the default; set --detector-dir or ${DETECTOR_DIR_ENV} to use another")
        raise DetectorError(f"detector {filename} not found in {root} ({source}); download "
                            f"{NVIDIA_METRICS_URL}{filename} and place it there")
    return path


def _torch_params(weights: dict[str, np.ndarray], abstract: Any, path: Path, kind: str) -> Any:
    """Our parameter tree (shapes of ``abstract``) from a TorchScript state dict: dotted names, OIHW -> HWIO."""

    def leaf(key_path, spec):
        name = ".".join(str(k.key) for k in key_path[1:])  # drop the 'params' collection
        if name not in weights:
            raise DetectorError(f"{path} is not NVIDIA's {kind} (it has no tensor {name}; it holds "
                                f"{len(weights)} tensors such as {', '.join(list(weights)[:3])})")
        value = np.asarray(weights[name], np.float32)
        value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value
        if _without_ones(value.shape) == _without_ones(spec.shape):  # LPIPS's [C, 1, 1] weights as our [C]
            value = value.reshape(spec.shape)
        if value.shape != spec.shape:
            raise DetectorError(f"{path} is not NVIDIA's {kind}: {name} has shape {value.shape}, "
                                f"expected {spec.shape}")
        return jnp.asarray(value)

    return jax.tree_util.tree_map_with_path(leaf, abstract)


def _without_ones(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _read(path: Path, kind: str) -> tuple[dict[str, np.ndarray], str]:
    try:
        weights = load_torchscript_weights(path)
    except (TorchFormatError, OSError) as e:
        raise DetectorError(f"{path} is not NVIDIA's {kind} TorchScript file ({e})") from None
    with open(path, "rb") as f:
        digest = hashlib.md5(f.read()).hexdigest()
    return weights, digest


def _channels(weights: dict[str, np.ndarray], name: str, full: int, path: Path, kind: str) -> int:
    """The channel divisor of a (possibly width-reduced) file: ``full`` / the out-channels of ``name``."""
    if name not in weights or weights[name].ndim != 4 or full % weights[name].shape[0]:
        raise DetectorError(f"{path} is not NVIDIA's {kind} (no 4-D tensor {name} with a divisor of {full} "
                            "output channels)")
    return full // weights[name].shape[0]


@functools.lru_cache(maxsize=4)
def _load_cached(path: Path, mtime_ns: int, kind: str) -> Detector:
    weights, digest = _read(path, kind)
    if kind == "Inception-v3":
        div = _channels(weights, "layers.conv.weight", 32, path, kind)
        num_classes = weights["output.weight"].shape[0] if "output.weight" in weights else 1008
        module, method = InceptionV3(div, num_classes), InceptionV3.probabilities
        dummy = jnp.zeros((1, 8, 8, 3), jnp.uint8)
    else:
        div = _channels(weights, "layers.conv1.weight", 64, path, kind)
        module, method = VGG16(div), VGG16.features
        dummy = jnp.zeros((1, 224, 224, 3), jnp.float32)
    abstract = jax.eval_shape(lambda: module.init(jax.random.key(0), dummy, method=method))
    params = _torch_params(weights, abstract, path, kind)["params"]
    return Detector(path.stem, module, params, digest)


def _load(filename: str, kind: str, directory: str | os.PathLike | None) -> Detector:
    path = detector_file(filename, directory).resolve()
    return _load_cached(path, path.stat().st_mtime_ns, kind)


def load_inception(directory: str | os.PathLike | None = None) -> Detector:
    """NVIDIA's Inception-v3 (``inception-2015-12-05.pt``) from the detector directory."""
    return _load(INCEPTION_FILE, "Inception-v3", directory)


def load_vgg16(directory: str | os.PathLike | None = None) -> Detector:
    """NVIDIA's VGG16 with LPIPS weights (``vgg16.pt``) from the detector directory."""
    return _load(VGG16_FILE, "VGG16", directory)
