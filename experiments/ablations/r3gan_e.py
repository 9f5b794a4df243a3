"""R3GAN roadmap, config E: ConvNeXt-ify part 2 (Table 2 "Config E": + ResNeXt-ify G & D, FID 7.507; + inverted
bottleneck, FID 7.045; G 23.058M / D 23.010M parameters): R3GAN's final networks, its FFHQ-256 preset (stages
of 768 channels at 4x4 to 32x32, 384, 192, 96 above; grouped 3x3 convs of 16 channels per group; blocks
expanding 2x), still trained with the roadmap's settings (not the final recipe's schedules: ``r3gan_ffhq256``).
"""

from pathlib import Path

from stylegan_jax.models.r3gan import preset
from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment(str(Path(__file__).with_name("r3gan_d.py")))
    c.name = "r3gan_e"
    c.G, c.D = preset("FFHQ-256")
    return c
