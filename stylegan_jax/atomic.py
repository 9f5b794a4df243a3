"""Files written whole or not at all: the content goes to a temporary file beside the target, which replaces
the target once complete, so that a kill, an error or a full disk midway leaves the old file (or none), never
a truncated one that a resumed run or a reader would take for complete."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """An open file (``mode`` "wb" or "w") whose content replaces ``path`` when the block ends; if the block
    raises, ``path`` is left as it was and the temporary file is removed (a kill leaves it:
    ``.<name>.tmp-<pid>`` beside ``path``; a training run removes those of its run directory when it starts).
    The file gets the user's umask, as ``open(path, "w")`` would; an ``OSError`` of the temporary file (no
    permission, a full disk) names ``path``, and a directory at ``path`` is refused before anything is
    written."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    if os.path.isdir(path):  # refused before anything is written beside it
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.tmp-{os.getpid()}")
    try:
        with open(tmp, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename == tmp:
            e.filename, e.filename2 = path, None
        raise
