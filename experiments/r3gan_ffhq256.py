"""R3GAN on FFHQ 256x256, its ``FFHQ-256`` preset and recipe (brownvc/R3GAN train.py, README: --batch=256
--mirror=1 --aug=1; the paper's Table 9): stages of 768, 768, 768, 768, 384, 192, 96 channels from 4x4 up (96,
96, 96, 96, 48, 24, 12 groups; 2 blocks each), z 64; gamma 150 -> 15, G_ema half-life 0 -> 500 kimg,
augmentation p 0 -> 0.3 over 20 Mimg; 200 Mimg; FID 2.75 (Table 4; StyleGAN2 3.78).

Data: ``python -m stylegan_jax.dataset_tool --source ffhq-images/ --dest <data_dir>/ffhq256 --resolution 256``.
"""

from stylegan_jax.training.config import r3gan_recipe


def get_config():
    c = r3gan_recipe("FFHQ-256", conditional=False, gamma=(150.0, 15.0), ema_kimg=500.0, p=0.3)
    c.name = "r3gan_ffhq256"
    c.dataset, c.resolution = "ffhq256", 256
    c.batch_size, c.batch_gpu = 256, 32
    c.kimg = 200000.0
    return c
