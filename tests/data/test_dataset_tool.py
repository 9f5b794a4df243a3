"""dataset_tool: conversion counts, shapes, zip sources, labels, refusals and interrupted conversions."""

import gzip
import io
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest
from imagefiles import random_pixels, save, write_labels

from stylegan_jax import dataset_tool
from stylegan_jax.data import images, read_dataset_info
from stylegan_jax.data.convert import convert_images
from stylegan_jax.data.pipeline import decode, open_source
from stylegan_jax.data.tfds_builder import DatasetSpec, write_dataset

MIXED_STORED = ["a/good.png", "b/photo.jpg", "gray.png", "gray16.png", "palette.png", "rgba.png", "small.png"]
MIXED_STORED = sorted([*MIXED_STORED, "wide.png"])


def stored_images(path: Path) -> list[np.ndarray]:
    """The images of a dataset in stored order, uint8 (H, W, C)."""
    source = open_source(path)
    return [decode(source[i], label_kind="none", c_dim=0)["image"] for i in range(len(source))]


def stored_labels(path: Path) -> list:
    source = open_source(path)
    return [source[i]["label"] for i in range(len(source))]


def run_tool(capsys, *args: str) -> tuple[int, str, str]:
    rc = dataset_tool.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def leftovers(dest: Path) -> list[str]:
    """Temporary directories of a conversion to `dest` still lying beside it."""
    return [p.name for p in dest.parent.glob(f".{dest.name}.partial-*")]


def test_images_over_pillows_pixel_limit_are_named_apart_and_those_under_twice_it_converted(tmp_path, capsys,
                                                                                            monkeypatch):
    """Pillow refuses to open an image over twice its decompression-bomb limit: skipped as over that limit,
    not as unreadable; one between once and twice the limit is converted without Pillow's warning on stderr.
    The limit is made small here (1000 pixels) so that small images stand for large scans."""
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 1000)
    source = tmp_path / "src"
    source.mkdir()
    for name, side in (("a.png", 8), ("b.png", 40), ("c.png", 48)):  # 64, 1600 (warned) and 2304 pixels
        PIL.Image.fromarray(np.full((side, side), 77, np.uint8)).save(source / name)
    with warnings.catch_warnings(record=True) as seen:  # what would reach stderr outside pytest's capture
        warnings.simplefilter("always")
        rc, out, err = run_tool(capsys, "--source", source, "--dest", tmp_path / "ds", "--resolution", "8")
    assert rc == 0 and "wrote 2 images" in out and "skipped 1 (over Pillow's pixel limit 1: c.png)" in out
    assert not [w for w in seen if issubclass(w.category, PIL.Image.DecompressionBombWarning)], seen
    assert read_dataset_info(tmp_path / "ds")["skipped"] == {"over Pillow's pixel limit": 1}
    (source / "a.png").unlink()
    (source / "b.png").unlink()
    rc, out, err = run_tool(capsys, "--source", source, "--dest", tmp_path / "ds2")
    assert rc == 1 and err == (f"dataset_tool: error: source {source} holds no readable image (1 files, skipped 1 "
                               "(over Pillow's pixel limit 1: c.png); expected image files that Pillow reads: .png, "
                               ".jpg, .webp, .bmp, ...)\n")


def test_a_damaged_zip_directory_or_labels_file_is_one_line(tmp_path, capsys):
    """A zip whose end record reads but whose central directory is damaged; a dataset.json member failing its
    CRC; a dataset.json that is a broken link: one line each (were tracebacks), nothing written."""
    png = io.BytesIO()
    PIL.Image.fromarray(np.zeros((8, 8), np.uint8)).save(png, "PNG")
    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w") as z:
        z.writestr("a.png", png.getvalue())
        z.writestr("dataset.json", '{"labels": [["a.png", 1]]}')
    data = whole.read_bytes()
    directory, labels = bytearray(data), bytearray(data)
    directory[data.index(b"PK\x01\x02") + 3] = 9
    labels[data.index(b'{"labels"') + 3] ^= 1
    (tmp_path / "directory.zip").write_bytes(directory)
    (tmp_path / "labels.zip").write_bytes(labels)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "a.png").write_bytes(png.getvalue())
    (tmp_path / "folder" / "dataset.json").symlink_to(tmp_path / "nowhere")
    for source, expected in (
            ("directory.zip", f"source {tmp_path / 'directory.zip'} is not a readable .zip archive (Bad magic number "
                              "for central directory)"),
            ("labels.zip", f"{tmp_path / 'labels.zip' / 'dataset.json'}: unreadable (Bad CRC-32 for file "
                           "'dataset.json')"),
            ("folder", f"{tmp_path / 'folder' / 'dataset.json'}: unreadable ([Errno 2] No such file or directory")):
        rc, _, err = run_tool(capsys, "--source", tmp_path / source, "--dest", tmp_path / "out")
        assert rc == 1 and err.startswith(f"dataset_tool: error: {expected}") and err.count("\n") == 1, err
        assert not (tmp_path / "out").exists()


def test_a_lab_image_converts_to_grayscale_through_rgb():
    """Pillow has no LAB -> L conversion (a ValueError that stopped the tool); through RGB it is the RGB's gray."""
    rgb = PIL.Image.fromarray(random_pixels(14, (8, 8, 3)))
    lab = rgb.convert("LAB")
    gray, was = images.to_channels(lab, 1)
    assert was == "LAB" and gray.mode == "L"
    np.testing.assert_array_equal(np.asarray(gray), np.asarray(lab.convert("RGB").convert("L")))


