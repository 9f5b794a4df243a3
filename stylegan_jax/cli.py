"""What the command-line tools share: user errors as one line and exit status 1 (`run`, `ArgumentParser`),
argparse ``type`` functions that refuse bad values while parsing (`parse_seeds`, `positive_int`, `finite_float`,
`outdir`, `output_file`...), the reader of the .npz files that tools take (`read_npz`), and the network flags
of the tools that sample a generator (`add_network_flags`, `load_sampled_network`).

The contract of every tool: bad input ends with exit status 1 and one line ``<tool>: error: <what flag or file,
and what was expected>`` on stderr, before anything is written. Internal bugs keep their traceback: only the
project's own error types (`UsageError`, ``DatasetError``, ``NetworkLoadError``...) count as user errors.

Imports nothing heavy (no JAX), so a tool can use it before deciding its runtime.
"""

from __future__ import annotations

import _thread
import argparse
import bisect
import errno
import gc
import itertools
import logging
import math
import os
import re
import signal
import struct
import sys
import threading
import traceback
import types
from collections.abc import Callable, Container, Iterator, Sequence
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    from stylegan_jax.network_snapshot import Network

#: The ``--noise-mode`` choices: the noise modes of the generators' synthesis.
NOISE_MODES = ("const", "random", "none")
#: The largest seed: NumPy's ``RandomState(seed)`` (NVIDIA's latents) takes 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1
#: The most memory a tool may use to assemble a grid image (generate's ``--grid``, style_mixing's grid.png).
MAX_GRID_BYTES = 4 << 30


class UsageError(ValueError):
    """A flag does not fit the network (missing class, bad seed list...); one line for the user."""


#: The errnos of a file the system refuses to write or read where a tool was told to: `run`'s one-line errors.
REFUSALS = frozenset(getattr(errno, name) for name in ("EACCES", "EPERM", "EISDIR", "ENOTDIR", "ENOSPC", "EDQUOT",
                                                        "EROFS", "ENAMETOOLONG", "EEXIST") if hasattr(errno, name))


def run(prog: str, body: Callable[[], int | None], *errors: type[BaseException] | Callable[[], tuple]) -> int:
    """Runs a tool's ``body()`` and returns its exit status (``None`` counts as 0).

    An exception of one of ``errors`` (the tool's user errors, whose message is one line saying what is
    wrong) is printed to stderr as ``<prog>: error: <message>`` and gives status 1; an entry of ``errors`` may
    be a function returning error types, called only when the body raised, so that a tool whose error types
    live in heavy modules (JAX) imports them inside its body. A file the system refuses (an ``OSError`` naming
    it, of one of the `REFUSALS`: no permission, a directory in the way, a full disk) is ``<prog>: error:
    <file>: <reason>`` and status 1 too: the user's file system, not a bug (a missing file stays a bug: the
    tools check the files they are given). Ctrl-C that the tool does not handle itself is
    ``<prog>: interrupted`` and status 130, at any moment of the body, its imports included. Output piped
    into a reader that stops early (``| head``) ends the tool quietly with status 0. Any other exception
    propagates with its traceback: it is a bug, not a user error.
    """
    interrupt = _Interrupt()
    _drop_reports_of_failed_io()
    try:
        with interrupt:
            status = body()
            sys.stdout.flush()
    except BrokenPipeError:  # the reader is gone: silence the interpreter's final flush of stdout
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if isinstance(e, OSError) and e.filename is not None and e.errno in REFUSALS:
            print(f"{prog}: error: {_refused_file(e)}", file=sys.stderr)
            return 1
        if not isinstance(e, _error_types(errors)):
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    return 0 if status is None else status


def _refused_file(e: OSError) -> str:
    """``<file>: <reason>`` (``<file> -> <other file>: <reason>`` for a rename) of an ``OSError`` naming a file."""
    names = str(e.filename) + ("" if e.filename2 is None else f" -> {e.filename2}")
    return f"{names}: {e.strerror or e}"


