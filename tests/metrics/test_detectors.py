"""The Flax Inception-v3 and VGG16 against float64 NumPy forward passes, loaded from TorchScript-format files
written by a test writer (random weights, channels / 16); missing and wrong files give one clear line."""

import zipfile

import jax
import numpy as np
import pytest

from stylegan_jax.io.torch_format import TorchFormatError
from stylegan_jax.metrics.detectors import DETECTOR_DIR_ENV, DetectorError, detector_dir, load_inception, load_vgg16
from stylegan_jax.metrics.torchscript import load_torchscript_weights
from tests.metrics.conftest import DIV, random_images
from tests.metrics.reference_nets import Weights, inception_ref, lpips_ref, vgg_features_ref


@pytest.mark.slow
def test_inception_matches_numpy_float64(detectors):
    root, state, _ = detectors
    det = load_inception(root)
    assert det.name == "inception-2015-12-05" and len(det.digest) == 32
    images = random_images(3, (2, 37, 45, 3))  # not square, not 299: exercises the resize on both axes
    features, probs = jax.jit(lambda p, x: det.module.apply(
        {"params": p}, x, method=lambda m, x: (m.features(x), m.probabilities(x))))(det.params, images)
    ref_features, ref_probs = inception_ref(Weights(state), images, DIV, num_classes=12)
    assert features.shape == (2, 2048 // DIV) and probs.shape == (2, 12)
    scale = np.abs(ref_features).max()
    np.testing.assert_allclose(features, ref_features, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(probs, ref_probs, rtol=1e-4, atol=1e-6)
    assert np.std(ref_features) > 1e-2 * scale  # the random network did not collapse


@pytest.mark.slow
def test_vgg16_features_and_lpips_match_numpy_float64(detectors):
    root, _, state = detectors
    det = load_vgg16(root)
    images = random_images(4, (2, 40, 40, 3)).astype(np.float32)
    features = det.module.apply({"params": det.params}, images, method="features")
    ref = vgg_features_ref(Weights(state), images, DIV)
    np.testing.assert_allclose(features, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    a, b = images[:1], np.clip(images[1:] * 0.5 + 60, 0, 255)
    emb = det.module.apply({"params": det.params}, np.concatenate([a, b]), method="lpips_embedding")
    dist = float(np.square(np.asarray(emb[0], np.float64) - np.asarray(emb[1], np.float64)).sum())
    assert dist == pytest.approx(float(lpips_ref(Weights(state), a, b, DIV)[0]), rel=1e-4)


def test_missing_detector_names_file_and_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(DETECTOR_DIR_ENV, raising=False)
    with pytest.raises(DetectorError) as e:
        load_inception(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "inception-2015-12-05.pt" in msg and str(tmp_path) in msg and "--detector-dir" in msg
    monkeypatch.setenv(DETECTOR_DIR_ENV, str(tmp_path / "env"))
    assert detector_dir() == tmp_path / "env"
    with pytest.raises(DetectorError, match=r"vgg16\.pt not found in .*env \(\$STYLEGAN_JAX_DETECTORS\)"):
        load_vgg16()
    monkeypatch.delenv(DETECTOR_DIR_ENV)
    assert str(detector_dir()).endswith(".cache/stylegan_jax/detectors")


def test_wrong_kind_of_file_is_one_clear_line(detectors, tmp_path):
    root, _, _ = detectors
    (tmp_path / "inception-2015-12-05.pt").write_bytes((root / "vgg16.pt").read_bytes())
    with pytest.raises(DetectorError, match="is not NVIDIA's Inception-v3 .*layers.conv.weight"):
        load_inception(tmp_path)
    (tmp_path / "vgg16.pt").write_bytes(b"<html>not found</html>")
    with pytest.raises(DetectorError, match="is not NVIDIA's VGG16 TorchScript file .*not a zip"):
        load_vgg16(tmp_path)
    with zipfile.ZipFile(tmp_path / "vgg16.pt", "w") as z:  # a torch.save file: no code/
        z.writestr("archive/data.pkl", b"")
    with pytest.raises(DetectorError, match=r"torch\.save file, not a TorchScript archive") as e:
        load_vgg16(tmp_path)
    assert "\n" not in str(e.value)


def test_a_torchscript_module_that_holds_itself_is_one_clear_error(tmp_path):
    """A damaged or hostile archive whose module is its own submodule: an error naming it, not a recursion."""
    path = tmp_path / "cycle.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02c__torch__\nM\n)\x81q\x00}X\x04\x00\x00\x00selfh\x00sb.")
        archive.writestr("archive/code/__torch__.py", "")
    with pytest.raises(TorchFormatError, match="holds itself"):
        load_torchscript_weights(path)
