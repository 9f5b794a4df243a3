"""The labels of a conditional run's generated images: as NVIDIA's training loop (``all_gen_c``), each image takes
the label of a dataset image drawn at random, with replacement and independently of the real batch."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.data import LabelTable


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
    def of(cls, table: LabelTable) -> LabelDistribution:
        """The distribution of a training set's labels (`data.read_labels`; c_dim >= 1)."""
        return cls(rows=table.rows, ends=np.cumsum(table.counts()).astype(np.int32))

    def draw(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """Labels [*shape, c_dim] float32 of images drawn uniformly from the training set with ``key``: image
        ``randint(key, shape, 0, N)`` of the training set sorted by label."""
        image = jax.random.randint(key, shape, 0, int(self.ends[-1]))
        return jnp.asarray(self.rows)[jnp.searchsorted(jnp.asarray(self.ends), image, side="right")]
