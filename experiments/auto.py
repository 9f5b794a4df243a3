"""NVIDIA's ``--cfg=auto`` (stylegan2-ada-pytorch train.py), the preset for your own data:
``python -m stylegan_jax.train --experiment auto --config.dataset=mydata``.

The resolution and the image channels are the dataset's, as NVIDIA's train.py takes them (``--config.resolution``
or ``--config.img_channels`` given stays; `resolve_auto`). From the resolution ``res`` and the device count
(NVIDIA's GPUs), at the start of the run: batch ``max(min(devices * min(4096 // res, 32), 64), devices)`` split
evenly over the devices, mbstd group ``min(batch // devices, 4)``, channel_base 32768 if res >= 512 else 16384,
lr 0.002 if res >= 1024 else 0.0025, R1 gamma ``0.0002 * res^2 / batch``, EMA ``batch * 10 / 32`` kimg with
ramp-up 0.05; mapping 2, the 4 highest resolutions in reduced precision with clamp 256, 25000 kimg; ADA on the
bgc pipe (NVIDIA's default). Any of these given on the command line (``--config.batch_size=32``) stays;
``--dry-run`` shows the resolved values (without the dataset when ``--config.resolution`` is given).
"""

from stylegan_jax.training.config import stylegan2_defaults


def get_config():
    c = stylegan2_defaults()
    c.name = "auto"
    c.dataset = ""  # your dataset: --config.dataset=NAME or PATH
    c.resolution = c.img_channels = None  # the dataset's (NVIDIA's training_set.resolution, num_channels)
    c.auto = True
    c.batch_size = c.batch_gpu = c.G_lr = c.D_lr = c.r1_gamma = c.ema_kimg = None
    c.G.channel_base = c.D.channel_base = c.D.mbstd_group_size = None
    c.ema_rampup = 0.05
    c.G.mapping_layers = 2
    c.kimg = 25000.0
    c.aug = "ada"
    c.metrics = ("fid50k_full",)  # NVIDIA's train.py default for every --cfg
    return c
