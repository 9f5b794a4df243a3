"""R3GAN roadmap, config B: stripped StyleGAN2 (Table 2 "Config B"; FFHQ-256 FID 12.46, G 18.890M / D 23.996M
parameters): no z normalisation, minibatch stddev, equalised learning rate, mapping network, style injection,
weight (de)modulation or noise (``model='stylegan2_stripped'``, z of 64 dims), and no mixing, path-length or
lazy regularisation (R1 every iteration); lr 5e-5 without equalised lr (the paper's 2.5e-3 -> 5e-5). The
paper states no gamma for the roadmap: A's R1 gamma 1 is kept.
"""

from pathlib import Path

from stylegan_jax.training.config import lineage_defaults, load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("r3gan_a.py")))
    c.name = "r3gan_b"
    c.model = "stylegan2_stripped"
    c.G, c.D = lineage_defaults("stylegan2_stripped").G, lineage_defaults("stylegan2_stripped").D
    c.G_lr = c.D_lr = 5e-5
    c.style_mixing_prob, c.pl_weight = 0.0, 0.0
    c.lazy_regularization, c.G_reg_interval = False, 0
    return c