def _drop_reports_of_failed_io() -> None:
    """When a damaged checkpoint or snapshot stops Orbax's restore, the reads it still had in flight finish on
    other threads and report: ``RuntimeError('Event loop is closed')`` and each abandoned read's exception,
    with the whole TensorStore spec, through `sys.unraisablehook`, and asyncio's "exception was never
    retrieved" (Orbax's and TensorStore's read futures) through its logger: thousands of lines around the one
    line that says what happened. A write the file system refuses (a full disk) is reported likewise by each
    of Orbax's writing threads (its absl log, `threading.excepthook`) before the tool's own line. The tools
    drop those reports (`_failed_io`: the tool reports the failure once, and the rest is nothing the user
    can act on); every other goes where it went. Installed once per process."""
    previous = sys.unraisablehook
    if not getattr(previous, "drops_failed_io", False):

        def hook(report) -> None:
            closed_loop = (isinstance(report.exc_value, RuntimeError)
                           and str(report.exc_value) == "Event loop is closed")
            if not (closed_loop or _failed_io(report.exc_value, report.exc_traceback)):
                previous(report)

        hook.drops_failed_io = True
        sys.unraisablehook = hook
    previous_thread_hook = threading.excepthook
    if not getattr(previous_thread_hook, "drops_failed_io", False):

        def thread_hook(args) -> None:
            if not _failed_io(args.exc_value, args.exc_traceback):
                previous_thread_hook(args)

        thread_hook.drops_failed_io = True
        threading.excepthook = thread_hook
    for name in ("asyncio", "absl"):  # asyncio's futures; Orbax's threads log through absl
        logger = logging.getLogger(name)
        if _keep_record not in logger.filters:
            logger.addFilter(_keep_record)


def _keep_record(record: logging.LogRecord) -> bool:
    """Log records but the reports of Orbax's failed reads and writes (`_failed_io`), whether the exception
    is the record's ``exc_info`` or one of its arguments (Orbax's threads log ``"... raised an exception: %s"``)."""
    if record.exc_info and _failed_io(record.exc_info[1], record.exc_info[2]):
        return False
    args = record.args if isinstance(record.args, tuple) else ()
    return not any(isinstance(a, BaseException) and _failed_io(a, a.__traceback__) for a in args)


#: How TensorStore words a failed read or write: an absl status code, then "Error reading" or "Error writing"
#: (after "Error opening "<driver>" driver: " where the write that failed opened an array).
_TENSORSTORE_IO_ERROR = re.compile(r'[A-Z_]+: (Error opening "\w+" driver: )?Error (reading|writing) ')


def _failed_io(exc: BaseException | None, tb: types.TracebackType | None) -> bool:
    """Whether an exception is a failed read of Orbax's (raised in one of its reading functions) or a failed
    read or write of TensorStore's (its wording: raised in C++, it has no Python frames)."""
    in_orbax_read = any(f"{os.sep}orbax{os.sep}" in frame.f_code.co_filename and "read" in frame.f_code.co_name
                        for frame, _ in traceback.walk_tb(tb))
    return in_orbax_read or bool(_TENSORSTORE_IO_ERROR.match(str(exc)))


def _error_types(errors: tuple) -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = []
    for entry in errors:
        types.extend([entry] if isinstance(entry, type) else entry())
    return tuple(types)


class _Interrupt:
    """Ctrl-C as a KeyboardInterrupt that is not lost: Python prints and drops an exception raised inside a
    garbage-collection callback (JAX runs one), and elsewhere where it cannot propagate, so after each SIGINT the
    signal is delivered again shortly unless `run` has caught it by then. It is not raised at all inside a gc
    callback, nor inside an import (an extension module whose initialisation runs Python code aborts the process on
    an exception there): the next delivery raises it once the import is done. The second delivery may reach a
    handler the body installed in the meantime (the training loop's: save and stop). Main thread only."""

    REDELIVER_S = 0.5

    def __enter__(self) -> None:
        self.caught, self.previous = False, None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def __exit__(self, kind, value, traceback) -> None:
        self.caught = True
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum, frame):
        timer = threading.Timer(self.REDELIVER_S, self._redeliver)
        timer.daemon = True
        timer.start()
        if frame is not None and any(frame.f_code is getattr(callback, "__code__", None) for callback in gc.callbacks):
            return  # raised here, it would be printed and dropped
        if _importing(frame):
            return  # raised inside an extension module's initialisation, it aborts the process (SIGABRT)
        raise KeyboardInterrupt

    def _redeliver(self) -> None:
        if self.caught:
            return
        if hasattr(signal, "pthread_kill"):  # a real signal: it also ends a sleep or a wait of the main thread
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        else:
            _thread.interrupt_main(signal.SIGINT)