def test_images_of_floating_point_pixels_are_skipped_and_counted(tmp_path, capsys):
    """A 32-bit float TIFF has no 8-bit range (Pillow's conversion clips 0..1 values to 0 and 1): skipped and
    counted, not stored as black."""
    source = tmp_path / "src"
    source.mkdir()
    PIL.Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), mode="F").save(source / "a.tif")
    PIL.Image.fromarray(np.full((8, 8), 77, np.uint8)).save(source / "b.png")
    rc, out, _ = run_tool(capsys, "--source", source, "--dest", tmp_path / "ds")
    assert rc == 0 and "skipped 1 (floating-point pixels 1: a.tif)" in out
    assert read_dataset_info(tmp_path / "ds")["skipped"] == {"floating-point pixels": 1}
    (stored,) = stored_images(tmp_path / "ds")
    np.testing.assert_array_equal(stored, np.full((8, 8, 1), 77, np.uint8))


def test_mixed_folder_counts_and_shapes(mixed_folder, tmp_path, capsys):
    dest = tmp_path / "ds"
    rc, out, _ = run_tool(capsys, "--source", mixed_folder, "--dest", dest, "--resolution", "16")
    assert rc == 0
    info = read_dataset_info(dest)
    assert info["num_images"] == 8 and info["num_files"] == 11
    assert (info["resolution"], info["channels"], info["c_dim"]) == (16, 3, 0)
    assert info["skipped"] == {"not an image": 1, "truncated": 1, "unreadable": 1}
    assert info["converted"] == {"16-bit": 1, "L": 1, "P": 1, "RGBA": 1}
    assert info["upscaled"] == 1
    assert info["source"] == str(mixed_folder.absolute())
    summary = out.strip().splitlines()
    assert len(summary) == 1
    for text in ("wrote 8 images", "skipped 3", "fake.png", "notes.txt", "truncated.png", "upscaled 1"):
        assert text in summary[0]
    stored = stored_images(dest)
    assert len(stored) == 8 and all(im.shape == (16, 16, 3) and im.dtype == np.uint8 for im in stored)
    # Stored in sorted name order; lossless sources come back exactly.
    good = np.asarray(PIL.Image.open(mixed_folder / "a" / "good.png"))
    np.testing.assert_array_equal(stored[MIXED_STORED.index("a/good.png")], good)
    gray = np.asarray(PIL.Image.open(mixed_folder / "gray.png"))
    np.testing.assert_array_equal(stored[MIXED_STORED.index("gray.png")], np.stack([gray] * 3, -1))
    gray16 = np.asarray(PIL.Image.open(mixed_folder / "gray16.png"), dtype=np.float64)
    got16 = stored[MIXED_STORED.index("gray16.png")][..., 0].astype(np.float64)
    np.testing.assert_allclose(got16, gray16 / 257, atol=0.5)
    rgba = np.asarray(PIL.Image.open(mixed_folder / "rgba.png"))
    np.testing.assert_array_equal(stored[MIXED_STORED.index("rgba.png")], rgba[..., :3])
    # The palette's colours, not its indices; the others through Pillow as NVIDIA's tool (Lanczos to 16x16:
    # the wide image squashed, not cropped, under --transform none).
    for name in ("palette.png", "small.png", "wide.png", "b/photo.jpg"):
        expected = PIL.Image.open(mixed_folder / name).convert("RGB").resize((16, 16), PIL.Image.LANCZOS)
        np.testing.assert_array_equal(stored[MIXED_STORED.index(name)], np.asarray(expected), err_msg=name)


def test_channels_default_to_majority_and_override(tmp_path, capsys):
    src = tmp_path / "src"
    save(src / "g1.png", random_pixels(0, (8, 8)))
    save(src / "g2.png", random_pixels(1, (8, 8)))
    save(src / "rgb.png", random_pixels(2, (8, 8, 3)))
    assert run_tool(capsys, "--source", src, "--dest", tmp_path / "d1")[0] == 0
    info = read_dataset_info(tmp_path / "d1")
    assert (info["channels"], info["resolution"], info["converted"]) == (1, 8, {"RGB": 1})
    gray = [np.asarray(PIL.Image.open(src / name).convert("L"))[..., None] for name in ("g1.png", "g2.png", "rgb.png")]
    for stored, expected in zip(stored_images(tmp_path / "d1"), gray, strict=True):  # RGB -> L: Pillow's luma
        np.testing.assert_array_equal(stored, expected)
    assert run_tool(capsys, "--source", src, "--dest", tmp_path / "d3", "--channels", "3")[0] == 0
    assert read_dataset_info(tmp_path / "d3")["converted"] == {"L": 2}
    rgb = [np.asarray(PIL.Image.open(src / name).convert("RGB")) for name in ("g1.png", "g2.png", "rgb.png")]
    for stored, expected in zip(stored_images(tmp_path / "d3"), rgb, strict=True):
        np.testing.assert_array_equal(stored, expected)


