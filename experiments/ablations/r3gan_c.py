"""R3GAN roadmap, config C: the well-behaved loss (Table 2 "Config C": + RpGAN loss, FID 11.77; + R2
gradient penalty, FID 11.65): B's networks trained with the relativistic pairing loss and zero-centred R1 on
the reals and R2 on the fakes under one gamma, ``(gamma / 2) * (R1 + R2)``, D's step before G's, each on its
own real batch (R3GAN's ``Trainer.py``).
"""

from pathlib import Path

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("r3gan_b.py")))
    c.name = "r3gan_c"
    c.loss, c.r2_gamma = "rpgan", None  # R2 weighted by r1_gamma
    c.d_first = True
    return c
