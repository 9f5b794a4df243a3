"""The grain input pipeline: exact images, seeded order, process slices, checkpointable state, labels."""

import re
import shutil
from pathlib import Path

import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest
from imagefiles import random_pixels

from stylegan_jax.data import DatasetError, make_dataset, make_iterator, read_dataset_info, read_labels, subset_indices
from stylegan_jax.data.images import encode_png
from stylegan_jax.data.tfds_builder import DatasetSpec, write_dataset

NUM = 10
RES = 8


@pytest.fixture(scope="module")
def originals() -> np.ndarray:
    """The dataset's images, uint8 (NUM, RES, RES, 3), all different."""
    return np.stack([random_pixels(i, (RES, RES, 3)) for i in range(NUM)])


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, originals) -> Path:
    """A dataset of `originals` with class labels i % 4 (c_dim 4)."""
    spec = DatasetSpec(resolution=RES, channels=3, label_kind="class", c_dim=4, source="test")
    examples = [{"image": encode_png(im), "label": i % 4} for i, im in enumerate(originals)]
    return write_dataset(tmp_path_factory.mktemp("data") / "labelled", spec, examples)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1] (an iterator's batches) back to uint8; uint8 (make_dataset's batches) as it is."""
    return images if images.dtype == np.uint8 else np.round((images + 1) * 127.5).astype(np.uint8)


def index_of(originals: np.ndarray, image: np.ndarray) -> int:
    """Which original `image` (uint8 (H, W, C)) is; -(1 + i) for the mirror of original i."""
    for i, original in enumerate(originals):
        if np.array_equal(image, original):
            return i
        if np.array_equal(image, original[:, ::-1]):
            return -(1 + i)
    raise AssertionError("image is in the dataset neither as stored nor mirrored")


def indices(originals: np.ndarray, batches) -> list[int]:
    return [index_of(originals, im) for b in batches for im in to_uint8(b["image"])]


def take(iterator, n: int) -> list[dict[str, np.ndarray]]:
    return [next(iterator) for _ in range(n)]


def test_round_trip_exact_images_and_one_hot_labels(labelled, originals):
    batches = list(make_iterator(labelled, batch_size=5, shuffle=False, num_epochs=1))
    assert len(batches) == 2
    images = np.concatenate([b["image"] for b in batches])
    labels = np.concatenate([b["label"] for b in batches])
    assert images.dtype == np.float32 and images.shape == (NUM, RES, RES, 3)
    np.testing.assert_allclose(images, originals / 127.5 - 1, atol=1e-6)  # 0 -> -1, 255 -> 1
    np.testing.assert_array_equal(to_uint8(images), originals)
    np.testing.assert_array_equal(labels, np.eye(4, dtype=np.float32)[np.arange(NUM) % 4])
    stored = np.concatenate([b["image"] for b in make_dataset(labelled, batch_size=5, shuffle=False)[:2]])
    assert stored.dtype == np.uint8
    np.testing.assert_array_equal(stored, originals)


def test_shuffled_epoch_holds_each_image_once_and_xflip_once_each_way(labelled, originals):
    plain = indices(originals, make_dataset(labelled, batch_size=2, seed=1, num_epochs=1))
    assert sorted(plain) == list(range(NUM)) and plain != sorted(plain)
    flipped = make_dataset(labelled, batch_size=4, seed=1, xflip=True, num_epochs=1)
    seen = indices(originals, flipped)
    assert sorted(seen) == sorted([*range(NUM), *(-(1 + i) for i in range(NUM))])
    for batch in flipped:  # a mirrored image keeps its label
        for image, label in zip(to_uint8(batch["image"]), batch["label"], strict=True):
            i = index_of(originals, image)
            assert label.argmax() == (i if i >= 0 else -1 - i) % 4


def test_seeded_order_is_reproducible_and_changes_per_epoch(labelled, originals):
    def order(seed: int) -> list[int]:
        return indices(originals, take(make_iterator(labelled, batch_size=NUM, seed=seed), 3))

    first = order(7)
    assert first == order(7)
    assert first != order(8)
    epochs = [first[i * NUM : (i + 1) * NUM] for i in range(3)]
    assert all(sorted(e) == list(range(NUM)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]


def test_process_slices_are_disjoint_and_cover_the_dataset(labelled, originals):
    slices = [
        indices(
            originals,
            make_dataset(labelled, batch_size=1, seed=3, num_epochs=1, process_index=p, process_count=3),
        )  # fmt: skip
        for p in range(3)
    ]
    assert [len(s) for s in slices] == [4, 3, 3]
    assert sorted(sum(slices, [])) == list(range(NUM))


def test_the_processes_batches_together_are_one_processs_batch(labelled, originals):
    """Over several epochs, with x-flips: process p's batch t holds items p, p + P, ... of the one stream whose
    consecutive batches one process would take (NVIDIA's sampler deals a global permutation out to the ranks);
    slicing each process's own share first gave every epoch's batch the same neighbours in stored order."""
    one = make_dataset(labelled, batch_size=6, seed=4, xflip=True)
    shares = [make_dataset(labelled, batch_size=2, seed=4, xflip=True, process_index=p, process_count=3)
              for p in range(3)]
    for t in range(8):  # 48 items: more than two epochs of 20 (10 images and their mirrors)
        whole = indices(originals, one[t:t + 1])
        assert [indices(originals, share[t:t + 1]) for share in shares] == [whole[p::3] for p in range(3)]


def test_a_subset_is_nvidias_random_max_size_before_the_flips_and_process_slices(labelled, originals):
    kept = np.arange(NUM)
    np.random.RandomState(5).shuffle(kept)  # NVIDIA's Dataset(max_size=6, random_seed=5)
    kept = sorted(kept[:6].tolist())
    assert subset_indices(NUM, 6, 5).tolist() == kept
    assert subset_indices(NUM, NUM, 5) is None and subset_indices(NUM, None, 5) is None
    stored = indices(originals, make_dataset(labelled, batch_size=1, shuffle=False, num_epochs=1, max_size=6,
                                             random_seed=5))
    assert stored == kept  # in stored order
    flipped = indices(originals, make_dataset(labelled, batch_size=4, seed=2, xflip=True, num_epochs=1, max_size=6,
                                              random_seed=5))
    assert sorted(flipped) == sorted([*kept, *(-(1 + i) for i in kept)])
    slices = [indices(originals, make_iterator(labelled, batch_size=1, num_epochs=1, max_size=6, random_seed=5,
                                               process_index=p, process_count=2)) for p in range(2)]
    assert sorted(slices[0] + slices[1]) == kept and not set(slices[0]) & set(slices[1])


def test_read_labels_are_the_stored_order_iterators_labels_of_the_subset(labelled):
    """``read_labels`` (which skips the images) gives the labels an unshuffled pass of the iterator gives,
    whole and of NVIDIA's random subset, read in chunks that each hold some of the labels, as a table of the
    distinct labels in lexicographic order."""
    for max_size in (None, 6):
        expected = np.concatenate([b["label"] for b in make_iterator(
            labelled, batch_size=1, shuffle=False, num_epochs=1, max_size=max_size, random_seed=5)])
        table = read_labels(labelled, max_size=max_size, random_seed=5, chunk=3)
        assert len(table) == len(expected) and table.shape == expected.shape
        np.testing.assert_array_equal(table.rows, np.unique(expected, axis=0))  # distinct, lexicographic
        assert table.rows.dtype == np.float32 and table.image_rows.dtype == np.int32
        np.testing.assert_array_equal(table.rows[table.image_rows], expected)
        np.testing.assert_array_equal(np.stack([table[i] for i in range(len(table))]), expected)
        np.testing.assert_array_equal(table.counts(), np.unique(expected, axis=0, return_counts=True)[1])
    table = read_labels(labelled, max_size=6, random_seed=5)
    np.testing.assert_array_equal(table.rows[table.image_rows], np.eye(4)[subset_indices(NUM, 6, 5) % 4])


def test_state_save_restore_gives_the_same_next_batches(labelled):
    kwargs = dict(batch_size=3, seed=5, xflip=True)
    reference = make_iterator(labelled, **kwargs)
    take(reference, 4)
    state = reference.get_state()
    expected = take(reference, 6)  # crosses an epoch boundary (20 images per epoch with x-flip)
    resumed = make_iterator(labelled, **kwargs)
    resumed.set_state(state)
    for want, got in zip(expected, take(resumed, 6), strict=True):
        np.testing.assert_array_equal(want["image"], got["image"])
        np.testing.assert_array_equal(want["label"], got["label"])


@pytest.mark.parametrize("saved_with, resumed_with", [(0, 2), (2, 0)])
def test_a_state_saved_with_one_worker_count_resumes_with_another(labelled, saved_with, resumed_with):
    """The state is the position alone: a run resumed with another ``--workers`` continues its batches."""
    kwargs = dict(batch_size=3, seed=5, xflip=True)
    saved = make_iterator(labelled, **kwargs, worker_count=saved_with)
    take(saved, 5)
    state = saved.get_state()
    saved.close()
    assert state == {"next_index": 5}
    resumed = make_iterator(labelled, **kwargs, worker_count=resumed_with)
    resumed.set_state(state)
    try:
        got = take(resumed, 4)
    finally:
        resumed.close()
    for want, batch in zip(take(make_iterator(labelled, **kwargs), 9)[5:], got, strict=True):
        np.testing.assert_array_equal(want["image"], batch["image"])


def test_a_state_of_grains_multiprocess_iterator_resumes(labelled):
    """What grain's own iterator with worker processes saved (this package's checkpoints before 2026-12-06):
    its workers' turns, whose positions add up to the batches taken."""
    kwargs = dict(batch_size=3, seed=5, xflip=True)
    grains = iter(make_dataset(labelled, **kwargs).to_iter_dataset().mp_prefetch(
        grain.MultiprocessingOptions(num_workers=3)))
    try:
        take(grains, 7)
        state = grains.get_state()
    finally:
        grains.close()
    assert len(state["iterators_in_use_states"]) == 3
    resumed = make_iterator(labelled, **kwargs)
    resumed.set_state(state)
    for want, batch in zip(take(make_iterator(labelled, **kwargs), 10)[7:], take(resumed, 3), strict=True):
        np.testing.assert_array_equal(want["image"], batch["image"])