def test_center_crop_and_wide(tmp_path, capsys):
    src = tmp_path / "src"
    pixels = np.zeros((8, 16, 3), np.uint8)  # thirds-ish: red left, green middle 8 columns, blue right
    pixels[:, :4, 0], pixels[:, 4:12, 1], pixels[:, 12:, 2] = 255, 255, 255
    save(src / "wide.png", pixels)
    assert run_tool(capsys, "--source", src, "--dest", tmp_path / "c", "--transform", "center-crop")[0] == 0
    (crop,) = stored_images(tmp_path / "c")
    np.testing.assert_array_equal(crop, pixels[:, 4:12])  # the centred 8x8 square, not resized
    rc, *_ = run_tool(
        capsys,
        "--source",
        src,
        "--dest",
        tmp_path / "w",
        "--transform",
        "center-crop-wide",
        "--resolution",
        "16x8",
    )
    assert rc == 0
    (wide,) = stored_images(tmp_path / "w")
    assert wide.shape == (16, 16, 3)
    np.testing.assert_array_equal(wide[4:12], pixels)  # letterboxed between black bars
    assert not wide[:4].any() and not wide[12:].any()


def test_center_crop_resizes_the_crop_as_nvidias_tool(tmp_path, capsys):
    """NVIDIA's center_crop: the centred square sliced out, then resized with Lanczos (no pixel outside it)."""
    pixels = random_pixels(8, (29, 37, 3))
    save(tmp_path / "src" / "noise.png", pixels)
    assert run_tool(capsys, "--source", tmp_path / "src", "--dest", tmp_path / "c", "--transform", "center-crop",
                    "--resolution", "16")[0] == 0
    crop = min(pixels.shape[:2])
    top, left = (pixels.shape[0] - crop) // 2, (pixels.shape[1] - crop) // 2
    nvidia = PIL.Image.fromarray(pixels[top: top + crop, left: left + crop]).resize((16, 16), PIL.Image.LANCZOS)
    np.testing.assert_array_equal(stored_images(tmp_path / "c")[0], np.asarray(nvidia))


def test_folder_order_extensions_and_sizes_as_nvidias_tool(tmp_path, capsys):
    """Sorted paths (folder by folder: a/b before a-c), every type Pillow reads (a .bmp), NVIDIA's W,H form;
    the EXIF orientation turns the first image's size (the default resolution), and images of another size
    than the first are counted."""
    src = tmp_path / "src"
    first, second, third = random_pixels(9, (8, 8, 3)), random_pixels(10, (8, 8, 3)), random_pixels(11, (4, 4, 3))
    save(src / "a" / "b.png", first)
    save(src / "a-c.bmp", second)
    save(src / "z.png", third)
    rc, out, _ = run_tool(capsys, "--source", src, "--dest", tmp_path / "ds")
    assert rc == 0 and "resized 1 of another size than the first image's" in out
    stored = stored_images(tmp_path / "ds")
    np.testing.assert_array_equal(stored[0], first)
    np.testing.assert_array_equal(stored[1], second)
    assert read_dataset_info(tmp_path / "ds")["resized"] == 1
    assert "squeezed" not in out and read_dataset_info(tmp_path / "ds")["squeezed"] == 0  # all square
    save(src / "off.png", random_pixels(13, (64, 63, 3)))  # 63x64: at 8 wide, 8 high (8.1) all the same
    rc, out, _ = run_tool(capsys, "--source", src, "--dest", tmp_path / "ds2", "--resolution", "8")
    assert rc == 0 and "squeezed" not in out, out
    (src / "off.png").unlink()
    rc, out, _ = run_tool(capsys, "--source", src, "--dest", tmp_path / "wh", "--resolution", "8,4")
    assert rc == 0 and "squeezed 3 of another aspect ratio to 8x4 (--transform center-crop crops instead)" in out
    assert read_dataset_info(tmp_path / "wh")["resolution"] == "8x4" and read_dataset_info(tmp_path / "wh")[
        "squeezed"] == 3  # as NVIDIA's tool resizes them

    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # shown turned by 90 degrees: 16 wide, 32 high
    turned = tmp_path / "turned"
    turned.mkdir()
    PIL.Image.fromarray(random_pixels(12, (16, 32, 3))).save(turned / "photo.jpg", exif=exif)
    rc, out, _ = run_tool(capsys, "--source", turned, "--dest", tmp_path / "t")
    assert rc == 0 and "upscaled" not in out and "resized" not in out
    assert read_dataset_info(tmp_path / "t")["resolution"] == "16x32"
    shown = PIL.ImageOps.exif_transpose(PIL.Image.open(turned / "photo.jpg"))
    np.testing.assert_array_equal(stored_images(tmp_path / "t")[0], np.asarray(shown))  # as shown, not as stored
    np.testing.assert_array_equal(stored[2], np.asarray(PIL.Image.fromarray(third).resize((8, 8), PIL.Image.LANCZOS)))


