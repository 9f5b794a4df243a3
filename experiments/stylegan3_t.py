"""StyleGAN3-T (translation equivariant; NVIDIA's ``--cfg=stylegan3-t``) on FFHQ-U at 256x256 with the settings
of NVIDIA's stylegan3 docs/configs.md for that resolution: batch 32, R1 gamma 2; x-flip (its guidelines' advice
for FFHQ); G lr 0.0025, D lr 0.002, Adam betas (0, 0.99); mapping 2; no style mixing and no path-length
regularisation, hence no lazy G regularisation (G's Adam lr and betas are not scaled, unlike StyleGAN2's); EMA
batch * 10 / 32 = 10 kimg with ramp-up 0.05; StyleGAN2's D; G's magnitude EMAs with beta 0.5 ** (batch / 20000);
25000 kimg; ADA (bgc, target 0.6), as NVIDIA's train.py augments by default.

Data: ``python -m stylegan_jax.dataset_tool --source ffhq-unaligned/ --dest <data_dir>/ffhqu256 --resolution
256``. ``--config.tiny=True`` trains a CPU-size network on the built-in digits.
"""

from stylegan_jax.training.config import lineage_defaults


def get_config():
    c = lineage_defaults("stylegan3")
    c.name = "stylegan3_t"
    c.dataset = "ffhqu256"
    c.resolution = 256
    c.xflip = True
    c.batch_size = 32
    c.kimg = 25000.0
    c.G_lr, c.D_lr = 0.0025, 0.002
    c.r1_gamma = 2.0
    c.pl_weight = 0.0
    c.style_mixing_prob = 0.0
    c.G_reg_interval = 0  # NVIDIA's None: no G regularisation phase, G's Adam unscaled
    c.ema_kimg = None  # NVIDIA's batch * 10 / 32, from the run's batch (config.BATCH_DERIVED)
    c.ema_rampup = 0.05
    c.aug = "ada"
    c.metrics = ("fid50k_full",)
    return c
