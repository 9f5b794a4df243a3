"""stylegan_jax: the StyleGAN family in JAX/Flax.

Images are NHWC float32 in [-1, 1]; latents ``z`` are (N, z_dim), labels ``c`` (N, c_dim), ``ws``
(N, num_ws, w_dim). Importing the package changes nothing in the process: runs choose their XLA flags with
`stylegan_jax.runtime.configure_runtime`.
"""

__version__ = "0.1.0"