@pytest.mark.parametrize("width,height", [(64, 32), (32, 64)])
def test_w_by_h_datasets_keep_their_shape(width, height, tmp_path, capsys):
    """--resolution WxH without the letterbox: images of that size round-trip bit for bit, a larger picture is
    centre-cropped to the W:H box (not to a square), and the dataset records its width and height."""
    src = tmp_path / "src"
    exact = [random_pixels(i, (height, width, 3)) for i in range(3)]
    for i, pixels in enumerate(exact):
        save(src / f"{i}.png", pixels)
    assert run_tool(capsys, "--source", src, "--dest", tmp_path / "d", "--resolution", f"{width}x{height}")[0] == 0
    info = read_dataset_info(tmp_path / "d")
    assert (info["resolution"], info["width"], info["height"]) == (f"{width}x{height}", width, height)
    for stored, pixels in zip(stored_images(tmp_path / "d"), exact, strict=True):
        np.testing.assert_array_equal(stored, pixels)

    big = tmp_path / "big"
    pixels = np.zeros((2 * height, 2 * width + 16, 3), np.uint8)  # the W:H box between two black bands
    pixels[:, 8:-8] = 200
    save(big / "a.png", pixels)
    assert run_tool(capsys, "--source", big, "--dest", tmp_path / "c", "--transform", "center-crop",
                    "--resolution", f"{width}x{height}")[0] == 0  # fmt: skip
    (crop,) = stored_images(tmp_path / "c")
    assert crop.shape == (height, width, 3)
    # The box, not the bands, fills the image (Lanczos reads a few pixels past the box at its edges).
    assert np.abs(crop[:, 2:-2].astype(int) - 200).max() <= 1 and crop.min() > 150


def test_max_images(mixed_folder, tmp_path, capsys):
    assert run_tool(capsys, "--source", mixed_folder, "--dest", tmp_path / "d", "--resolution", "16",
                    "--max-images", "3")[0] == 0  # fmt: skip
    assert read_dataset_info(tmp_path / "d")["num_images"] == 3
    assert run_tool(capsys, "--source", mixed_folder, "--dest", tmp_path / "all", "--resolution", "16")[0] == 0
    for first, stored in zip(stored_images(tmp_path / "all"), stored_images(tmp_path / "d"), strict=False):
        np.testing.assert_array_equal(stored, first)  # the first 3 in sorted order, not any 3


