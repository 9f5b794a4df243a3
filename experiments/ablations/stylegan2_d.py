"""StyleGAN2 ladder, config D: + path-length regularisation (Table 1 "D + Path length regularization"; FFHQ
FID 4.34). NVIDIA's ``config-d``: ``G_logistic_ns_pathreg`` (weight 2, batch shrink 2, decay 0.01), lazily
every 4 G steps.
"""

from pathlib import Path

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("stylegan2_c.py")))
    c.name = "stylegan2_d"
    c.pl_weight, c.pl_batch_shrink, c.pl_decay = 2.0, 2, 0.01
    return c
