"""The training input pipeline: a dataset directory -> batches of images in [-1, 1] and one-hot labels.

    tfds data source (PNG bytes) -> [random subset] -> grain.MapDataset: per-process slice -> decode
    -> [x-flip doubling] -> seeded shuffle (a new order every epoch) -> repeat -> batch   (`make_dataset`: uint8)
    -> grain.IterDataset: read threads, optional worker processes -> float32              (`make_iterator`)

The iterator's batches are dicts {"image": float32 (N, H, W, C) in [-1, 1], "label": float32 (N, c_dim)}:
one-hot for class labels, the stored vector for vector labels, shape (N, 0) for an unlabelled dataset. N is
the batch size of this process. The conversion to float32 happens last, in this process, so worker processes
pass uint8 batches (4x fewer bytes than float32; throughput: docs/performance.md, "Data").

The order depends only on the seed, the process slice and the batch size (not on the worker count), and the
iterator is checkpointable: `it.get_state()` returns a JSON-able dict, the position alone, and
`it.set_state(state)` resumes at that point, with any worker count. With Orbax, save it as
`grain.checkpoint.CheckpointSave(it)` and restore it with `grain.checkpoint.CheckpointRestore(it)` (e.g. items of
`ocp.args.Composite`), which writes one JSON per process.
"""

from __future__ import annotations

import functools
import io
import os
from typing import Any

import grain
import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from absl import flags
from array_record.python import array_record_module

from stylegan_jax.data.errors import DatasetError
from stylegan_jax.data.info import load_builder, read_dataset_info
from stylegan_jax.errors import first_line

Example = dict[str, np.ndarray]


def open_source(path: str | os.PathLike) -> Any:
    """The random-access TFDS data source of a dataset: a sequence of {"image": PNG bytes, "label": ...}.

    Raises:
      DatasetError: a shard does not open, or holds another number of records than the metadata says
        (truncated or replaced): checked here, not met as an exception inside Grain's reader threads.
    """
    builder = load_builder(path)
    split = builder.info.splits["train"]
    for shard, expected in zip(split.filepaths, split.shard_lengths, strict=True):
        try:
            reader = array_record_module.ArrayRecordReader(str(shard))
            try:
                count = reader.num_records()
            finally:
                reader.close()
        except (OSError, RuntimeError, ValueError) as e:
            raise DatasetError(f"{shard}: unreadable ({first_line(e)}); convert the dataset again with "
                               "dataset_tool") from None
        if count != expected:
            raise DatasetError(f"{shard}: holds {count} records where dataset_info.json says {expected} (truncated "
                               "or replaced); convert the dataset again with dataset_tool")
    return builder.as_data_source("train", decoders={"image": tfds.decode.SkipDecoding()})


def subset_indices(num_images: int, max_size: int | None, random_seed: int) -> np.ndarray | None:
    """The records a dataset of ``num_images`` keeps at ``max_size`` (NVIDIA's Dataset: its indices shuffled by
    ``np.random.RandomState(random_seed)``, the first ``max_size`` of them, sorted); None when it keeps all."""
    if max_size is None or max_size >= num_images:
        return None
    indices = np.arange(num_images)
    np.random.RandomState(random_seed).shuffle(indices)
    return np.sort(indices[:max_size])


class Subset:
    """A random-access data source restricted to ``indices`` of another (`subset_indices`)."""

    def __init__(self, source: Any, indices: np.ndarray) -> None:
        self.source, self.indices = source, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.source[int(self.indices[i])]


def label_vector(stored: Any, *, label_kind: str, c_dim: int) -> np.ndarray:
    """A record's stored label -> float32 (c_dim,): one-hot for classes, the vector for vector labels, (0,) for
    an unlabelled dataset."""
    if label_kind == "class":
        label = np.zeros(c_dim, np.float32)
        label[int(stored)] = 1.0
        return label
    if label_kind == "vector":
        return np.asarray(stored, np.float32)
    return np.zeros(0, np.float32)


def decode(record: dict[str, Any], *, label_kind: str, c_dim: int) -> Example:
    """One stored record -> {"image": uint8 (H, W, C), "label": float32 (c_dim,)} (`label_vector`)."""
    image = np.asarray(PIL.Image.open(io.BytesIO(record["image"])))
    image = image.reshape(image.shape[0], image.shape[1], -1)
    return {"image": image, "label": label_vector(record.get("label"), label_kind=label_kind, c_dim=c_dim)}


def mirror(example: Example) -> Example:
    """The example flipped left-right (x-flip)."""
    return {"image": example["image"][:, ::-1], "label": example["label"]}


def to_float(batch: Example) -> Example:
    """uint8 images in [0, 255] -> float32 in [-1, 1] (x / 127.5 - 1, as NVIDIA does)."""
    return {"image": batch["image"].astype(np.float32) / np.float32(127.5) - 1, "label": batch["label"]}