def test_orbax_checkpoint_of_iterator_state(labelled, tmp_path):
    kwargs = dict(batch_size=4, seed=9)
    iterator = make_iterator(labelled, **kwargs)
    take(iterator, 5)
    with ocp.CheckpointManager(tmp_path / "ckpt") as manager:
        manager.save(5, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(iterator)))
        manager.wait_until_finished()
    expected = take(iterator, 3)
    fresh = make_iterator(labelled, **kwargs)
    with ocp.CheckpointManager(tmp_path / "ckpt") as manager:
        manager.restore(5, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(fresh)))
    for want, got in zip(expected, take(fresh, 3), strict=True):
        np.testing.assert_array_equal(want["image"], got["image"])


def test_unlabelled_and_vector_labels(tmp_path, originals):
    plain = write_dataset(
        tmp_path / "plain",
        DatasetSpec(resolution=RES, channels=3),
        [{"image": encode_png(im)} for im in originals[:4]],
    )
    batch = next(make_iterator(plain, batch_size=4))
    assert batch["label"].shape == (4, 0) and batch["label"].dtype == np.float32
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    vec = write_dataset(
        tmp_path / "vec",
        DatasetSpec(resolution=RES, channels=3, label_kind="vector", c_dim=3),
        [{"image": encode_png(im), "label": v} for im, v in zip(originals[:4], vectors, strict=True)],
    )
    assert read_dataset_info(vec)["c_dim"] == 3
    batch = next(make_iterator(vec, batch_size=4, shuffle=False))
    np.testing.assert_array_equal(batch["label"], vectors)
    table = read_labels(vec, chunk=3)
    np.testing.assert_array_equal(table.rows[table.image_rows], vectors)
    assert read_labels(plain).shape == (4, 0) and read_labels(plain, max_size=3).shape == (3, 0)


