"""stylegan_jax: the StyleGAN family in JAX/Flax.

Images are NHWC float32 in [-1, 1]; latents ``z`` are (N, z_dim), labels ``c`` (N, c_dim), ``ws``
(N, num_ws, w_dim). See DESIGN.md for the layout.
"""

__version__ = "0.1.0"
