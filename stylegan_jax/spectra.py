"""Average power spectra of square images, as StyleGAN3's ``avg_spectra.py`` computes and draws them.

Each image (uint8) is whitened with the dataset's mean and standard deviation (pixel values, all channels
together), multiplied by a 2-D Kaiser window of unit energy, zero-padded at the bottom and right to ``interp``
times its size, and Fourier transformed; its power spectrum is ``|FFT|^2`` averaged over the channels, and
the average over the images is the result: [S, S] float64 with S = ``interp`` x size, unshifted (the DC
term at [0, 0]), in NVIDIA's ``.npz`` form (``spectrum``, ``image_size``).

Departure: the transforms run in float32 on the device (NVIDIA's in float64); each batch's sum is added up in
float64. The real input's spectrum is symmetric, so only its non-negative frequencies along the width are
transformed (`power_sum`) and the other half is filled in from them (`full_spectrum`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage


def kaiser_window(size: int, beta: float) -> np.ndarray:
    """[size, size] float64: the outer product of the symmetric Kaiser window of shape ``beta`` (NumPy's
    ``kaiser``, which is torch's ``kaiser_window(periodic=False)``) scaled to a sum of squares of 1."""
    w = np.kaiser(size, beta)
    w /= np.sqrt(np.square(w).sum())
    return np.outer(w, w)


def power_sum(images: jax.Array, weights: jax.Array, mean: float, std: float, window: jax.Array,
              spectrum_size: int) -> jax.Array:
    """The weighted sum over images [B, H, W, C] (uint8; H = W = the window's size) of their channel-mean power
    spectra at ``spectrum_size`` (>= H), non-negative width frequencies only: float32 [S, S // 2 + 1].
    ``weights`` [B] (1 for an image, 0 for padding) lets every batch have one shape."""
    x = (images.astype(jnp.float32) - mean) / std * window[None, :, :, None].astype(jnp.float32)
    f = jnp.fft.rfft2(jnp.moveaxis(x, -1, 1), s=(spectrum_size, spectrum_size))  # zero-pads bottom and right
    power = jnp.mean(jnp.square(f.real) + jnp.square(f.imag), axis=1)
    return jnp.tensordot(weights.astype(jnp.float32), power, axes=1)


def full_spectrum(half: np.ndarray) -> np.ndarray:
    """[S, S // 2 + 1] (a real image's power at width frequencies 0..S/2) -> [S, S]: ``P[k, l] = P[-k, -l]``."""
    size = half.shape[0]
    rows = (-np.arange(size)) % size
    cols = size - np.arange(size // 2 + 1, size)
    return np.concatenate([half, half[rows][:, cols]], axis=1)


def heatmap(spectrum: np.ndarray, image_size: int, smooth: float) -> np.ndarray:
    """The spectrum [S, S] in dB (``10 log10``), zero frequency moved to the centre, its first row and column
    repeated after the last (so the map runs from -1/2 to +1/2 cycles per pixel on both ends): [S + 1, S + 1];
    ``smooth`` > 0 blurs it with a Gaussian of ``smooth`` image-resolution bins (edges: nearest)."""
    hmap = np.fft.fftshift(np.log10(spectrum) * 10)
    hmap = np.concatenate([hmap, hmap[:1, :]], axis=0)
    hmap = np.concatenate([hmap, hmap[:, :1]], axis=1)
    if smooth > 0:
        hmap = scipy.ndimage.gaussian_filter(hmap, sigma=spectrum.shape[0] / image_size * smooth, mode="nearest")
    return hmap


class Moments:
    """Running pixel count, sum and sum of squares of uint8 images, exact (integers): the mean and standard
    deviation (``sqrt(E[x^2] - E[x]^2)``) that whiten the images before their spectra are taken."""

    def __init__(self) -> None:
        self.count = self.total = self.squares = 0

    def add(self, images: np.ndarray) -> None:
        """Adds uint8 images of any shape."""
        x = np.asarray(images, np.uint8)
        self.count += x.size
        self.total += int(x.sum(dtype=np.int64))
        self.squares += int(np.square(x, dtype=np.uint32).sum(dtype=np.int64))

    def mean_std(self) -> tuple[float, float]:
        """(mean, standard deviation) of every pixel value added."""
        mean = self.total / self.count
        return mean, float(np.sqrt(max(self.squares / self.count - mean * mean, 0.0)))
