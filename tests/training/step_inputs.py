"""The random inputs a training phase draws, re-derived for reference computations (not imported from
``stylegan_jax.training.steps``, whose ``Phases.latents`` / ``run_G`` define them): the phase's key is
fold_in(fold_in(state.key, state.step), phase index), split into z, the permutation that draws the generated
images' labels from the real batch's, and one key per minibatch; G's noise key is the fourth of that key
split in four (after the style-mixing cutoff, probability and z)."""

import jax
import jax.numpy as jnp
import numpy as np

PHASE_INDEX = {"G_main": 0, "G_reg": 1, "D_main": 2, "D_reg": 3}


def phase_inputs(state, labels, phase: str, batch: int, z_dim: int):
    """(z [K, batch, z_dim] float32, generated labels [K, batch, c_dim], minibatch keys [K]) of a phase, for
    the real labels [K, B, c_dim] of the iteration."""
    labels = np.asarray(labels)
    k, n = labels.shape[0], labels.shape[0] * labels.shape[1]
    key = jax.random.fold_in(jax.random.fold_in(state.key, state.step), PHASE_INDEX[phase])
    k_z, k_c, k_run = jax.random.split(key, 3)
    z = np.asarray(jax.random.normal(k_z, (k, batch, z_dim), jnp.float32))
    c = labels.reshape(n, -1)[np.asarray(jax.random.permutation(k_c, n))].reshape(labels.shape)[:, :batch]
    return z, c, jax.random.split(k_run, k)


def noise_key(minibatch_key):
    """G's noise key in a phase's minibatch (``run_G``)."""
    return jax.random.split(minibatch_key, 4)[3]
