"""StyleGAN2 ladder, config A: the StyleGAN baseline (Karras et al. 2020, Table 1 "A Baseline StyleGAN"; FFHQ
FID 4.40). NVIDIA's ``config-a``:

- networks: the original StyleGAN ``G_style`` / ``D_basic`` (``model='stylegan1'``, its defaults: mapping 8,
  AdaIN, noise, constant input, blur, fmap_base 8192, mbstd 4), style mixing 0.9;
- growing from 8x8 (600 + 600 kimg per resolution), lr 0.001 / {128: 0.0015, 256: 0.002, 512: 0.003,
  1024: 0.003}, minibatch {8: 256, 16: 128, 32: 64, 64: 32, else 32} in per-GPU minibatches {8: 32, 16: 16,
  32: 8, 64: 4, else 4}; optimisers reset per fade-in;
- loss: non-saturating logistic (``G_logistic_ns``) and R1 gamma 10 in every D step (``lazy_regularization =
  False``: no separate phase, no Adam scaling); no path-length regularisation.

Run: ``python -m stylegan_jax.train --experiment ablations/stylegan2_a`` (``--config.dataset=NAME`` for other
data, ``--config.tiny=True`` on CPU).
"""

from pathlib import Path

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("_stylegan2_base.py")))
    c.name = "stylegan2_a"
    c.G_lr = c.D_lr = 0.001
    c.lazy_regularization = False
    c.pl_weight = 0.0
    c.growing.initial_resolution = 8
    return c
