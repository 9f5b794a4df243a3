"""StyleGAN1 ladder, rung B: the tuned baseline (Table 1 "B + Tuning (incl. bilinear up/down)"; FFHQ FID 5.25).
NVIDIA's ``-tuned-baseline`` flags on ``G_style`` / ``D_basic``:

- G: ``use_styles=False, use_pixel_norm=True, use_instance_norm=False, mapping_layers=0,
  const_input_layer=False, use_noise=False``, no truncation, style mixing 0; D_basic; the [1, 2, 1] blur after
  every upsampling and before every downsampling ("bilinear");
- loss (FFHQ): non-saturating logistic with R1 gamma 10 in every D step (``D_logistic_simplegp``; no lazy
  regularisation), no drift;
- growing from 8x8 (``lod_initial_resolution=8``), 25000 kimg; the rest as rung A.
"""

from pathlib import Path

from stylegan_jax.training.config import lineage_defaults, load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("stylegan1_a.py")))
    c.name = "stylegan1_b"
    c.model = "stylegan1"
    c.G, c.D = lineage_defaults("stylegan1").G, lineage_defaults("stylegan1").D
    c.G.update(use_styles=False, use_pixel_norm=True, use_instance_norm=False, mapping_layers=0,
               const_input_layer=False, use_noise=False)
    c.loss, c.r1_gamma, c.epsilon_drift = "nonsaturating", 10.0, 0.0
    c.growing.initial_resolution = 8
    c.kimg = 25000.0
    return c
