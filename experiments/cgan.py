"""Conditional GAN (Mirza & Osindero 2014) on the built-in digits: the ``gan`` experiment with the class
label embedded and concatenated to z in G, and entering D by projection (Miyato & Koyama 2018;
``--config.D.conditioning=concat`` feeds it as constant image channels instead). The fakes grid has one row
per class (10 x 10).
"""

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment("gan")
    c.name = "cgan"
    c.conditional = True
    c.c_dim = 10  # classes (checked against the dataset's labels)
    c.D.conditioning = "projection"
    c.grid = 10
    return c
