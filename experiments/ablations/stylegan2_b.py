"""StyleGAN2 ladder, config B: + weight demodulation (Table 1 "B + Weight demodulation"; FFHQ FID 4.39).
NVIDIA's ``config-b``: ``G_main`` with ``G_synthesis_stylegan_revised`` (the paper's Fig. 2d: modulated and
demodulated convs, bias and noise outside the style block, no instance norm) and ``D_stylegan`` (the StyleGAN
D on StyleGAN2's layers), fmap_base 8192 (``model='stylegan2_revised'``); still growing, non-lazy R1, no PL.
"""

from pathlib import Path

from stylegan_jax.training.config import lineage_defaults, load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("stylegan2_a.py")))
    c.name = "stylegan2_b"
    c.model = "stylegan2_revised"
    c.G, c.D = lineage_defaults("stylegan2_revised").G, lineage_defaults("stylegan2_revised").D
    return c
