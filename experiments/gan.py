"""GAN: DCGAN (Radford et al. 2016) on the built-in digits (32x32 gray), the small generator of the
introductory text: a 100-d noise vector, dense to 256x4x4, then upsampling + convolutions 256 -> 128 -> 64 ->
1 channel (batch norm, ReLU, tanh), against the mirrored D (strided convs 64 -> 128 -> 256, batch norm,
leaky ReLU 0.2). The non-saturating loss (``--config.loss=minimax`` for the original minimax game), Adam lr
2e-4, betas (0.5, 0.999), batch 128, weights N(0, 0.02), as the DCGAN paper. No G_ema, no regularisers.
"""

from stylegan_jax.training.config import lineage_defaults


def get_config():
    c = lineage_defaults("dcgan")
    c.name = "gan"
    c.dataset = "digits"
    c.resolution = 32
    c.img_channels = 1
    c.batch_size = 128
    c.kimg = 200.0
    c.tick = 10.0
    c.snap = 5
    c.loss = "nonsaturating"
    c.G_lr = c.D_lr = 2e-4
    c.betas = (0.5, 0.999)
    c.r1_gamma = c.pl_weight = c.style_mixing_prob = 0.0
    c.lazy_regularization = False  # no regularisers, so Adam as given (no lazy lr / beta scaling)
    c.ema_kimg = 0.0  # G_ema = G
    return c
