"""The Gaussian blur StyleGAN3-R applies to every image its discriminator sees early in training (NVIDIA's
``StyleGAN2Loss.run_D``), with a traced sigma, so that fading it out never recompiles."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def gaussian_blur(images: jax.Array, sigma: jax.Array | float, max_sigma: float) -> jax.Array:
    """Blur NHWC ``images`` with NVIDIA's separable kernel ``2 ** -(x / sigma) ** 2`` over the integers
    ``|x| <= floor(3 sigma)``, normalised to sum 1, zero padding (output the input's size); unchanged when
    ``floor(3 sigma)`` is 0.

    ``sigma`` may be traced (0 <= sigma <= ``max_sigma``): the kernel has the static size of ``max_sigma``'s,
    its taps beyond ``floor(3 sigma)`` zero, and the blur is skipped at run time once sigma is below 1/3.
    """
    radius = math.floor(max_sigma * 3)
    if radius < 1:
        return images
    sigma = jnp.asarray(sigma, jnp.float32)
    x = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    size = jnp.floor(sigma * 3)
    taps = jnp.where(jnp.abs(x) <= size, jnp.exp2(-jnp.square(x / jnp.maximum(sigma, 1e-8))), 0.0)
    taps = taps / jnp.sum(taps)

    def blur(images):
        channels = images.shape[-1]
        kernel = taps.astype(images.dtype)
        dims = ("NHWC", "HWIO", "NHWC")
        for shape in ((2 * radius + 1, 1, 1, channels), (1, 2 * radius + 1, 1, channels)):
            k = jnp.broadcast_to(kernel.reshape(shape[:2] + (1, 1)), shape)
            pad = ((shape[0] // 2,) * 2, (shape[1] // 2,) * 2)
            images = jax.lax.conv_general_dilated(images, k, (1, 1), pad, dimension_numbers=dims,
                                                  feature_group_count=channels,
                                                  precision=jax.lax.Precision.HIGHEST)
        return images

    return jax.lax.cond(size > 0, blur, lambda images: images, images)
