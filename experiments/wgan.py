"""WGAN (Arjovsky et al. 2017) on the built-in digits: the ``gan`` networks with a critic (no sigmoid),
the Wasserstein loss, weight clipping to [-0.01, 0.01], RMSProp lr 5e-5, n_critic 5 (each critic step on a
new real batch), batch 64, as the paper's Algorithm 1.

Departure: the paper's reference code also runs 100 critic steps for the first 25 and every 500th G step;
here n_critic is constant.
"""

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment("gan")
    c.name = "wgan"
    c.loss = "wgan"
    c.optimizer = "rmsprop"
    c.G_lr = c.D_lr = 5e-5
    c.wgan_clip = 0.01
    c.n_critic = 5
    c.batch_size = 64
    return c
