"""R3GAN roadmap, config A: StyleGAN2 (Table 2 "Config A: StyleGAN2"; FFHQ-256 FID 7.516, G 24.767M / D
24.001M parameters). The paper trains StyleGAN2-ADA's official code at 256 (its ``paper256`` preset: our
``ffhq256`` experiment: batch 64, lr 0.0025, R1 gamma 1, G_ema half-life 20 kimg, ADA) until D has seen 5 M
real images; every later rung inherits its optimiser, batch and EMA unless it says otherwise. Rungs:
``r3gan_a`` ... ``r3gan_e``.
"""

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment("ffhq256")
    c.name = "r3gan_a"
    c.kimg = 5000.0
    return c
