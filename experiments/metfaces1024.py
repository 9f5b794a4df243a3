"""MetFaces at 1024x1024 by transfer learning from FFHQ, as the ADA paper trains it (stylegan2-ada-pytorch's
train.py's example, ``--cfg=paper1024 --mirror=1 --resume=ffhq1024 --snap=10``): `ffhq1024` with ``paper1024``'s
R1 gamma 2 (its only difference from ``stylegan2``), G, G_ema and D initialised from NVIDIA's FFHQ 1024 network, a
snapshot every 10 ticks. The transfer takes NVIDIA's resume
settings (ADA's p moves over 100 kimg, no EMA ramp-up).

Data: ``python -m stylegan_jax.dataset_tool --source metfaces/images --dest <data_dir>/metfaces1024``.
Weights: nothing is downloaded; put NVIDIA's ``ffhq-res1024-mirror-stylegan2-noaug.pkl`` (the file its name
``ffhq1024`` stands for, from ``https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/
transfer-learning-source-nets/``) in the working directory, or name it with ``--config.resume_from=PATH``.
"""

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment("ffhq1024")
    c.name = "metfaces1024"
    c.dataset = "metfaces1024"
    c.resume_from = "ffhq1024"  # NVIDIA's name: its file in the working directory (training.transfer)
    c.snap = 10
    c.r1_gamma = 2.0  # paper1024's
    return c
