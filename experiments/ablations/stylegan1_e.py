"""StyleGAN1 ladder, rung E: + noise inputs (Table 1 "E + Add noise inputs"; FFHQ FID 4.42). NVIDIA's
``-add-noise-inputs``: per-pixel noise with learned per-channel strengths (``use_noise=True``); style mixing 0.
"""

from pathlib import Path

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("stylegan1_d.py")))
    c.name = "stylegan1_e"
    c.G.use_noise = True
    return c
