"""Quickstart: StyleGAN2 on the 100 built-in LFW faces (32x32 grayscale), 8 kimg, sized for minutes on 2 CPU
cores (time and results against NVIDIA's reference run: docs/performance.md, "Quickstart").

The net of NVIDIA's 10-minute reference run: z/w 128, mapping 2, channel_base 4096, channel_max 128,
batch 16, R1 gamma 0.0128, EMA 5 kimg with ramp-up 0.05, x-flip; float32 (bfloat16 brings no speed-up on CPU).
Chosen for a short run, departing from that reference: lr 0.005 instead of 0.0025, and no path-length
regularisation or style mixing (both slow the first kimg down; they matter for long runs). ``digits`` and
the training tests restore the reference losses.
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
    c.kimg = 8.0
    c.tick = 1.0
    c.snap = 2
    c.G.update(z_dim=128, w_dim=128, mapping_layers=2, channel_base=4096, channel_max=128, num_fp16_res=0)
    c.G.conv_clamp = None
    c.D.update(channel_base=4096, channel_max=128, num_fp16_res=0, mbstd_group_size=4)
    c.D.conv_clamp = None
    c.G_lr = c.D_lr = 0.005
    c.pl_weight = 0.0
    c.style_mixing_prob = 0.0
    c.r1_gamma = 0.0128
    c.ema_kimg = 5.0
    c.ema_rampup = 0.05
    return c
