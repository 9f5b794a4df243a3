"""StyleGAN3-R (translation and rotation equivariant; NVIDIA's ``--cfg=stylegan3-r``): ``stylegan3_t`` with
NVIDIA's R changes: 1x1 convolutions, twice the widths (channel_base 65536, channel_max 1024), radially
symmetric down filters, and the images D sees blurred (a Gaussian of sigma 10 pixels fading to 0 over the first
batch * 200 / 32 = 200 kimg; ``blur_init_sigma`` 0 when resuming from a pickle, as NVIDIA's).

Departure from the other experiments: XLA:CPU's YNNPACK fusion is off (``cpu_fusion`` False). With it, XLA
merges each layer's radial down filter into the next 1x1 convolution's fusion and materialises every tap's
strided slice at full width: G's forward at 256 (batch 8) needs 42.6 GB of temporaries against 6.5 GB
without, and at 64 runs 1.6x slower (docs/performance.md, "StyleGAN3 (CPU)"). GPUs and TPUs ignore it."""

from stylegan_jax.models.stylegan3 import stylegan3_r_overrides
from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment("stylegan3_t")
    c.name = "stylegan3_r"
    stylegan3_r_overrides(c)
    c.blur_init_sigma = 10.0
    c.blur_fade_kimg = None  # NVIDIA's batch * 200 / 32, from the run's batch (config.BATCH_DERIVED)
    c.cpu_fusion = False
    return c