def _importing(frame) -> bool:
    """Whether ``frame`` runs inside an import (a frame of importlib's bootstrap is on its stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the tools' error contract: a bad command line prints the one line
    ``<tool>: error: <message>`` (no usage block) and exits with status 1 (argparse's own: status 2).

    ``<tool>`` is the module's name in ``prog`` ("python -m stylegan_jax.generate" -> "generate"; a
    subcommand's parser, "python -m stylegan_jax.avg_spectra calc", reports as "avg_spectra"), the name `run`
    reports the tool's other errors under. ``--help`` is unchanged.

    A value that starts with a minus and a digit is a value, not a flag (``--translate -0.5,0.25``, which
    NVIDIA's click takes; argparse before Python 3.13 reads only single numbers so).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"-\.?\d")  # Python 3.13's rule (argparse's own attribute)

    def error(self, message: str):
        self.exit(1, f"{self.prog.rsplit('.', 1)[-1].split()[0]}: error: {message}\n")


class Seeds(Sequence[int]):
    """A parsed seed list (`parse_seeds`): its ranges, kept lazy, so ``0-99999999`` costs nothing until a
    tool iterates it batch by batch. Compares equal to any sequence of the same ints; ``str`` gives the text
    it was parsed from."""

    def __init__(self, ranges: Sequence[range], text: str) -> None:
        self._ranges = tuple(ranges)
        self._starts = list(itertools.accumulate((len(r) for r in self._ranges), initial=0))
        self._text = text

    def __len__(self) -> int:
        return self._starts[-1]

    def __iter__(self) -> Iterator[int]:
        return itertools.chain.from_iterable(self._ranges)

    def __contains__(self, seed: object) -> bool:
        return isinstance(seed, int) and any(seed in r for r in self._ranges)

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> list[int]: ...
    def __getitem__(self, i: int | slice) -> int | list[int]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("seed index out of range")
        k = bisect.bisect_right(self._starts, i) - 1
        return self._ranges[k][i - self._starts[k]]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so not hashable

    def distinct(self) -> int:
        """How many different seeds the list holds (the union of its ranges: ``1,1`` holds one)."""
        count, end = 0, None
        for r in sorted((r for r in self._ranges if r), key=lambda r: r.start):
            count += max(0, r.stop - (r.start if end is None else max(r.start, end)))
            end = r.stop if end is None else max(end, r.stop)
        return count

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"parse_seeds({self._text!r})"


def parse_seeds(text: str) -> Seeds:
    """``"0-3,7"`` -> the seeds 0, 1, 2, 3, 7 (comma-separated seeds or inclusive ranges ``a-b`` with a <= b,
    each in 0..`MAX_SEED`), as a lazy `Seeds`; anything else is an `argparse.ArgumentTypeError` (this is an
    argparse ``type``)."""
    ranges = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise argparse.ArgumentTypeError(f"not a seed list: {text!r} (use e.g. 0-3,7)")
        first, last = (digits.lstrip("0") or "0" for digits in (m[1], m[2] or m[1]))
        within = f" in {text!r}" if part != text else ""
        if len(last) > len(str(MAX_SEED)) or int(last) > MAX_SEED:  # the length first: int() of 5000 digits fails
            raise argparse.ArgumentTypeError(f"seed {last}{within} is above {MAX_SEED} (2**32 - 1)")
        if len(first) > len(last) or int(first) > int(last):
            raise argparse.ArgumentTypeError(f"reversed range {part.strip()!r}{within}: write {last}-{first}")
        ranges.append(range(int(first), int(last) + 1))
    return Seeds(ranges, text)


def parse_seed(text: str) -> int:
    """One seed in 0..`MAX_SEED` (an argparse ``type``)."""
    value = _int(text, "a seed")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed {value} is outside 0..{MAX_SEED}")
    return value


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer (expected {what})") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (an argparse ``type``)."""
    value = _int(text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (an argparse ``type``)."""
    value = _int(text, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative (expected an integer >= 0)")
    return value


def finite_float(text: str) -> float:
    """A finite number in float32's range, as the networks compute (an argparse ``type``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    try:
        struct.pack("<f", value)  # rounds to the nearest float32, or overflows (the standard size checks)
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is beyond float32's range (+-3.403e+38)") from None
    return value


def nonnegative_float(text: str) -> float:
    """A finite float >= 0 (an argparse ``type``)."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative (expected a number >= 0)")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0 (an argparse ``type``)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not positive (expected a number > 0)")
    return value


#: The words click's BOOL takes (NVIDIA's ``--mirror=1``), any case.
BOOL_WORDS = {**dict.fromkeys(("1", "true", "t", "yes", "y", "on"), True),
              **dict.fromkeys(("0", "false", "f", "no", "n", "off"), False)}


def parse_bool(text: str) -> bool:
    """One of `BOOL_WORDS` (an argparse ``type``), as NVIDIA's click flags (``--mirror=1``) take it."""
    value = BOOL_WORDS.get(text.strip().lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (expected 1 or 0, true or false)")
    return value


def parse_vec2(text: str) -> tuple[float, float]:
    """``"0.3,1"`` -> (0.3, 1.0): two finite numbers (an argparse ``type``; NVIDIA's VEC2)."""
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not two numbers X,Y")
    x, y = (finite_float(part) for part in parts)
    return x, y


def metric_names(text: str) -> list[str]:
    """NVIDIA's comma-separated ``--metrics`` -> the names, blanks dropped; a name given twice is an
    `argparse.ArgumentTypeError` (it would be computed twice)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{text!r}: {', '.join(twice)} given twice; give each metric once")
    return names


def path_arg(text: str) -> str:
    """A non-empty path (an argparse ``type``): an empty one would silently mean the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path")
    return text


def outdir(text: str) -> str:
    """A directory the tool may create or write into (an argparse ``type``): an existing directory, or a path
    whose nearest existing parent is a writable directory. Refuses an empty path and an existing file (or a
    path under one). Creates nothing."""
    path = os.path.abspath(path_arg(text))
    if os.path.lexists(path) and not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    parent = path
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"{text} lies under {parent}, which is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: {parent} is not writable")
    return text


def output_file(text: str) -> str:
    """A file the tool may write (an argparse ``type``): not an existing directory, in a folder `outdir` accepts
    (existing and writable, or creatable). Creates nothing."""
    path = os.path.abspath(path_arg(text))
    if os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{text} is a directory; expected a file name")
    try:
        outdir(os.path.dirname(path))
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"{text}: its folder cannot be written ({e})") from None
    return text


