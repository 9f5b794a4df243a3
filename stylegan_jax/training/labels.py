"""The labels of a conditional run's generated images: as NVIDIA's training loop (``all_gen_c``), each image takes
the label of a dataset image drawn at random, with replacement and independently of the real batch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class LabelDistribution:
    """The training set's labels, kept as its distinct labels and how many images hold each: a draw of a
    uniformly random image's label, without a table of one row per image on the device.

    Attributes:
      rows: the distinct labels [U, c_dim] float32, in lexicographic order.
      ends: their cumulative image counts [U] int32: images ``ends[u-1] .. ends[u] - 1`` of the training set
        sorted by label hold ``rows[u]``; ``ends[-1]`` is the number of images.
    """

    rows: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, chunks: Iterable[np.ndarray]) -> LabelDistribution:
        """The distribution of the images' labels, given in chunks [n, c_dim] (N >= 1 in all, c_dim >= 1; e.g.
        `data.iter_labels`), holding one chunk and the distinct labels at a time."""
        rows, counts = np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
        for chunk in chunks:
            new_rows, new_counts = np.unique(np.asarray(chunk, np.float32), axis=0, return_counts=True)
            rows = new_rows if not len(counts) else np.concatenate([rows, new_rows])
            rows, which = np.unique(rows, axis=0, return_inverse=True)
            counts = np.bincount(which.ravel(), np.concatenate([counts, new_counts]), minlength=len(rows))
        return cls(rows=rows, ends=np.cumsum(counts).astype(np.int32))

    def draw(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """Labels [*shape, c_dim] float32 of images drawn uniformly from the training set with ``key``: image
        ``randint(key, shape, 0, N)`` of the training set sorted by label."""
        image = jax.random.randint(key, shape, 0, int(self.ends[-1]))
        return jnp.asarray(self.rows)[jnp.searchsorted(jnp.asarray(self.ends), image, side="right")]
