"""FFHQ at 256x256 with NVIDIA's ``paper256`` preset (stylegan2-ada-pytorch train.py): batch 64 (8 per GPU),
mbstd group 8, channel_base 16384, lr 0.0025, R1 gamma 1, EMA 20 kimg without ramp-up, mapping 8, the 4
highest resolutions in reduced precision with clamp 256, 25000 kimg; x-flip (``--mirror=1``, not part of the
preset: NVIDIA's FFHQ 256 networks were trained with it, ``ffhq-res256-mirror-paper256-noaug.pkl``).

Data: ``python -m stylegan_jax.dataset_tool --source ffhq-images/ --dest <data_dir>/ffhq256 --resolution 256``.

Augmented with ADA (the bgc pipe, target 0.6), as NVIDIA's train.py augments every preset by default;
``--aug noaug`` trains without (the runs before ADA existed).
"""

from stylegan_jax.training.config import stylegan2_defaults


def get_config():
    c = stylegan2_defaults()
    c.name = "ffhq256"
    c.dataset = "ffhq256"
    c.resolution = 256
    c.xflip = True
    c.batch_size = 64
    c.batch_gpu = 8
    c.kimg = 25000.0
    c.G.update(channel_base=16384, mapping_layers=8)
    c.D.update(channel_base=16384, mbstd_group_size=8)
    c.G_lr = c.D_lr = 0.0025
    c.r1_gamma = 1.0
    c.metrics = ("fid50k_full",)
    c.ema_kimg = 20.0
    c.aug = "ada"
    return c
