"""Quickstart: StyleGAN2 on the 100 built-in LFW faces (32x32 grayscale), minutes on 2 CPU cores.

The net and losses of ../shared/anchors' NVIDIA reference run: z/w 128, mapping 2, channel_base 4096,
channel_max 128, batch 16, R1 gamma 0.0128, path length and mixing on, lr 0.0025, EMA 5 kimg with ramp-up
0.05, x-flip; float32 (bfloat16 gives nothing on CPU).
"""

from stylegan_jax.training.config import stylegan2_defaults


def get_config():
    c = stylegan2_defaults()
    c.name = "quickstart"
    c.dataset = "lfw-faces"
    c.resolution = 32
    c.img_channels = 1
    c.xflip = True
    c.batch_size = 16
    c.kimg = 5.0
    c.tick = 1.0
    c.snap = 2
    c.G.update(z_dim=128, w_dim=128, mapping_layers=2, channel_base=4096, channel_max=128, num_fp16_res=0)
    c.G.conv_clamp = None
    c.D.update(channel_base=4096, channel_max=128, num_fp16_res=0, mbstd_group_size=4)
    c.D.conv_clamp = None
    c.G_lr = c.D_lr = 0.0025
    c.r1_gamma = 0.0128
    c.ema_kimg = 5.0
    c.ema_rampup = 0.05
    return c
