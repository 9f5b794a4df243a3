"""Class-conditional StyleGAN2 on scikit-learn's built-in digits (32x32 grayscale, 10 classes): the
quickstart's net and losses with labels into G's mapping and D's projection, 20 kimg."""

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment("quickstart")
    c.name = "digits"
    c.dataset = "digits"
    c.conditional = True
    c.xflip = False
    c.kimg = 20.0
    c.snap = 5
    return c