def test_max_images_reads_no_file_past_them(tmp_path, capsys):
    """--max-images N decides the channels from the N images it stores and reads nothing after them (NVIDIA's
    tool stops there too): an unreadable file past them is not even counted as skipped."""
    import lmdb

    source = tmp_path / "mixed_lmdb"
    with lmdb.open(str(source), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for key, shape in ((b"a", (8, 8, 3)), (b"b", (8, 8)), (b"c", (8, 8)), (b"d", (8, 8))):
            buffer = io.BytesIO()
            PIL.Image.fromarray(random_pixels(len(key), shape)).save(buffer, format="PNG")
            txn.put(key, buffer.getvalue())
        txn.put(b"e", b"not an image")
    assert run_tool(capsys, "--source", source, "--dest", tmp_path / "two", "--max-images", "2")[0] == 0
    info = read_dataset_info(tmp_path / "two")
    assert (info["num_images"], info["channels"], info["skipped"]) == (2, 3, {})
    assert run_tool(capsys, "--source", source, "--dest", tmp_path / "all")[0] == 0
    info = read_dataset_info(tmp_path / "all")
    assert (info["num_images"], info["channels"], info["skipped"]) == (4, 1, {"unreadable": 1})


def test_zip_source_with_labels(mixed_folder, tmp_path, capsys):
    write_labels(mixed_folder, {"truncated.png": 0, **{name: i % 3 for i, name in enumerate(MIXED_STORED)}})
    archive = tmp_path / "mixed.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(mixed_folder.rglob("*")):
            z.write(path, path.relative_to(mixed_folder).as_posix())
    dest = tmp_path / "ds"
    assert run_tool(capsys, "--source", archive, "--dest", dest, "--resolution", "16")[0] == 0
    info = read_dataset_info(dest)
    assert info["num_images"] == 8 and info["num_files"] == 11
    assert info["skipped"] == {"not an image": 1, "truncated": 1, "unreadable": 1}
    assert (info["label_kind"], info["c_dim"]) == ("class", 3)
    assert [int(x) for x in stored_labels(dest)] == [i % 3 for i in range(8)]


def test_vector_null_and_missing_labels(tmp_path, capsys):
    src = tmp_path / "src"
    for i in range(3):
        save(src / f"{i}.png", random_pixels(i, (4, 4, 3)))
    write_labels(src, {"0.png": [0.5, 1.0], "1.png": [2.0, -1.0], "2.png": [0.0, 0.25]})
    assert run_tool(capsys, "--source", src, "--dest", tmp_path / "vec")[0] == 0
    info = read_dataset_info(tmp_path / "vec")
    assert (info["label_kind"], info["c_dim"]) == ("vector", 2)
    np.testing.assert_array_equal(np.stack(stored_labels(tmp_path / "vec")), [[0.5, 1], [2, -1], [0, 0.25]])

    write_labels(src, {"0.png": 4, "2.png": 1})  # 1.png has no label: skipped and reported
    rc, out, _ = run_tool(capsys, "--source", src, "--dest", tmp_path / "part")
    assert rc == 0 and "no label 1: 1.png" in out
    info = read_dataset_info(tmp_path / "part")
    assert (info["num_images"], info["c_dim"], info["skipped"]) == (2, 5, {"no label": 1})

    write_labels(src, {"0.png": 2.0, "1.png": 0, "2.png": 1})  # a whole float is its class (NVIDIA's int64 cast)
    assert run_tool(capsys, "--source", src, "--dest", tmp_path / "whole")[0] == 0
    assert read_dataset_info(tmp_path / "whole")["c_dim"] == 3
    assert [int(x) for x in stored_labels(tmp_path / "whole")] == [2, 0, 1]

    write_labels(src, None)
    assert run_tool(capsys, "--source", src, "--dest", tmp_path / "none")[0] == 0
    info = read_dataset_info(tmp_path / "none")
    assert (info["num_images"], info["label_kind"], info["c_dim"]) == (3, "none", 0)


def _folder(root: Path, files: dict[str, tuple[int, ...] | str | bytes], labels=None) -> Path:
    """A folder of random images of the given shapes, or files of the given text or bytes."""
    root.mkdir(parents=True)
    for i, (name, content) in enumerate(files.items()):
        if isinstance(content, tuple):
            save(root / name, random_pixels(i, content))
        elif isinstance(content, bytes):
            (root / name).write_bytes(content)
        else:
            (root / name).write_text(content)
    if labels is not None:
        write_labels(root, labels)
    return root


def _truncated_png() -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(random_pixels(0, (32, 32, 3))).save(buf, format="PNG")
    return buf.getvalue()[:100]  # header fine, pixel data cut


REFUSALS = {
    "empty source": ({}, []),
    "no readable image": ({"a.txt": "x", "b.png": "x"}, []),
    "only truncated images": ({"a.png": _truncated_png()}, []),
    "resolution not a number": ({"a.png": (8, 8, 3)}, ["--resolution", "abc"]),
    "resolution in superscript digits": ({"a.png": (8, 8, 3)}, ["--resolution", "\u00b2"]),  # isdigit, not int
    "resolution zero": ({"a.png": (8, 8, 3)}, ["--resolution", "0"]),
    "resolution not a power of two": ({"a.png": (8, 8, 3)}, ["--resolution", "24"]),
    "resolution of an unsupported ratio": ({"a.png": (8, 8, 3)}, ["--resolution", "16x3"]),
    "first image of an unsupported ratio": ({"a.png": (8, 9, 3), "b.png": (8, 8, 3)}, []),
    "bad max-images": ({"a.png": (8, 8, 3)}, ["--max-images", "0"]),
    "labels name no image": ({"a.png": (8, 8, 3), "labels": {"img/a.png": 1}}, []),
    "mixed label kinds": (
        {"a.png": (8, 8, 3), "b.png": (8, 8, 3), "labels": {"a.png": 1, "b.png": [0.5]}},
        [],
    ),
}


@pytest.mark.parametrize("content, reason", [
    ('{"foo": 1}', 'it has no "labels" key'),
    ('[["a.png", 1]]', 'it has no "labels" key'),
    ('{"labels": {"a.png": 1}}', 'its "labels" is not a list of [name, label] pairs'),
    ('{"labels": [["a.png", 1, 2]]}', 'its "labels" is not a list of [name, label] pairs'),
    ('{"labels": [', "Expecting value"),
])
def test_a_dataset_json_off_nvidias_format_says_what_is_off(tmp_path, capsys, content, reason):
    source = _folder(tmp_path / "src", {"a.png": (8, 8, 3), "dataset.json": content}, None)
    rc, _, err = run_tool(capsys, "--source", source, "--dest", tmp_path / "out")
    assert rc == 1 and err.count("\n") == 1 and not (tmp_path / "out").exists()
    assert f'{source / "dataset.json"} is not in the format {{"labels": [[name, label], ...]}}: {reason}' in err


def test_a_dataset_json_giving_an_image_two_labels_is_refused(tmp_path, capsys):
    """NVIDIA's dict() keeps the last of two labels silently; the same label twice is only repeated."""
    content = '{"labels": [["a.png", 1], ["./b.png", 0], ["a.png", 1], ["b.png", 2]]}'
    source = _folder(tmp_path / "src", {"a.png": (8, 8, 3), "b.png": (8, 8, 3), "dataset.json": content}, None)
    rc, _, err = run_tool(capsys, "--source", source, "--dest", tmp_path / "out")
    assert rc == 1 and err.count("\n") == 1 and not (tmp_path / "out").exists()
    assert f"{source / 'dataset.json'} gives 'b.png' two labels, 0 and 2; expected one per image" in err


def test_a_nan_label_given_once_is_refused_as_a_label_not_as_two(tmp_path, capsys):
    source = _folder(tmp_path / "src", {"a.png": (8, 8, 3), "dataset.json": '{"labels": [["a.png", NaN]]}'}, None)
    rc, _, err = run_tool(capsys, "--source", source, "--dest", tmp_path / "out")
    assert rc == 1 and "dataset.json gives 'a.png' the label nan" in err and "two labels" not in err


def test_a_dest_named_as_nvidias_zip_is_refused(tmp_path, capsys):
    """NVIDIA's tool writes a zip archive for --dest out.zip; this one writes directories: refused, not a folder
    that looks like an archive."""
    source = _folder(tmp_path / "src", {"a.png": (8, 8, 3)}, None)
    rc, _, err = run_tool(capsys, "--source", source, "--dest", tmp_path / "out.zip")
    assert rc == 1 and err.count("\n") == 1 and not (tmp_path / "out.zip").exists()
    assert f"{tmp_path / 'out.zip'}: a dataset here is a directory, not NVIDIA's zip archive" in err


def test_a_first_image_of_a_size_the_networks_cannot_take_is_one_plain_line(tmp_path, capsys):
    source = _folder(tmp_path / "src", {"a.png": (24, 24, 3)}, None)
    rc, _, err = run_tool(capsys, "--source", source, "--dest", tmp_path / "out")
    assert rc == 1 and err == ("dataset_tool: error: the first image's size, 24x24: resolution 24 is not a power of "
                               "two >= 4 (the networks need one); give --resolution (and --transform) such a size\n")


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_leave_nothing(case, tmp_path, capsys):
    files, flags = REFUSALS[case]
    files = dict(files)
    labels = files.pop("labels", None)
    source = _folder(tmp_path / "src", files, labels)
    dest = tmp_path / "out" / "ds"
    rc, out, err = run_tool(capsys, "--source", source, "--dest", dest, *flags)
    assert rc == 1
    # One error line, last (a progress bar may precede it on stderr).
    assert err.count("dataset_tool: error: ") == 1, err
    assert err.strip().splitlines()[-1].startswith("dataset_tool: error: "), err
    assert "Traceback" not in err and out == ""
    assert not dest.exists()
    assert not dest.parent.exists() or not any(dest.parent.iterdir())


def test_missing_source_refused(tmp_path, capsys):
    rc, _, err = run_tool(capsys, "--source", tmp_path / "nowhere", "--dest", tmp_path / "ds")
    assert rc == 1 and err.strip() == f"dataset_tool: error: source {tmp_path / 'nowhere'} does not exist"
    assert not (tmp_path / "ds").exists()


def test_existing_dest_of_a_user_is_refused_even_with_overwrite(tmp_path, capsys):
    src = tmp_path / "src"
    save(src / "a.png", random_pixels(0, (8, 8, 3)))
    dest = tmp_path / "ds"
    dest.mkdir()
    (dest / "precious.txt").write_text("keep")
    rc, _, err = run_tool(capsys, "--source", src, "--dest", dest)
    assert rc == 1 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in dest.iterdir()] == ["precious.txt"]
    rc, _, err = run_tool(capsys, "--source", src, "--dest", dest, "--overwrite")
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert [p.name for p in dest.iterdir()] == ["precious.txt"] and (dest / "precious.txt").read_text() == "keep"


