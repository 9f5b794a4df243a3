"""What every rung of the StyleGAN1 ladder shares (NVlabs/stylegan ``train.py``, FFHQ 1024 on 8 GPUs, and its
``training/training_loop.py`` defaults): FFHQ 1024x1024 with x-flip; growing by NVIDIA's schedule (600 kimg
to fade in, 600 to stabilise), global minibatch {4: 512, 8: 256, 16: 128, 32: 64, 64: 32, else 32} split
evenly over 8 GPUs (per-GPU batch / 8), lr 0.001 with {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003};
Adam betas (0, 0.99), eps 1e-8; G_ema half-life 10 kimg; optimisers reset at every fade-in start and end;
D steps per G step 1; fid50k at snapshots (here ``fid50k_full``). Rungs: ``stylegan1_a`` ... ``stylegan1_f``.
"""

from stylegan_jax.training.config import lineage_defaults

BATCHES = ((4, 512), (8, 256), (16, 128), (32, 64), (64, 32))
LRS = ((128, 0.0015), (256, 0.002), (512, 0.003), (1024, 0.003))


def get_config():
    c = lineage_defaults("stylegan1")
    c.dataset = "ffhq1024"
    c.resolution = 1024
    c.xflip = True
    c.batch_size, c.batch_gpu = 32, 4
    c.G_lr = c.D_lr = 0.001
    c.betas, c.eps = (0.0, 0.99), 1e-8
    c.ema_kimg = 10.0
    c.tick, c.snap = 160.0, 10
    c.growing.update(training_kimg=600.0, transition_kimg=600.0, batch_size=BATCHES,
                     batch_gpu=tuple((r, b // 8) for r, b in BATCHES), G_lr=LRS, D_lr=LRS, reset_optimizer=True)
    c.metrics = ("fid50k_full",)
    return c
