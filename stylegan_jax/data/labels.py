"""A dataset's labels, read without decoding its images: every kept image's label as a table of the distinct
labels and which one each image holds (a conditional ImageNet's 1.28M one-hot rows of 1,000 would take 5 GB; the
table takes one int32 per image)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from stylegan_jax.data.info import read_dataset_info
from stylegan_jax.data.pipeline import label_vector, open_source, subset_indices


@dataclass(frozen=True)
class LabelTable:
    """The labels of N images.

    Attributes:
      rows: the distinct labels [U, c_dim] float32 (U >= 1), in lexicographic order (one-hot for classes; the
        vectors of vector labels; one row of width 0 for an unlabelled dataset).
      image_rows: [N] int32: image i's label is ``rows[image_rows[i]]``.
    """

    rows: np.ndarray
    image_rows: np.ndarray

    def __len__(self) -> int:
        return len(self.image_rows)

    def __getitem__(self, i: int) -> np.ndarray:
        """Image ``i``'s label [c_dim] float32."""
        return self.rows[self.image_rows[i]]

    @property
    def shape(self) -> tuple[int, int]:
        """(N, c_dim), as the table's [N, c_dim] array would have."""
        return len(self.image_rows), self.rows.shape[1]

    @classmethod
    def unlabelled(cls, n: int) -> LabelTable:
        """The labels of width 0 of ``n`` images."""
        return cls(rows=np.zeros((1, 0), np.float32), image_rows=np.zeros(n, np.int32))

    def counts(self) -> np.ndarray:
        """How many images hold each of ``rows`` [U] int64."""
        return np.bincount(self.image_rows, minlength=len(self.rows))


def read_labels(path: str | os.PathLike, *, max_size: int | None = None, random_seed: int = 0,
                chunk: int = 4096) -> LabelTable:
    """The labels (`pipeline.label_vector`) of the images a run with ``max_size`` and ``random_seed`` keeps
    (`pipeline.subset_indices`), in the stored order, read ``chunk`` records at a time without decoding their
    images; an unlabelled dataset's without reading a record."""
    info = read_dataset_info(path)
    if not info["c_dim"]:
        return LabelTable.unlabelled(info["num_images"] if max_size is None else min(max_size, info["num_images"]))
    source = open_source(path)
    chosen = subset_indices(len(source), max_size, random_seed)
    indices = np.arange(len(source)) if chosen is None else chosen
    ids: dict[bytes, int] = {}  # a distinct label's bytes -> its index in order of appearance
    rows, image_rows = [], np.empty(len(indices), np.int32)
    for start in range(0, len(indices), chunk):
        records = source.__getitems__([int(i) for i in indices[start:start + chunk]])
        labels = np.stack([label_vector(r["label"], label_kind=info["label_kind"], c_dim=info["c_dim"])
                           for r in records])
        distinct, which = np.unique(labels, axis=0, return_inverse=True)
        for row in distinct:
            if ids.setdefault(row.tobytes(), len(ids)) == len(rows):
                rows.append(row)
        image_rows[start:start + len(labels)] = np.array([ids[row.tobytes()] for row in distinct])[which.ravel()]
    rows = np.stack(rows)
    order = np.lexsort(rows.T[::-1])  # lexicographic, the first column major
    rank = np.empty(len(order), np.int32)
    rank[order] = np.arange(len(order))
    return LabelTable(rows=rows[order], image_rows=rank[image_rows])
