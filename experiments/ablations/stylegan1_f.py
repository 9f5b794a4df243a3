"""StyleGAN1 ladder, rung F: + mixing regularisation (Table 1 "F + Mixing regularization"; FFHQ FID 4.40),
NVIDIA's default StyleGAN config: style mixing with probability 0.9 at a random crossover among the layers
in use. NVIDIA generates with truncation psi 0.7 on the first 8 ws (the stylegan1 family's ``truncation``).
"""

from pathlib import Path

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("stylegan1_e.py")))
    c.name = "stylegan1_f"
    c.style_mixing_prob = 0.9
    return c