def test_grayscale_images_keep_a_channel_axis(tmp_path):
    gray = random_pixels(0, (2, RES, RES, 1))
    path = write_dataset(
        tmp_path / "gray", DatasetSpec(resolution=RES, channels=1), [{"image": encode_png(g)} for g in gray]
    )
    batch = next(make_iterator(path, batch_size=2, shuffle=False))
    assert batch["image"].shape == (2, RES, RES, 1)
    np.testing.assert_array_equal(to_uint8(batch["image"]), gray)


@pytest.mark.parametrize("damage", ["truncated shard", "shard of another dataset", "garbage dataset_info.json",
                                    "garbage features.json"])
def test_a_damaged_dataset_is_one_error_naming_the_file(labelled, tmp_path, damage):
    """Found when the dataset is opened, as a DatasetError naming the file, not as an exception inside
    Grain's reader threads at the first batch."""
    copy = tmp_path / "copy"
    shutil.copytree(labelled, copy)
    shard = next(copy.glob("*.array_record-*"))
    if damage == "truncated shard":
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    elif damage == "shard of another dataset":
        other = write_dataset(tmp_path / "other", DatasetSpec(resolution=RES, channels=1),
                              [{"image": encode_png(random_pixels(0, (RES, RES, 1)))}])
        shutil.copyfile(next(other.glob("*.array_record-*")), shard)
    else:
        (copy / damage.split()[1]).write_text("{ garbage")
    named = shard if "shard" in damage else copy
    with pytest.raises(DatasetError, match=re.escape(str(named))):
        next(make_iterator(copy, batch_size=2))
