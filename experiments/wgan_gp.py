"""WGAN-GP (Gulrajani et al. 2017) on the built-in digits: the ``gan`` networks, the Wasserstein loss with
the gradient penalty lambda 10 on random interpolates of real and fake images, n_critic 5, Adam lr 1e-4,
betas (0, 0.9), batch 64, as the paper's Algorithm 1; the critic uses layer norm instead of batch norm
(the paper: batch norm makes the penalty invalid).
"""

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment("gan")
    c.name = "wgan_gp"
    c.loss = "wgan_gp"
    c.wgan_lambda = 10.0
    c.n_critic = 5
    c.G_lr = c.D_lr = 1e-4
    c.betas = (0.0, 0.9)
    c.batch_size = 64
    c.D.norm = "layer"
    return c
