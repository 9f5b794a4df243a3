"""Built-in datasets (offline, shapes, counts) and the dataset resolver."""

import socket
import tempfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import skimage
from sklearn.datasets import load_digits

from stylegan_jax.data import (
    DATA_DIR_ENV,
    DatasetError,
    check_dataset_info,
    default_data_dir,
    read_dataset_info,
    resolve_dataset,
)
from stylegan_jax.data.pipeline import decode, open_source


def stored(path: Path) -> tuple[np.ndarray, list]:
    """All images uint8 (N, H, W, C) and raw labels of a dataset, in stored order."""
    source = open_source(path)
    records = [source[i] for i in range(len(source))]
    images = np.stack([decode(r, label_kind="none", c_dim=0)["image"] for r in records])
    return images, [r.get("label") for r in records]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("datasets")


@pytest.fixture(scope="module", autouse=True)
def no_network():
    """Building the built-ins must not touch the network."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access while building a built-in dataset")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        yield


def lanczos_uint8(pictures: np.ndarray, size: tuple[int, int], box: tuple | None = None) -> np.ndarray:
    """Float pictures [N, h, w] in [0, 1] -> uint8 [N, H, W]: Pillow's Lanczos resize to ``size`` (W, H) of
    ``box`` in float, times 255, rounded and clipped."""
    resized = [np.asarray(PIL.Image.fromarray(p.astype(np.float32), mode="F").resize(
        size, PIL.Image.Resampling.LANCZOS, box=box)) for p in pictures]
    return np.clip(np.round(np.stack(resized) * 255), 0, 255).astype(np.uint8)


def test_lfw_faces(data_dir):
    path = resolve_dataset("lfw-faces", data_dir=data_dir)
    assert path == data_dir / "lfw-faces"
    info = read_dataset_info(path)
    assert (info["num_images"], info["resolution"], info["channels"], info["c_dim"]) == (100, 32, 1, 0)
    images, _ = stored(path)
    assert images.shape == (100, 32, 32, 1)
    # The first 100 entries of the file (the faces), in order: shrunk back to 25x25, each image matches; and
    # each is the face's Lanczos resize in float, times 255, rounded (the pixel range included).
    faces = np.load(Path(skimage.__file__).parent / "data" / "lfw_subset.npy")[:100]
    for face, image in zip(faces, images, strict=True):
        small = PIL.Image.fromarray(image[..., 0].astype(np.float32) / 255, mode="F").resize((25, 25))
        assert np.corrcoef(np.asarray(small).ravel(), face.ravel())[0, 1] > 0.95
    np.testing.assert_array_equal(images[..., 0], lanczos_uint8(faces, (32, 32)))
    mtime = (path / "dataset_info.json").stat().st_mtime_ns
    assert resolve_dataset("lfw-faces", data_dir=data_dir) == path  # built once, then reused
    assert (path / "dataset_info.json").stat().st_mtime_ns == mtime


def test_lfw_faces_portrait_is_the_centred_three_by_four_box(data_dir):
    """quickstart_portrait's data: the middle 18.75 of each 25x25 face's columns, all rows, as 24x32 (W x H).
    A bilinear resize of that box correlates above 0.98 with every image; the whole face squashed, 0.23."""
    path = resolve_dataset("lfw-faces-portrait", data_dir=data_dir)
    info = read_dataset_info(path)
    assert (info["num_images"], info["resolution"], info["channels"]) == (100, "24x32", 1)
    images, _ = stored(path)
    assert images.shape == (100, 32, 24, 1)
    faces = np.load(Path(skimage.__file__).parent / "data" / "lfw_subset.npy")[:100]
    for face, image in zip(faces, images, strict=True):
        box = PIL.Image.fromarray(face.astype(np.float32), mode="F").resize((24, 32), PIL.Image.BILINEAR,
                                                                            box=(3.125, 0, 21.875, 25))
        assert np.corrcoef(np.asarray(box).ravel(), image[..., 0].ravel())[0, 1] > 0.98
    np.testing.assert_array_equal(images[..., 0], lanczos_uint8(faces, (24, 32), box=(3.125, 0, 21.875, 25)))


@pytest.mark.parametrize(("name", "side"), [("digits", 32), ("digits-16", 16)])
def test_digits(data_dir, name, side):
    path = resolve_dataset(name, data_dir=data_dir)
    info = read_dataset_info(path)
    assert (info["num_images"], info["resolution"], info["channels"]) == (1797, side, 1)
    assert (info["label_kind"], info["c_dim"]) == ("class", 10)
    images, labels = stored(path)
    assert images.shape == (1797, side, side, 1)
    digits = load_digits()
    np.testing.assert_array_equal([int(x) for x in labels], digits.target)
    # Ink where the 8x8 digit has ink: block means of the enlarged image follow the original.
    blocks = images[..., 0].astype(np.float64).reshape(1797, 8, side // 8, 8, side // 8).mean((2, 4))
    assert np.corrcoef(blocks.ravel(), digits.images.ravel())[0, 1] > 0.9
    np.testing.assert_array_equal(images[..., 0], lanczos_uint8(digits.images / 16, (side, side)))  # ink 0..16


def test_missing_dataset_says_where_and_how(tmp_path):
    with pytest.raises(DatasetError) as e:
        resolve_dataset("ffhq256", data_dir=tmp_path)
    message = str(e.value)
    assert "\n" not in message and str(tmp_path / "ffhq256") in message
    assert (
        f"python -m stylegan_jax.dataset_tool --source /path/to/images --dest {tmp_path / 'ffhq256'} "
        "--resolution 256" in message
    )
    with pytest.raises(DatasetError, match=str(tmp_path / "elsewhere" / "mine")):
        resolve_dataset(tmp_path / "elsewhere" / "mine", data_dir=tmp_path)
    with pytest.raises(DatasetError, match=f"--dest {tmp_path / 'cars512x384'} --resolution 512x384$"):
        resolve_dataset("cars512x384", data_dir=tmp_path)  # W x H, as the README names such a dataset


def test_user_dataset_by_name_and_path(data_dir, tmp_path):
    (tmp_path / "mine").symlink_to(data_dir / "lfw-faces")
    assert resolve_dataset("mine", data_dir=tmp_path) == tmp_path / "mine"
    assert resolve_dataset(data_dir / "lfw-faces", data_dir=tmp_path) == data_dir / "lfw-faces"


def test_data_dir_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert default_data_dir() == Path.home() / ".cache" / "stylegan_jax" / "datasets"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert default_data_dir() == tmp_path
    with pytest.raises(DatasetError, match=str(tmp_path / "ffhq1024")):
        resolve_dataset("ffhq1024")


def test_check_dataset_info(data_dir):
    info = read_dataset_info(resolve_dataset("digits-16", data_dir=data_dir))
    check_dataset_info(info, resolution=16, channels=1, c_dim=10)
    with pytest.raises(DatasetError, match=r"resolution 16 \(config wants 32\), c_dim 10 \(config wants 0\); "
                       r"--config.resolution=16 --config.c_dim=10 trains at the dataset's$"):
        check_dataset_info(info, resolution=32, c_dim=0)


def test_building_a_dataset_writes_nothing_outside_its_directory(tmp_path, monkeypatch):
    """TFDS's lookup of published metadata leaves an empty ``tmp*tfds`` directory in the system's temp dir on
    every build unless our builder skips it."""
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    resolve_dataset("digits-16", data_dir=tmp_path / "data")
    assert list(system_tmp.iterdir()) == []