def read_npz(path: str, expected: str) -> dict:
    """The arrays of numbers (name -> NumPy array) of the .npz file at ``path``, read without unpickling
    anything; a missing or unreadable file, a .npy array, an array of anything but numbers (strings, bytes) or
    any other file is a `UsageError` naming it and saying what it is not, then what was ``expected`` ("a
    projector's projected_w.npz")."""
    import zipfile

    import numpy as np

    try:
        loaded = np.load(path, allow_pickle=False)
        arrays = None
        if isinstance(loaded, np.lib.npyio.NpzFile):  # else a .npy array, read whole
            with loaded as data:
                arrays = {name: data[name] for name in data.files}
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise UsageError(f"{path}: not a readable .npz file ({e}); expected {expected}") from None
    except ValueError:  # NumPy takes what is neither .npz nor .npy for a pickle, and refuses object arrays
        raise UsageError(f"{path}: not a readable .npz file (neither a .npz archive nor a .npy array of numbers; "
                         f"pickled data is never loaded); expected {expected}") from None
    if arrays is None:
        raise UsageError(f"{path}: not a readable .npz file (a .npy array); expected {expected}")
    for name, array in arrays.items():
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise UsageError(f"{path}: its array {name!r} holds {array.dtype} values, not numbers; expected {expected}")
    return arrays


def check_grid(cells: int, cell_bytes: int, what: str) -> None:
    """Refuses (`UsageError`) a grid of ``cells`` images that would need more than `MAX_GRID_BYTES` of memory
    at ``cell_bytes`` each; ``what`` names the flags that chose its size."""
    need = cells * cell_bytes
    if need > MAX_GRID_BYTES:
        raise UsageError(f"{what}: a grid of {cells} images would need {need / 2**30:.3g} GiB of memory (at most "
                         f"{MAX_GRID_BYTES / 2**30:g} GiB); use fewer seeds")


def check_output_files(outdir: str, is_output: Callable[[str], bool], why: str | None = None) -> None:
    """Refuses (`UsageError`, worded as the system's refusal would be) a directory standing in ``outdir`` where
    a file the tool writes is to go (``is_output(name)``), before anything is written there: ``outdir``'s
    entries are looked at, not the names, so that a lazy list of a hundred million seeds costs nothing. With
    ``why`` (what the folder is for), a file standing where ``outdir`` itself goes is refused too."""
    if why is not None and os.path.lexists(outdir) and not os.path.isdir(outdir):
        raise UsageError(f"{outdir}: exists and is not a directory ({why})")
    if not os.path.isdir(outdir):
        return
    try:
        with os.scandir(outdir) as entries:
            found = sorted(entry.path for entry in entries if entry.is_dir() and is_output(entry.name))
    except PermissionError:  # a folder one may write into but not list: each write is refused in its turn
        return
    if found:
        raise UsageError(f"{found[0]}: Is a directory")


