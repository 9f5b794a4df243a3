"""`atomic_write`: the target holds the old content or the whole new one, never part of it, after an error or a
kill midway; no temporary file is left but by a kill; errors name the target."""

import os
import signal
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from stylegan_jax.atomic import atomic_write
from stylegan_jax.images import save_png


def test_the_content_replaces_the_file_when_complete(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with atomic_write(path, "w") as f:
        f.write("new")
        assert path.read_text() == "old"  # not before the block ends
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["a.txt"]


def test_an_error_midway_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path, "w") as f:
        f.write("half of the new")
        raise RuntimeError("the encoder failed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_a_kill_midway_leaves_the_old_file(tmp_path):
    path = tmp_path / "grid.png"
    path.write_bytes(b"old")
    code = ("import os, signal, sys\nfrom stylegan_jax.atomic import atomic_write\n"
            "with atomic_write(sys.argv[1]) as f:\n    f.write(b'x' * 100000)\n    f.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    assert subprocess.run([sys.executable, "-c", code, str(path)]).returncode == -signal.SIGKILL
    assert path.read_bytes() == b"old"
    leftovers = [name for name in os.listdir(tmp_path) if name != "grid.png"]  # the kill's, named as such
    assert len(leftovers) == 1 and leftovers[0].startswith(".grid.png.tmp-")


def test_an_error_of_the_temporary_file_names_the_target(tmp_path):
    path = tmp_path / "missing" / "a.png"
    with pytest.raises(FileNotFoundError) as e, atomic_write(path):
        pass
    assert e.value.filename == str(path)


def test_save_png_writes_the_whole_image_or_nothing(tmp_path, monkeypatch):
    path = tmp_path / "fakes.png"
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    save_png(image, path)
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(path)), image)

    def failing(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half")
        raise OSError("the encoder failed")

    monkeypatch.setattr(PIL.Image.Image, "save", failing)
    with pytest.raises(OSError, match="encoder"):
        save_png(255 - image, path)
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(path)), image)
    assert os.listdir(tmp_path) == ["fakes.png"]