def make_dataset(
    path: str | os.PathLike,
    *,
    batch_size: int,
    seed: int = 0,
    shuffle: bool = True,
    xflip: bool = False,
    num_epochs: int | None = None,
    drop_remainder: bool = True,
    process_index: int = 0,
    process_count: int = 1,
    max_size: int | None = None,
    random_seed: int = 0,
) -> grain.MapDataset:
    """The uint8 batches of this process as a random-access `grain.MapDataset`.

    Args:
      path: a dataset directory (see `resolve_dataset`).
      batch_size: images per batch on this process (global batch / process_count).
      seed: the shuffle seed; the same seed gives the same order, each epoch differently permuted.
      shuffle: False keeps the stored order (with x-flip: all originals, then all mirrored copies).
      xflip: double the dataset with left-right mirrored copies, so an epoch sees each image once each way.
      num_epochs: passes over the data; None repeats forever (batches then run across epoch boundaries).
      drop_remainder: drop a last incomplete batch (only matters for finite `num_epochs`).
      process_index, process_count: this process takes items process_index, process_index + process_count,
        ... of the (shuffled, repeated) stream, disjoint slices that together cover it: the processes' batches
        t (of batch_size each) together hold the items of one process's batch t (of process_count times it).
      max_size, random_seed: use only a random ``max_size`` of the dataset's images, chosen by
        ``random_seed`` (`subset_indices`; NVIDIA's Dataset arguments, training's ``--subset``), before the
        x-flips and the shuffle; None: all of them.

    Returns:
      A MapDataset whose elements are batches {"image": uint8 (N, H, W, C), "label": float32 (N, c_dim)}.
    """
    info = read_dataset_info(path)
    source = open_source(path)
    chosen = subset_indices(len(source), max_size, random_seed)
    examples = grain.MapDataset.source(source if chosen is None else Subset(source, chosen)).map(
        functools.partial(decode, label_kind=info["label_kind"], c_dim=info["c_dim"]))
    if xflip:
        examples = grain.MapDataset.concatenate([examples, examples.map(mirror)])
    if shuffle:
        examples = examples.shuffle(seed)
    # One stream for all processes, dealt out in turn (NVIDIA's InfiniteSampler: a global permutation, rank r
    # taking every world-th item), so that the processes' batches t together are one process's batch t.
    stream = examples.repeat(num_epochs).slice(slice(process_index, None, process_count))
    return stream.batch(batch_size, drop_remainder=drop_remainder)


def make_iterator(
    path: str | os.PathLike,
    *,
    batch_size: int,
    seed: int = 0,
    shuffle: bool = True,
    xflip: bool = False,
    num_epochs: int | None = None,
    drop_remainder: bool = True,
    process_index: int = 0,
    process_count: int = 1,
    max_size: int | None = None,
    random_seed: int = 0,
    worker_count: int = 0,
    read_threads: int = 2,
    prefetch_batches: int = 4,
) -> grain.DatasetIterator:
    """A checkpointable, prefetching iterator over the batches of `make_dataset` (same arguments) in float32.

    Args:
      worker_count: processes decoding batches (0: decode in threads of this process). The batches do not
        depend on it.
      read_threads: threads decoding batches in each process.
      prefetch_batches: batches decoded ahead in each process.

    Returns:
      A `BatchIterator` of batches {"image": float32 (N, H, W, C) in [-1, 1], "label": float32 (N, c_dim)},
      with `get_state()` / `set_state(state)` (a state fits iterators of the same arguments, whatever their
      worker counts); close it with `it.close()` when it has worker processes.
    """
    dataset = make_dataset(
        path,
        batch_size=batch_size,
        seed=seed,
        shuffle=shuffle,
        xflip=xflip,
        num_epochs=num_epochs,
        drop_remainder=drop_remainder,
        process_index=process_index,
        process_count=process_count,
        max_size=max_size,
        random_seed=random_seed,
    )
    return BatchIterator(dataset, grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch_batches),
                         worker_count)


class BatchIterator(grain.DatasetIterator):
    """The float32 batches (`to_float`) of a `make_dataset` MapDataset from a position on, decoded ahead by
    ``read_options``' threads, in ``worker_count`` processes or in this one (0).

    Its state is that position alone, ``{"next_index": batches taken}``, so that a checkpoint saved with one
    worker count resumes with any other (grain's own multiprocess iterator saves its workers' turns, which no
    iterator of another worker count reads). The states that grain's iterators saved before (this package
    until 2026-12-06) are read too: the same ``next_index`` without workers, and with workers their own
    positions in their turns, which add up to it. The decoding starts at the first batch taken, so that a
    state set before it starts no worker twice.
    """

    def __init__(self, batches: grain.MapDataset, read_options: grain.ReadOptions, worker_count: int):
        super().__init__()
        self._batches, self._read_options, self._worker_count = batches, read_options, worker_count
        self._position, self._iterator = 0, None

    def _start(self) -> grain.DatasetIterator:
        batches = self._batches[self._position:].to_iter_dataset(self._read_options)
        if self._worker_count > 0:
            # Grain's worker processes read absl flags, which are unparsed outside `absl.app.run`.
            if not flags.FLAGS.is_parsed():
                flags.FLAGS.mark_as_parsed()
            batches = batches.mp_prefetch(grain.MultiprocessingOptions(num_workers=self._worker_count))
        return iter(batches.map(to_float))

    def __next__(self) -> Example:
        if self._iterator is None:
            self._iterator = self._start()
        batch = next(self._iterator)
        self._position += 1
        return batch

    def get_state(self) -> dict[str, Any]:
        return {"next_index": self._position}

    def set_state(self, state: dict[str, Any]) -> None:
        if "iterators_in_use_states" in state:  # grain's multiprocess iterator: its workers take turns
            position = sum(int(worker["next_index"]) for worker in state["iterators_in_use_states"])
        else:
            position = int(state["next_index"])
        if position < 0:
            raise ValueError(f"a negative data position ({position} batches)")
        self.close()
        self._position = position

    def close(self) -> None:
        """Stops the decoding (its worker processes, if any); the next batch taken starts it again."""
        if self._iterator is not None:
            self._iterator.close()
            self._iterator = None
