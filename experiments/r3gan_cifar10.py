"""R3GAN on class-conditional CIFAR-10 (32x32), its ``CIFAR10`` preset and recipe (brownvc/R3GAN train.py,
README: --batch=512 --mirror=1 --aug=1 --cond=1; the paper's Table 9): 4 stages of 768 channels (96 groups, 2
blocks each), z 64 with a 64-d class embedding, D's projection on 768 dims; gamma 0.05 -> 0.005, G_ema
half-life 0 -> 5000 kimg, augmentation p 0 -> 0.55 over 20 Mimg; 250 Mimg; FID 1.96 (Table 6).

Data: ``python -m stylegan_jax.dataset_tool --source cifar10-images/ --dest <data_dir>/cifar10`` with a
dataset.json of class labels. ``--config.tiny=True`` trains the same recipe, unconditional, on the built-in digits.
"""

from stylegan_jax.training.config import r3gan_recipe


def get_config():
    c = r3gan_recipe("CIFAR10", conditional=True, gamma=(0.05, 0.005), ema_kimg=5000.0, p=0.55)
    c.name = "r3gan_cifar10"
    c.dataset, c.resolution, c.c_dim = "cifar10", 32, 10
    c.batch_size, c.batch_gpu = 512, 64
    c.kimg = 250000.0
    return c
