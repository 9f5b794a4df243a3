"""FFHQ at 1024x1024 with NVIDIA's ``stylegan2`` preset (stylegan2-ada-pytorch's ``--cfg=stylegan2``, StyleGAN2's
config F, with which NVIDIA trained its FFHQ 1024 network, ``--mirror=1``): batch 32 (4 per GPU), mbstd group 4,
channel_base 32768, lr 0.002, R1 gamma 10, EMA 10 kimg without ramp-up, mapping 8, 4 reduced-precision
resolutions with clamp 256, 25000 kimg, x-flip. (``paper1024``, gamma 2, is NVIDIA's MetFaces preset:
`metfaces1024`.)

Augmented with ADA (the bgc pipe, target 0.6), as NVIDIA's train.py augments every preset by default;
``--aug noaug`` trains without (the runs before ADA existed).
"""

from stylegan_jax.training.config import stylegan2_defaults


def get_config():
    c = stylegan2_defaults()
    c.name = "ffhq1024"
    c.dataset = "ffhq1024"
    c.resolution = 1024
    c.xflip = True
    c.batch_size = 32
    c.batch_gpu = 4
    c.kimg = 25000.0
    c.G.update(channel_base=32768, mapping_layers=8)
    c.D.update(channel_base=32768, mbstd_group_size=4)
    c.G_lr = c.D_lr = 0.002
    c.r1_gamma = 10.0
    c.metrics = ("fid50k_full",)
    c.ema_kimg = 10.0
    c.aug = "ada"
    return c
