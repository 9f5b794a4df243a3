"""What every rung of the StyleGAN2 ladder shares (NVlabs/stylegan2 ``run_training.py`` and
``training/training_loop.py`` defaults, FFHQ 1024 on 8 GPUs): FFHQ 1024x1024 with x-flip (NVIDIA's README
trains FFHQ with ``--mirror-augment=true``); global minibatch 32 in per-GPU minibatches of 4; lr 0.002; Adam
betas (0, 0.99), eps 1e-8 (TensorFlow's form); non-saturating logistic loss with R1 gamma 10; lazy intervals
G 4 / D 16 (used from rung C); style mixing 0.9; G_ema half-life 10 kimg; 25000 kimg; fid50k at snapshots (here
``fid50k_full``); A-D's growing tables (``growing.*``, used while ``growing.initial_resolution`` is set):
minibatch {8: 256, 16: 128, 32: 64, 64: 32} in per-GPU minibatches {8: 32, 16: 16, 32: 8, 64: 4}, lr {128:
0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}, 600 + 600 kimg per resolution; ticks of {8: 28, 16: 24, 32: 20,
64: 16, 128: 12, 256: 8, 512: 6, 1024: 4} kimg and a snapshot every 10 ticks (``run_training.py``). Rungs:
``stylegan2_a`` ... ``stylegan2_f``.
"""

from stylegan_jax.training.config import ffhq1024_ladder

#: training_loop.py's tick_kimg_dict: kimg per tick at each training resolution (4 at full resolution).
STYLEGAN2_TICKS = ((8, 28.0), (16, 24.0), (32, 20.0), (64, 16.0), (128, 12.0), (256, 8.0), (512, 6.0), (1024, 4.0))


def get_config():
    c = ffhq1024_ladder(0.002, ((8, 256), (16, 128), (32, 64), (64, 32)), ((8, 32), (16, 16), (32, 8), (64, 4)))
    c.kimg = 25000.0
    c.loss, c.r1_gamma = "nonsaturating", 10.0
    c.G_reg_interval, c.D_reg_interval = 4, 16
    c.style_mixing_prob = 0.9
    c.tick, c.tick_by_resolution = 4.0, STYLEGAN2_TICKS
    c.snap = 10  # run_training.py's image and network snapshot ticks
    c.minibatch_repeats = 4  # training_loop.py: the schedule and ticks once per 4 minibatches
    c.adam_epsilon_hat = True  # dnnlib.tflib.Optimizer: tf.train.AdamOptimizer
    c.skip_nonfinite_updates = True  # dnnlib.tflib.Optimizer: tf.cond(grad_ok, apply, no_op)
    c.grid_noise = "random"  # the snapshot grids' Gs.run(is_validation=True): randomize_noise
    c.real_labels_for_d_fakes = True  # loss.py's D_logistic_r1: G(latents, labels) with the reals' labels
    return c
