"""Class-conditional StyleGAN2 on scikit-learn's built-in digits (32x32 grayscale, 10 classes): the
quickstart's net with labels into G's mapping and D's projection, and the full StyleGAN2 loss (path length,
mixing, lr 0.0025, which the quickstart drops for its short run), 20 kimg."""

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment("quickstart")
    c.name = "digits"
    c.dataset = "digits"
    c.conditional = True
    c.c_dim = 10  # classes (checked against the dataset's labels)
    c.xflip = False
    c.kimg = 20.0
    c.snap = 5
    c.G_lr = c.D_lr = 0.0025
    c.pl_weight = 2.0
    c.style_mixing_prob = 0.9
    return c
