"""What every rung of the StyleGAN1 ladder shares (NVlabs/stylegan ``train.py``, FFHQ 1024 on 8 GPUs, and its
``training/training_loop.py`` defaults): FFHQ 1024x1024 with x-flip; growing by NVIDIA's schedule (600 kimg to
fade in, 600 to stabilise), global minibatch {4: 512, 8: 256, 16: 128, 32: 64, 64: 32, else 32} split evenly over
8 GPUs (per-GPU batch / 8), lr 0.001 with {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}; TensorFlow's Adam
betas (0, 0.99), eps 1e-8 (eps added before the bias correction); G_ema half-life 10 kimg; optimisers reset at
every fade-in start and end; D steps per G step 1, D's step first with G_ema following G (``training_loop.py``),
then G's; while growing, D's gradient penalties taken at full resolution (its D box-downsamples full-resolution
images); ticks of {4: 160, 8: 140, 16: 120, 32: 100, 64: 80, 128: 60, 256: 40, 512: 30, 1024: 20} kimg, a fakes
grid every tick and a network snapshot every 10; fid50k at snapshots (here ``fid50k_full``). Rungs:
``stylegan1_a`` ... ``stylegan1_f``.
"""

from stylegan_jax.training.config import ffhq1024_ladder

BATCHES = ((4, 512), (8, 256), (16, 128), (32, 64), (64, 32))


def get_config():
    c = ffhq1024_ladder(0.001, BATCHES, tuple((r, b // 8) for r, b in BATCHES))
    c.tick, c.snap, c.image_snap = 160.0, 10, 1  # network_snapshot_ticks, image_snapshot_ticks
    c.d_first = c.ema_before_g_step = True  # D's step with Gs_update_op, then G's (train.py's loop)
    c.minibatch_repeats = 4  # training_loop.py: the schedule and ticks once per 4 minibatches
    c.tick_zero, c.snap_tick_one = False, True  # training_loop.py: ticks from 1, a network snapshot at tick 1 too
    c.adam_epsilon_hat = True  # tfutil.Optimizer: tf.train.AdamOptimizer
    c.skip_nonfinite_updates = True  # tfutil.Optimizer: tf.cond(grad_ok, apply, no_op)
    c.grid_noise = "random"  # the snapshot grids' Gs.run(is_validation=True): randomize_noise
    c.real_labels_for_d_fakes = True  # loss.py's D_logistic_simplegp: G(latents, labels) with the reals' labels
    c.tick_by_resolution = ((4, 160.0), (8, 140.0), (16, 120.0), (32, 100.0), (64, 80.0), (128, 60.0), (256, 40.0),
                            (512, 30.0), (1024, 20.0))  # training_loop.py's tick_kimg_dict
    return c
