"""PGGAN (Karras et al. 2018) as NVIDIA's progressive_growing_of_gans ``config.py`` trains it on CelebA-HQ 1024x1024
(``preset-v2-8gpus``, fp32): G_paper / D_paper; WGAN-GP with one critic step per G step (lambda 10, target 1, the
gradient taken at full resolution while growing) and epsilon-drift 0.001; D's step first, G_ema following G with
it, then G's (``train.py``'s loop); TensorFlow's Adam lr 0.001, betas (0, 0.99), eps 1e-8 (eps added before the
bias correction); growing from 4x4, 600 kimg to fade each resolution in and 600 to stabilise it (the paper: 800 +
800), the optimisers reset whenever a fade-in starts or ends; global minibatch {4: 512, 8: 256, 16: 128, 32: 64,
64: 32, else 32} in per-GPU minibatches of batch / 8; lr {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003, else
0.001}; G_ema with a fixed beta 0.999 per iteration; x-flip; 12000 kimg; ticks of {4: 160, 8: 140, 16: 120, 32:
100, 64: 80, 128: 60, 256: 40, 512: 20, 1024: 10} kimg, a fakes grid every tick and a network snapshot every 10.

Data: ``python -m stylegan_jax.dataset_tool --source celeba-hq-images/ --dest <data_dir>/celebahq``; any other
dataset with ``--config.dataset=NAME --config.resolution=R --config.img_channels=C``; a CPU-size run with
``--config.tiny=True``.

Departures: NVIDIA's D_paper adds an auxiliary classifier when labelled (unused here: CelebA-HQ has none).
"""

from stylegan_jax.training.config import lineage_defaults


def get_config():
    c = lineage_defaults("pggan")
    c.name = "pggan"
    c.dataset = "celebahq"
    c.resolution = 1024
    c.xflip = True
    c.kimg = 12000.0
    c.tick = 160.0
    c.tick_by_resolution = ((4, 160.0), (8, 140.0), (16, 120.0), (32, 100.0), (64, 80.0), (128, 60.0), (256, 40.0),
                            (512, 20.0), (1024, 10.0))  # train.py's tick_kimg_dict
    c.snap, c.image_snap = 10, 1  # train.py's network_snapshot_ticks, image_snapshot_ticks
    c.d_first = c.ema_before_g_step = True  # D's step with Gs_update_op, then G's (train.py's loop)
    c.minibatch_repeats = 4  # train.py: the schedule and ticks once per 4 minibatches
    c.tick_zero = False  # train.py: ticks from 1
    c.adam_epsilon_hat = True  # tfutil.Optimizer: tf.train.AdamOptimizer
    c.skip_nonfinite_updates = True  # tfutil.Optimizer: tf.cond(grad_ok, apply, no_op)
    c.real_labels_for_d_fakes = True  # loss.py's D_wgangp_acgan: G(latents, labels) with the reals' labels
    c.loss = "wgan_gp"
    c.wgan_lambda = 10.0
    c.epsilon_drift = 0.001
    c.n_critic = 1
    c.r1_gamma = c.pl_weight = c.style_mixing_prob = 0.0
    c.lazy_regularization = False
    c.G_lr = c.D_lr = 0.001
    c.betas = (0.0, 0.99)
    c.eps = 1e-8
    c.ema_beta = 0.999
    c.batch_size, c.batch_gpu = 32, 4
    batches = ((4, 512), (8, 256), (16, 128), (32, 64), (64, 32))
    c.growing.update(
        initial_resolution=4, training_kimg=600.0, transition_kimg=600.0, batch_size=batches,
        batch_gpu=tuple((r, b // 8) for r, b in batches),
        G_lr=((128, 0.0015), (256, 0.002), (512, 0.003), (1024, 0.003)),
        D_lr=((128, 0.0015), (256, 0.002), (512, 0.003), (1024, 0.003)),
        reset_optimizer=True,
    )
    return c
