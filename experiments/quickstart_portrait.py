"""Quickstart in portrait: the quickstart's net and recipe on the built-in ``lfw-faces-portrait`` (the same 100
LFW faces as 24x32 (W x H) grayscale portraits, no letterbox), 8 kimg on 2 CPU cores.

W x H networks (stylegan_jax.image_size): G's constant and first block are 4x3 (H x W), each block doubles
both sides (4x3 -> 8x6 -> 16x12 -> 32x24), D ends on 4x3 with its minibatch-stddev; the blocks, names and
widths are those of the square 32x32 quickstart (only the constant, the noise buffers and D's dense layer
differ in shape).
"""

from stylegan_jax.training.config import load_experiment


def get_config():
    c = load_experiment("quickstart")
    c.name = "quickstart_portrait"
    c.dataset = "lfw-faces-portrait"
    c.resolution = "24x32"
    return c
