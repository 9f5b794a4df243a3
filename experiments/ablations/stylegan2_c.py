"""StyleGAN2 ladder, config C: + lazy regularisation (Table 1 "C + Lazy regularization"; FFHQ FID 4.38).
NVIDIA's ``config-c``: R1 as a separate phase every 16 D steps with its loss scaled by 16, Adam's lr and betas
scaled by 16/17 for D and 4/5 for G (``lazy_regularization=True``); still no PL.
"""

from pathlib import Path

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("stylegan2_b.py")))
    c.name = "stylegan2_c"
    c.lazy_regularization = True
    return c
