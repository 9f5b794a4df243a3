"""R3GAN on FFHQ 64x64, its ``FFHQ-64`` preset and recipe (brownvc/R3GAN train.py, README: --batch=256
--mirror=1 --aug=1; the paper's Table 9): stages of 768, 768, 768, 768, 384 channels from 4x4 up (96, 96, 96,
96, 48 groups; 2 blocks each), z 64; gamma 2 -> 0.2, G_ema half-life 0 -> 500 kimg, augmentation p 0 -> 0.3
over 20 Mimg; 100 Mimg; FID 1.95 (Table 5).

Data: ``python -m stylegan_jax.dataset_tool --source ffhq-images/ --dest <data_dir>/ffhq64 --resolution 64``.
"""

from stylegan_jax.training.config import r3gan_recipe


def get_config():
    c = r3gan_recipe("FFHQ-64", conditional=False, gamma=(2.0, 0.2), ema_kimg=500.0, p=0.3)
    c.name = "r3gan_ffhq64"
    c.dataset, c.resolution = "ffhq64", 64
    c.batch_size, c.batch_gpu = 256, 32
    c.kimg = 100000.0
    return c