def test_failure_midway_leaves_nothing(mixed_folder, tmp_path, monkeypatch):
    calls = []

    def failing_encode(pixels):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("injected")
        return encode(pixels)

    encode = images.encode_png
    monkeypatch.setattr(images, "encode_png", failing_encode)
    dest = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="injected"):
        convert_images(mixed_folder, dest, resolution="16", progress=False, workers=1)
    assert 4 <= len(calls) < 8 and not dest.exists() and leftovers(dest) == []  # stopped midway

    # With --overwrite, a failure keeps the old dataset intact.
    write_dataset(
        dest,
        DatasetSpec(resolution=4, channels=1, source="old"),
        [{"image": encode(np.zeros((4, 4, 1), np.uint8))}],
    )
    calls.clear()
    with pytest.raises(RuntimeError, match="injected"):
        convert_images(mixed_folder, dest, resolution="16", overwrite=True, progress=False, workers=1)
    assert read_dataset_info(dest)["source"] == "old" and leftovers(dest) == []


HELD_TOOL = """
import itertools, sys, time
from pathlib import Path
from stylegan_jax.data import images
handshake, passed, calls = Path(sys.argv[1]), int(sys.argv[2]), itertools.count()
encode = images.encode_png

def held_encode(pixels):  # the first `passed` encodes run; later ones say so and wait for the test's release
    if next(calls) >= passed:
        (handshake / "held").touch()
        deadline = time.monotonic() + 60  # a test that died without releasing cannot hang the process
        while not (handshake / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.005)
    return encode(pixels)

images.encode_png = held_encode
from stylegan_jax.dataset_tool import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_conversion_leaves_no_dataset(sig, tmp_path):
    """Killed midway, whatever the CPU count: the tool's encoder threads (one per CPU) encode 5 images and then
    hold every further one until the test, told through a file that an encode is held (the dataset is being
    written), has sent the signal; then it releases them."""
    src = tmp_path / "src"
    for i in range(40):
        save(src / f"{i:03d}.png", random_pixels(i, (8, 8, 3)))
    dest, handshake = tmp_path / "out" / "ds", tmp_path / "handshake"
    handshake.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", HELD_TOOL, str(handshake), "5", "--source", str(src), "--dest", str(dest)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (handshake / "held").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert proc.poll() is None and (handshake / "held").exists(), "the conversion never reached a held image"
        os.kill(proc.pid, sig)
    finally:
        (handshake / "release").touch()
        _, err = proc.communicate(timeout=60)
    assert not dest.exists()
    if sig == signal.SIGINT:  # a clean interrupt also removes its temporary directory
        assert proc.returncode == 130 and leftovers(dest) == []
        assert err.strip().splitlines()[-1] == f"dataset_tool: interrupted, nothing written to {dest}"
    else:
        assert proc.returncode == -signal.SIGKILL


def write_cifar10(path: Path, batches: list[tuple[np.ndarray, list[int]]]) -> None:
    """A cifar-10-python.tar.gz of ``batches`` (uint8 [n, 3072] rows in CIFAR's CHW order, labels), each a
    protocol-2 pickle as CIFAR's Python 2 files are."""
    with tarfile.open(path, "w:gz") as tar:
        for i, (data, labels) in enumerate(batches, 1):
            blob = pickle.dumps({"batch_label": f"training batch {i} of 5", "labels": labels, "data": data}, protocol=2)
            member = tarfile.TarInfo(f"cifar-10-batches-py/data_batch_{i}")
            member.size = len(blob)
            tar.addfile(member, io.BytesIO(blob))


def test_cifar10s_python_tarball_converts_with_its_labels(tmp_path, capsys):
    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, 256, (3, 3072), dtype=np.uint8), [int(x) for x in rng.integers(0, 10, 3)])
               for _ in range(5)]
    tarball = tmp_path / "cifar-10-python.tar.gz"
    write_cifar10(tarball, batches)
    dest = tmp_path / "cifar10"
    assert run_tool(capsys, "--source", tarball, "--dest", dest)[0] == 0
    info = read_dataset_info(dest)
    assert (info["num_images"], info["resolution"], info["channels"], info["label_kind"]) == (15, 32, 3, "class")
    expected = np.concatenate([data for data, _ in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(np.stack(stored_images(dest)), expected)  # NVIDIA's CHW -> HWC, in order
    assert [int(x) for x in stored_labels(dest)] == [label for _, labels in batches for label in labels]


@pytest.mark.parametrize("first, expected", [
    ((np.zeros((3, 3072), np.uint8), [0, 1, 2, 3]), "data_batch_1: 3 images but 4 labels"),  # the totals agree
    ((np.full((1, 3072), 300, np.int64), [0]), "data_batch_1: pixel values other than whole numbers in 0..255 "
                                               "(int64)"),
    ((np.zeros((1, 3072), np.uint8), [2.7]), "data_batch_1: labels other than whole numbers (float64)"),
])
def test_a_cifar10_batch_whose_labels_or_pixels_do_not_fit_is_one_line(tmp_path, capsys, first, expected):
    """Checked batch by batch: labels shifted from one batch into the next, wrapped pixels or truncated labels
    would otherwise be stored silently."""
    rest = [(np.zeros((3, 3072), np.uint8), [0, 1])] + [(np.zeros((1, 3072), np.uint8), [5])] * 3
    tarball = tmp_path / "cifar-10-python.tar.gz"
    write_cifar10(tarball, [first, *(rest if len(first[1]) == 4 else rest[1:] + rest[1:2])])
    rc, _, err = run_tool(capsys, "--source", tarball, "--dest", tmp_path / "out")
    assert rc == 1 and err == f"dataset_tool: error: {tarball}'s {expected}\n" and not (tmp_path / "out").exists()


def test_a_cifar10_tarball_with_a_pickle_that_would_run_code_is_refused_unrun(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'ran'}",)

    tarball = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        blob = pickle.dumps({"data": Payload(), "labels": [0]}, protocol=2)
        member = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        member.size = len(blob)
        tar.addfile(member, io.BytesIO(blob))
    rc, out, err = run_tool(capsys, "--source", tarball, "--dest", tmp_path / "ds")
    assert rc == 1 and err.count("\n") == 1 and "is not CIFAR-10's python tarball (ForbiddenGlobalError" in err
    assert not (tmp_path / "ran").exists() and not (tmp_path / "ds").exists()


def test_mnists_training_images_convert_padded_to_32_with_their_labels(tmp_path, capsys):
    digits = np.random.default_rng(1).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1], np.uint8)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(np.array([2051, 4, 28, 28], ">u4").tobytes() + digits.tobytes())  # magic, count, rows, columns
    rc, _, err = run_tool(capsys, "--source", tmp_path / "train-images-idx3-ubyte.gz", "--dest", tmp_path / "ds")
    assert rc == 1 and "train-labels-idx1-ubyte.gz is missing" in err and not (tmp_path / "ds").exists()
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"x" * 100)[:-12] + bytes(12))  # bad CRC
    rc, _, err = run_tool(capsys, "--source", tmp_path / "train-images-idx3-ubyte.gz", "--dest", tmp_path / "ds")
    assert rc == 1 and err.count("\n") == 1 and "is not MNIST's gzipped idx files" in err
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(np.array([2049, 1000000000], ">u4").tobytes() + labels.tobytes())  # a count the file lacks
    rc, _, err = run_tool(capsys, "--source", tmp_path / "train-images-idx3-ubyte.gz", "--dest", tmp_path / "ds")
    assert rc == 1 and err.count("\n") == 1 and ("train-labels-idx1-ubyte.gz: the idx header [2049, 1000000000] "
                                                 "does not describe the 4 bytes after it (MNIST's: [2049, N] for N "
                                                 "items)") in err
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(np.array([2049, 3], ">u4").tobytes() + labels[:3].tobytes())  # a well-formed file one label short
    rc, _, err = run_tool(capsys, "--source", tmp_path / "train-images-idx3-ubyte.gz", "--dest", tmp_path / "ds")
    assert rc == 1 and err.count("\n") == 1 and "4 images for 3 labels; expected one label each" in err
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(np.array([2049, 4], ">u4").tobytes() + labels.tobytes())
    assert run_tool(capsys, "--source", tmp_path / "train-images-idx3-ubyte.gz", "--dest", tmp_path / "ds")[0] == 0
    stored = np.stack(stored_images(tmp_path / "ds"))
    np.testing.assert_array_equal(stored, np.pad(digits, [(0, 0), (2, 2), (2, 2)])[..., None])
    assert [int(x) for x in stored_labels(tmp_path / "ds")] == [3, 1, 4, 1]