def numbered_file(name: str, prefix: str, digits: int, numbers: Container[int], suffix: str = ".png") -> bool:
    """Whether ``name`` is the file ``f"{prefix}{i:0{digits}d}{suffix}"`` of an ``i`` in ``numbers`` (a tool's
    numbered outputs: ``seed0042.png``, ``frame00007.png``), for `check_output_files`."""
    match = re.fullmatch(rf"{re.escape(prefix)}(\d+){re.escape(suffix)}", name)
    return (match is not None and f"{prefix}{int(match[1]):0{digits}d}{suffix}" == name
            and int(match[1]) in numbers)


def add_runtime_flags(p: argparse.ArgumentParser) -> None:
    """``--cpu-fusion/--no-cpu-fusion`` (``args.cpu_fusion``, default on): XLA:CPU's YNNPACK fusion, as
    train's flag, for `stylegan_jax.runtime.configure_runtime`."""
    p.add_argument("--cpu-fusion", action=argparse.BooleanOptionalAction, default=True,
                   help="XLA:CPU's YNNPACK fusion (default on; turn it off for StyleGAN3-R networks at 256 and "
                   "above, which need about 6x the memory with it)")


def add_network_flags(p: argparse.ArgumentParser, family_truncation: bool = True) -> None:
    """The flags generate and style_mixing share (NVIDIA's names). ``family_truncation``: ``--trunc`` left
    unset takes the family's generation default (`load_sampled_network`); else it is 1."""
    p.add_argument("--network", required=True, type=path_arg,
                   help="NVIDIA network pickle (.pkl) or stylegan_jax snapshot dir")
    family_default = "; StyleGAN1 networks: 0.7 on the first 8 ws, as NVIDIA's" if family_truncation else ""
    p.add_argument("--trunc", dest="truncation_psi", type=finite_float, default=None if family_truncation else 1.0,
                   help=f"truncation psi (default 1{family_default})")
    p.add_argument("--trunc-cutoff", dest="truncation_cutoff", type=nonnegative_int,
                   help="truncate only the first N ws")
    p.add_argument("--class", dest="class_idx", type=int, help="class label (conditional networks only)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="noise inputs (default const)")
    p.add_argument("--outdir", required=True, type=outdir, help="where to write the images")
    p.add_argument("--batch-size", type=positive_int, default=16, help="images per jitted batch")


def load_sampled_network(args: argparse.Namespace, needs_mapping: bool = False) -> Network:
    """The ``--network`` of a tool that samples ws (`add_network_flags`): loaded, and ``--trunc``/
    ``--trunc-cutoff`` left unset filled in with the family's generation default (StyleGAN1's (0.7, 8), but
    none for its networks without styles, as NVIDIA's configs of them; none for the others). A family without
    a mapping network samples z as its W (``Family.sampler``); a tool that ``needs_mapping`` (style mixing:
    one w per layer) refuses it with a `UsageError`, as it does a network whose images no PNG holds."""
    from stylegan_jax.images import IMAGE_MODES
    from stylegan_jax.network_snapshot import load_network

    network = load_network(args.network)
    channels = network.generator.img_channels
    if channels not in IMAGE_MODES:
        raise UsageError(f"{args.network}: the network makes {channels}-channel images; the tools write PNGs of "
                         f"{', '.join(map(str, IMAGE_MODES))} channels")
    if needs_mapping and not network.family.has_mapping:
        raise UsageError(f"the network's model {network.model!r} has no mapping network (z -> one w per layer); "
                         "style mixing needs one (a StyleGAN family)")
    if not network.family.has_mapping and getattr(args, "truncation_cutoff", None) is not None:
        raise UsageError(f"--trunc-cutoff: the network's model {network.model!r} has one latent (z), no layers "
                         "to cut off at")
    psi, cutoff = network.family.truncation  # each filled in alone, as NVIDIA's G_style defaults (0.7, 8)
    if network.G_kwargs.get("use_styles") is False:  # StyleGAN1's tuned baseline: NVIDIA's truncation_psi None
        psi, cutoff = 1.0, None
    if args.truncation_psi is None:
        args.truncation_psi = psi
    if args.truncation_cutoff is None:
        args.truncation_cutoff = cutoff
    return network
