"""AFHQ at 512x512 with NVIDIA's ``paper512`` preset (stylegan2-ada-pytorch train.py; the ADA paper's AFHQ and
BreCaHAD runs): batch 64 (8 per GPU), mbstd group 8, channel_base 32768, lr 0.0025, R1 gamma 0.5, EMA 20 kimg
without ramp-up, mapping 8, the 4 highest resolutions in reduced precision with clamp 256, 25000 kimg, x-flip.

Data: ``python -m stylegan_jax.dataset_tool --source afhq/train/dog --dest <data_dir>/afhqdog512``; the cats,
the wild animals or BreCaHAD's crops with ``--config.dataset=afhqcat512`` (``afhqwild512``, ``brecahad512``).

Augmented with ADA (the bgc pipe, target 0.6), as NVIDIA's train.py augments every preset by default;
``--aug noaug`` trains without.
"""

from stylegan_jax.training.config import stylegan2_defaults


def get_config():
    c = stylegan2_defaults()
    c.name = "afhq512"
    c.dataset = "afhqdog512"
    c.resolution = 512
    c.xflip = True
    c.batch_size = 64
    c.batch_gpu = 8
    c.kimg = 25000.0
    c.G.update(channel_base=32768, mapping_layers=8)
    c.D.update(channel_base=32768, mbstd_group_size=8)
    c.G_lr = c.D_lr = 0.0025
    c.r1_gamma = 0.5
    c.metrics = ("fid50k_full",)
    c.ema_kimg = 20.0
    c.aug = "ada"
    return c
