"""Class-conditional StyleGAN2 on scikit-learn's built-in digits (32x32 grayscale, 10 classes); the
quickstart's small net with labels into G's mapping and D's projection."""

from stylegan_jax.training.config import stylegan2_defaults


def get_config():
    c = stylegan2_defaults()
    c.name = "digits"
    c.dataset = "digits"
    c.resolution = 32
    c.img_channels = 1
    c.conditional = True
    c.batch_size = 16
    c.kimg = 20.0
    c.tick = 1.0
    c.snap = 5
    c.G.update(z_dim=128, w_dim=128, mapping_layers=2, channel_base=4096, channel_max=128, num_fp16_res=0)
    c.G.conv_clamp = None
    c.D.update(channel_base=4096, channel_max=128, num_fp16_res=0, mbstd_group_size=4)
    c.D.conv_clamp = None
    c.G_lr = c.D_lr = 0.0025
    c.r1_gamma = 0.0128
    c.ema_kimg = 5.0
    c.ema_rampup = 0.05
    return c
