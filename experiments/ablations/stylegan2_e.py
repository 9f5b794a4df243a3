"""StyleGAN2 ladder, config E: + no growing, new G and D architectures (Table 1 "E + No growing, new G & D
arch."; FFHQ FID 3.31). NVIDIA's ``config-e``: ``G_main`` with the skip synthesis and ``D_stylegan2`` with the
residual D (``model='stylegan2'``), trained at full resolution from the start with lr 0.002, minibatch 32 in
per-GPU minibatches of 4, R1 gamma 100, fmap_base 8192 (``channel_base`` 16384 in the PyTorch-era
convention), float32 throughout (the TF code has no mixed precision).
"""

from pathlib import Path

from stylegan_jax.training.config import load_experiment, stylegan2_defaults


def get_config():
    c = load_experiment(str(Path(__file__).with_name("stylegan2_d.py")))
    c.name = "stylegan2_e"
    c.model = "stylegan2"
    c.G, c.D = stylegan2_defaults().G, stylegan2_defaults().D
    for net in (c.G, c.D):
        net.update(channel_base=16384, channel_max=512, num_fp16_res=0)
        net.conv_clamp = None
    c.G.architecture, c.D.architecture = "skip", "resnet"
    c.growing.update(initial_resolution=0, batch_size=(), batch_gpu=(), G_lr=(), D_lr=())
    c.G_lr = c.D_lr = 0.002
    c.r1_gamma = 100.0
    return c
