"""Class-conditional CIFAR-10 (32x32) with NVIDIA's ``cifar`` preset: batch 64 (32 per GPU), mbstd group 32,
channel_base 32768, lr 0.0025, R1 gamma 0.01, EMA 500 kimg with ramp-up 0.05, mapping 2, no path-length
regularisation, no style mixing, D architecture orig, 100000 kimg.

Data: ``python -m stylegan_jax.dataset_tool --source cifar-10-python.tar.gz --dest <data_dir>/cifar10`` (CIFAR-10's
python version, with its class labels, as NVIDIA's dataset_tool reads it).

Augmented with ADA (the bgc pipe, target 0.6), as NVIDIA's train.py augments every preset by default;
``--aug noaug`` trains without (the runs before ADA existed).
"""

from stylegan_jax.training.config import stylegan2_defaults


def get_config():
    c = stylegan2_defaults()
    c.name = "cifar10"
    c.dataset = "cifar10"
    c.resolution = 32
    c.conditional = True
    c.c_dim = 10  # classes (checked against the dataset's labels)
    c.batch_size = 64
    c.batch_gpu = 32
    c.kimg = 100000.0
    c.G.update(channel_base=32768, mapping_layers=2)
    c.D.update(channel_base=32768, mbstd_group_size=32, architecture="orig")
    c.G_lr = c.D_lr = 0.0025
    c.r1_gamma = 0.01
    c.pl_weight = 0.0
    c.style_mixing_prob = 0.0
    c.ema_kimg = 500.0
    c.ema_rampup = 0.05
    c.aug = "ada"
    c.metrics = ("fid50k_full",)  # NVIDIA's train.py default for every --cfg
    return c
