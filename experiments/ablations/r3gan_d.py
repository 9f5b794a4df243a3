"""R3GAN roadmap, config D: ConvNeXt-ify part 1 (Table 2 "Config D": + ResNet-ify G & D, FID 10.17; - output
skips, FID 9.950; G 23.378M / D 23.282M parameters): R3GAN's symmetric networks (``model='r3gan'``) with
plain 1-3-1 bottleneck residual blocks: each stage a transition (bilinear resampling and a 1x1 conv) and two
blocks; stems 3x config A's widths (1536 channels at 4x4 to 32x32, 768, 384, 192 above) compressed 4x in the
3x3 conv (``expansion_factor`` 0.25, one group), fix-up initialisation, no output skips.
"""

from pathlib import Path

from stylegan_jax.training.config import lineage_defaults, load_experiment

WIDTHS = (1536, 1536, 1536, 1536, 768, 384, 192)  # 4x4 up to 256x256: 3x StyleGAN2's channel_base 16384 widths


def get_config():
    c = load_experiment(str(Path(__file__).with_name("r3gan_c.py")))
    c.name = "r3gan_d"
    c.model = "r3gan"
    c.G, c.D = lineage_defaults("r3gan").G, lineage_defaults("r3gan").D
    c.G.update(width_per_stage=WIDTHS, cardinality_per_stage=(1,) * 7, blocks_per_stage=(2,) * 7,
               expansion_factor=0.25)
    c.D.update(width_per_stage=WIDTHS[::-1], cardinality_per_stage=(1,) * 7, blocks_per_stage=(2,) * 7,
               expansion_factor=0.25)
    return c
