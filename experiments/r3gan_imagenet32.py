"""R3GAN on class-conditional ImageNet 32x32, its ``ImageNet-32`` preset and recipe (brownvc/R3GAN train.py,
README: --gpus=32 --batch=4096 --mirror=1 --aug=1 --cond=1): 4 stages of 1536 channels (96 groups, 2 blocks
each), z 64 with a 64-d class embedding, D's projection on 1536 dims; gamma 0.5 -> 0.05, G_ema half-life 0 -> 50
Mimg, augmentation p 0 -> 0.5 over 200 Mimg. R3GAN's README command gives no --kimg: its train.py runs 10 Gimg
(until stopped), as here.

Data: ``python -m stylegan_jax.dataset_tool --source imagenet-32x32/ --dest <data_dir>/imagenet32`` with a
dataset.json of the 1000 class labels.
"""

from stylegan_jax.training.config import r3gan_recipe


def get_config():
    c = r3gan_recipe("ImageNet-32", conditional=True, gamma=(0.5, 0.05), ema_kimg=50000.0, p=0.5, decay_kimg=200000.0)
    c.name = "r3gan_imagenet32"
    c.dataset, c.resolution, c.c_dim = "imagenet32", 32, 1000
    c.batch_size, c.batch_gpu = 4096, 128
    c.kimg = 10000000.0
    return c