def test_an_lsun_lmdb_directory_converts_its_records_in_key_order(tmp_path, capsys):
    import lmdb

    originals = [random_pixels(i, (8, 8, 3)) for i in range(3)]
    source = tmp_path / "cat_lmdb"  # NVIDIA's dataset_tool: a directory named *_lmdb
    with lmdb.open(str(source), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for key, image in zip((b"c3", b"a1", b"b2"), originals, strict=True):  # LSUN stores WebP; lossless here
            buffer = io.BytesIO()
            PIL.Image.fromarray(image).save(buffer, format="WEBP", lossless=True)
            txn.put(key, buffer.getvalue())
    dest = tmp_path / "cats"
    assert run_tool(capsys, "--source", source, "--dest", dest)[0] == 0
    info = read_dataset_info(dest)
    assert (info["num_images"], info["resolution"], info["label_kind"]) == (3, 8, "none")
    np.testing.assert_array_equal(np.stack(stored_images(dest)), np.stack([originals[1], originals[2], originals[0]]))
    (tmp_path / "empty_lmdb").mkdir()
    rc, _, err = run_tool(capsys, "--source", tmp_path / "empty_lmdb", "--dest", tmp_path / "none")
    assert rc == 1 and err.count("\n") == 1 and not (tmp_path / "none").exists()


def test_a_zip_member_failing_its_crc_is_counted_the_others_stored(tmp_path, capsys):
    """A member whose header reads but whose CRC fails at its end (a flipped byte deep inside) is skipped as
    unreadable, as a broken file of a folder is, not the end of the conversion."""
    archive = tmp_path / "src.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        for i in range(3):
            buffer = io.BytesIO()
            PIL.Image.fromarray(random_pixels(i, (64, 64, 3))).save(buffer, format="PNG", compress_level=0)
            z.writestr(f"{i}.png", buffer.getvalue())
    data = bytearray(archive.read_bytes())
    member = zipfile.ZipFile(archive).getinfo("1.png")
    data[member.header_offset + 30 + len("1.png") + member.file_size // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    rc, out, _ = run_tool(capsys, "--source", archive, "--dest", tmp_path / "ds")
    assert rc == 0 and "unreadable 1: 1.png" in out
    assert read_dataset_info(tmp_path / "ds")["num_images"] == 2
    np.testing.assert_array_equal(stored_images(tmp_path / "ds")[1], random_pixels(2, (64, 64, 3)))


def test_labels_named_as_on_another_system_label_their_images(tmp_path, capsys):
    """dataset.json written on Windows ("\\\\"), with "./" prefixes or in another Unicode normal form names the
    same files."""
    names = ["a/x.png", "b.png", "caf\N{LATIN SMALL LETTER E WITH ACUTE}.png"]
    for i, name in enumerate(names):
        save(tmp_path / "src" / name, random_pixels(i, (4, 4, 3)))
    write_labels(tmp_path / "src", {"a\\x.png": 2, "./b.png": 0, "cafe\N{COMBINING ACUTE ACCENT}.png": 1})
    rc, out, _ = run_tool(capsys, "--source", tmp_path / "src", "--dest", tmp_path / "ds")
    assert rc == 0 and "no label" not in out
    assert [int(x) for x in stored_labels(tmp_path / "ds")] == [2, 0, 1]


def test_a_sliver_of_an_image_crops_to_its_middle_pixel(tmp_path, capsys):
    """A crop box that rounds below one pixel (a 1-pixel-wide image cropped to 2:1) is the middle pixel, not
    an empty box resized to black."""
    pixels = random_pixels(0, (64, 1, 3))
    save(tmp_path / "src" / "sliver.png", pixels)
    assert run_tool(capsys, "--source", tmp_path / "src", "--dest", tmp_path / "ds", "--transform", "center-crop",
                    "--resolution", "16x8")[0] == 0
    (stored,) = stored_images(tmp_path / "ds")
    np.testing.assert_array_equal(stored, np.broadcast_to(pixels[31, 0], (8, 16, 3)))


def test_broken_and_looping_links_in_a_folder_are_reported_as_unreadable(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    for i in range(2):
        PIL.Image.fromarray(random_pixels(i, (8, 8, 3))).save(source / f"{i}.png")
    (source / "broken.png").symlink_to(tmp_path / "gone.png")
    (source / "loop.png").symlink_to(source / "loop.png")
    rc, out, _ = run_tool(capsys, "--source", source, "--dest", tmp_path / "ds")
    assert rc == 0 and "skipped 2 (unreadable 2: broken.png, loop.png)" in out
    np.testing.assert_array_equal(np.stack(stored_images(tmp_path / "ds")),
                                  np.stack([random_pixels(i, (8, 8, 3)) for i in range(2)]))
