"""StyleGAN1 ladder, rung D: + remove the traditional input (Table 1 "D + Remove traditional input"; FFHQ
FID 4.88). NVIDIA's ``-remove-traditional-input``: the learned 4x4 constant (``const_input_layer=True``); still
``use_noise=False``, style mixing 0.
"""

from pathlib import Path

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("stylegan1_c.py")))
    c.name = "stylegan1_d"
    c.G.const_input_layer = True
    return c
