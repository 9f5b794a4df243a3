"""The generated images' labels: those of random training images, drawn independently of the real batch (NVIDIA's
``all_gen_c``), and the grids' (NVIDIA's ``setup_snapshot_image_grid``)."""

import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.data import LabelTable, make_iterator, read_labels
from stylegan_jax.training.labels import LabelDistribution
from stylegan_jax.training.loop import Trainer
from stylegan_jax.training.steps import Phases
from tests.training.conftest import tiny_config


def within_five_sigma(counts: np.ndarray, probabilities: np.ndarray) -> None:
    """Binomial counts of ``counts.sum()`` draws within 5 standard deviations of ``probabilities``."""
    n = counts.sum()
    sigma = np.sqrt(n * probabilities * (1 - probabilities))
    assert np.all(np.abs(counts - n * probabilities) <= 5 * sigma + 1e-9), (counts, n * probabilities)


def test_a_draw_takes_a_uniformly_random_images_label():
    """Labels held by 3, 1 and 6 of 10 images (vectors): cumulative counts 3, 4, 10, and 40,000 draws take each
    with probability count / 10."""
    rows = np.array([[0.0, 1.0, 0.25], [0.0, 1.0, 0.5], [1.0, 0.0, 0.0]], np.float32)
    dist = LabelDistribution.of(LabelTable(rows=rows, image_rows=np.array([2, 0, 2, 1, 2, 0, 2, 2, 0, 2], np.int32)))
    np.testing.assert_array_equal(dist.rows, rows)
    np.testing.assert_array_equal(dist.ends, [3, 4, 10])
    drawn = np.asarray(jax.jit(dist.draw, static_argnums=1)(jax.random.PRNGKey(3), (200, 200)))
    assert drawn.shape == (200, 200, 3) and drawn.dtype == np.float32
    matches = np.all(drawn.reshape(-1, 1, 3) == rows[None], axis=-1)  # [40000, 3]
    assert np.all(matches.sum(axis=1) == 1)
    within_five_sigma(matches.sum(axis=0), np.array([3, 1, 6]) / 10)


def test_the_phases_draw_the_fakes_labels_from_the_training_set_not_from_the_real_batch(data_dir, tmp_path):
    """With every real label class 0, the phases' generated labels still follow the digits' class frequencies
    (160 phases of 8: 1,280 labels), and differ between phases and iterations; the training set's labels are
    those the trainer's subset keeps; with ``real_labels_for_d_fakes`` (the TF lineages), D's phases take the
    reals' labels."""
    trainer = Trainer(tiny_config(data_dir, subset=900), tmp_path)
    try:
        state = trainer.initial_state()
    finally:
        trainer.manager.close()
    table = read_labels(trainer.dataset_path, max_size=900, random_seed=trainer.cfg.seed)
    training = table.rows[table.image_rows]
    np.testing.assert_array_equal(trainer.labels.rows, np.eye(10, dtype=np.float32)[::-1])  # lexicographic
    np.testing.assert_array_equal(trainer.labels.ends, np.cumsum(training.sum(axis=0)[::-1]))
    k, batch = trainer.layout.minibatches, trainer.layout.batch_gpu
    real = jnp.zeros((k, batch, 10)).at[..., 0].set(1)

    phases = Phases(trainer.cfg, trainer.family, trainer.G, trainer.D, trainer.g_tx, trainer.d_tx, trainer.layout,
                    None, trainer.labels)
    draws = jax.jit(lambda step, phase: phases.latents(state.replace(step=step), phase, real, batch)[1],
                    static_argnums=1)
    labels = np.stack([np.asarray(draws(step, phase)) for step in range(40) for phase in range(4)])
    assert labels.shape == (160, k, batch, 10)
    classes = np.argmax(labels, axis=-1)
    assert np.all(labels.sum(axis=-1) == 1)
    within_five_sigma(np.bincount(classes.ravel(), minlength=10), training.sum(axis=0) / len(training))
    assert len({c.tobytes() for c in classes}) == 160

    # The TF lineages' rule: D's phases (2, 3) give their fakes the reals' labels, G's (0, 1) random ones.
    cfg = trainer.cfg.copy_and_resolve_references()
    cfg.real_labels_for_d_fakes = True
    tf_phases = Phases(cfg, trainer.family, trainer.G, trainer.D, trainer.g_tx, trainer.d_tx, trainer.layout, None,
                       trainer.labels)
    for phase in range(4):
        c = np.asarray(tf_phases.latents(state, phase, real, batch)[1])
        np.testing.assert_array_equal(c, labels[phase]) if phase < 2 else np.testing.assert_array_equal(c, real)


def test_the_grids_rows_follow_nvidias_label_order_and_the_fakes_take_the_reals_labels(data_dir, tmp_path):
    """A conditional run's grid as NVIDIA's ``setup_snapshot_image_grid``, 12 x 12 on the 10 digit classes: row y
    shows 12 different images of class y % 10 (rows 10 and 11 the next 12 of classes 0 and 1), read as stored;
    the fakes grid takes the reals grid's labels. Vector labels are ordered as NVIDIA sorts them, by the
    reversed tuples."""
    trainer = Trainer(tiny_config(data_dir, grid=12), tmp_path)
    trainer.manager.close()
    table = read_labels(trainer.dataset_path)
    classes = np.argmax(table.rows[table.image_rows], axis=1)
    idx = trainer.grid_images()
    np.testing.assert_array_equal(classes[idx], np.repeat(np.arange(12) % 10, 12).reshape(12, 12))
    assert all(len(set(row)) == 12 for row in idx) and not set(idx[0]) & set(idx[10]) and not set(idx[1]) & set(idx[11])
    _, c = trainer.grid_inputs()
    np.testing.assert_array_equal(c, table.rows[table.image_rows[idx.ravel()]])
    stored = np.concatenate([b["image"] for b in make_iterator(trainer.dataset_path, batch_size=256, shuffle=False,
                                                               num_epochs=1, drop_remainder=False)])
    np.testing.assert_array_equal(trainer.grid_reals(), stored[idx.ravel()])

    rows = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 2.0]], np.float32)  # reversed: (1, 0), (0, 1), (2, 1)
    trainer.label_table = LabelTable(rows=rows, image_rows=np.array([0, 1, 2, 2, 1, 0, 1], np.int32))
    np.testing.assert_array_equal(trainer.label_table.image_rows[trainer.grid_images()[:, 0]], [1, 0, 2] * 4)
