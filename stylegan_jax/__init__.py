"""stylegan_jax: the StyleGAN family in JAX/Flax.

Images are NHWC float32 in [-1, 1]; latents ``z`` are (N, z_dim), labels ``c`` (N, c_dim), ``ws``
(N, num_ws, w_dim).

Importing the package turns on XLA's YNNPACK fusion of convolutions, matmuls and reductions on CPU
(``--xla_cpu_experimental_ynn_fusion_type=dot,reduce``): measured on a 2-core AVX-512 CPU, ``dot`` takes
the G+D forward+backward from 5.5 to 7.0 img/s at 32x32 and from 0.41 to 0.72 img/s at 64x64, and
``reduce`` (bias gradients and other column sums) makes each 64x64 training phase another 5-11% faster
(results equal to float rounding). ``eltwise`` and ``individual_convolution`` were measured slower (D's
step 2.3x and 1.7x). It only takes effect when the package is imported before JAX starts its backends; set
``STYLEGAN_JAX_CPU_YNN=0``, or put your own ``xla_cpu_experimental_ynn_fusion_type`` in ``XLA_FLAGS``, to
opt out. The flag is ignored by GPU and TPU backends.
"""

import os

__version__ = "0.1.0"

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type=dot,reduce"


def _enable_ynn_on_cpu() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if os.environ.get("STYLEGAN_JAX_CPU_YNN", "1") != "0" and "xla_cpu_experimental_ynn_fusion_type" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {YNN_FLAG}".strip()


_enable_ynn_on_cpu()
