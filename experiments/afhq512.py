"""AFHQ at 512x512 with NVIDIA's ``paper512`` preset (stylegan2-ada-pytorch train.py; the ADA paper's AFHQ and
BreCaHAD runs): batch 64 (8 per GPU), mbstd group 8, channel_base 32768, lr 0.0025, R1 gamma 0.5, EMA 20 kimg
without ramp-up, mapping 8, the 4 highest resolutions in reduced precision with clamp 256, 25000 kimg; x-flip
(``--mirror=1``, our choice for these datasets, not part of the preset).

Data: ``python -m stylegan_jax.dataset_tool --source afhq/train/dog --dest <data_dir>/afhqdog512``; the cats,
the wild animals or BreCaHAD's crops with ``--config.dataset=afhqcat512`` (``afhqwild512``, ``brecahad512``).

Augmented with ADA (the bgc pipe, target 0.6), as NVIDIA's train.py augments every preset by default;
``--aug noaug`` trains without.
"""

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment("ffhq256")  # paper256 but for the widths and gamma
    c.name = "afhq512"
    c.dataset = "afhqdog512"
    c.resolution = 512
    c.G.channel_base = c.D.channel_base = 32768
    c.r1_gamma = 0.5
    return c
