"""StyleGAN1 ladder, rung A: the Progressive GAN baseline (Karras et al. 2019, Table 1 "A Baseline Progressive
GAN"; FFHQ FID 8.04). NVIDIA's ``pgan`` config of NVlabs/stylegan ``train.py`` (``preset-v2-8gpus``, fp32):

- networks: ``G_paper`` / ``D_paper`` (``model='pggan'``: pixel norm, equalised lr, minibatch stddev group 4,
  nearest up / box down, fmap_base 8192, fmap_max 512, z 512);
- loss: WGAN-GP (``G_wgan``, ``D_wgan_gp``: lambda 10, target 1, epsilon-drift 0.001), one D step per G step;
- growing from 4x4, 600 + 600 kimg per resolution; minibatch {4: 512, 8: 256, 16: 128, 32: 64, 64: 32,
  else 32}, lr 0.001 / {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}; TensorFlow's Adam (0, 0.99, 1e-8);
  G_ema 10 kimg;
  optimisers reset per fade-in; x-flip; 12000 kimg.

Run: ``python -m stylegan_jax.train --experiment ablations/stylegan1_a`` (``--config.dataset=NAME`` for other
data, ``--config.tiny=True`` on CPU).
"""

from pathlib import Path

from stylegan_jax.training.config import lineage_defaults, load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("_stylegan1_base.py")))
    c.name = "stylegan1_a"
    c.model = "pggan"
    c.G, c.D = lineage_defaults("pggan").G, lineage_defaults("pggan").D
    c.loss, c.wgan_lambda, c.epsilon_drift = "wgan_gp", 10.0, 0.001
    c.r1_gamma = c.pl_weight = c.style_mixing_prob = 0.0
    c.lazy_regularization = False
    c.growing.initial_resolution = 4
    c.kimg = 12000.0
    return c
