"""StyleGAN2 ladder, config F: + large networks (Table 1 "F + Large networks"; FFHQ FID 2.84), NVIDIA's
default ``config-f``: fmap_base 16384 (``channel_base`` 32768) in G and D, and R1 gamma 10 again
(``run_training.py`` sets gamma 100 only for the ``config-e*`` ids); otherwise as config E.
"""

from pathlib import Path

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("stylegan2_e.py")))
    c.name = "stylegan2_f"
    c.G.channel_base = c.D.channel_base = 32768
    c.r1_gamma = 10.0
    return c
