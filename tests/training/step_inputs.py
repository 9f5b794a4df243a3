"""The random inputs a training phase draws, re-derived for reference computations (not imported from
``stylegan_jax.training.steps``, whose ``Phases.latents`` / ``run_G`` define them): the phase's key is
fold_in(fold_in(state.key, state.step), phase index), split into z, the indices of the training images whose
labels the generated images take (uniform, with replacement, into the training set sorted by label) and one key
per minibatch; G's noise key is the fourth of that key split in four (after the style-mixing cutoff, probability
and z)."""

import jax
import jax.numpy as jnp
import numpy as np

PHASE_INDEX = {"G_main": 0, "G_reg": 1, "D_main": 2, "D_reg": 3}


def phase_inputs(state, labels, phase: str, batch: int, z_dim: int, training_labels=None):
    """(z [K, batch, z_dim] float32, generated labels [K, batch, c_dim], minibatch keys [K]) of a phase, for
    the real labels [K, B, c_dim] of the iteration and every training image's label ``training_labels`` [N,
    c_dim] (``stylegan_jax.data.read_labels``; None: the reals' own, as under a pairing objective or when
    unconditional)."""
    labels = np.asarray(labels)
    k = labels.shape[0]
    key = jax.random.fold_in(jax.random.fold_in(state.key, state.step), PHASE_INDEX[phase])
    k_z, k_c, k_run = jax.random.split(key, 3)
    z = np.asarray(jax.random.normal(k_z, (k, batch, z_dim), jnp.float32))
    if training_labels is None:
        return z, labels[:, :batch], jax.random.split(k_run, k)
    by_label = training_labels[np.lexsort(training_labels.T[::-1])]  # rows in lexicographic order
    c = by_label[np.asarray(jax.random.randint(k_c, (k, batch), 0, len(by_label)))]
    return z, c, jax.random.split(k_run, k)


def training_labels(trainer):
    """Every image's label [N, c_dim] of ``trainer``'s training set (its subset's), or None when unconditional."""
    from stylegan_jax.data import read_labels

    if not trainer.c_dim:
        return None
    table = read_labels(trainer.dataset_path, **trainer.subset)
    return table.rows[table.image_rows]


def noise_key(minibatch_key):
    """G's noise key in a phase's minibatch (``run_G``)."""
    return jax.random.split(minibatch_key, 4)[3]
