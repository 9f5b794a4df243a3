"""StyleGAN1 ladder, rung C: + mapping network and styles (Table 1 "C + Add mapping and styles"; FFHQ FID
4.85). NVIDIA's ``-add-mapping-and-styles``: ``G_style`` defaults (8-layer mapping, lr multiplier 0.01, AdaIN
with instance norm) except ``const_input_layer=False, use_noise=False``, style mixing 0; loss and schedule as
rung B.
"""

from pathlib import Path

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("stylegan1_b.py")))
    c.name = "stylegan1_c"
    c.G.update(use_styles=True, use_pixel_norm=False, use_instance_norm=True, mapping_layers=8)
    return c
