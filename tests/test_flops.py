import jax
import jax.numpy as jnp
import pytest

from benchmarks.flops import generator_gflops, xla_gflops
from stylegan_jax.models.stylegan2 import Generator


def test_xla_gflops_of_a_convolution_is_its_multiply_adds_times_two():
    """A 3x3 'same' convolution, batch 2, 8x8, 16 -> 32 channels: 2 * N * C_in * C_out multiply-adds per kernel
    tap that meets the input (XLA does not count the taps on the zero padding: 22 of 24 per row)."""
    x, w = jnp.ones((2, 8, 8, 16)), jnp.ones((3, 3, 16, 32))
    conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                             dimension_numbers=("NHWC", "HWIO", "NHWC")))
    taps_per_row = sum(0 <= i + k < 8 for i in range(8) for k in (-1, 0, 1))
    assert xla_gflops(conv, x, w) * 1e9 == pytest.approx(2 * 2 * 16 * 32 * taps_per_row**2, rel=1e-3)


def test_xla_gflops_of_stylegan2s_generator_agrees_with_nvidias_count():
    """Two independent counts of one G forward per image: XLA's of our program, and NVIDIA's multiply-adds of
    its convolutions and dense layers (benchmarks/flops.py). XLA's also counts the elementwise work and the FIR
    filters, which NVIDIA's leaves out, and leaves out the taps on the zero padding, which NVIDIA's counts."""
    res, channel_base, channel_max, batch = 32, 4096, 128, 4
    G = Generator(z_dim=128, c_dim=0, w_dim=128, img_resolution=res, img_channels=3,
                  mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=channel_base, channel_max=channel_max))
    z, c = jnp.ones((batch, 128)), jnp.zeros((batch, 0))
    variables = jax.eval_shape(G.init, jax.random.key(0), z, c)
    forward = jax.jit(lambda v, z: G.apply(v, z, c, rngs={"noise": jax.random.key(1)}))
    ours = xla_gflops(forward, variables, z) / batch
    nvidia = generator_gflops(res, 3, 128, 128, 2, channel_base, channel_max)
    assert ours == pytest.approx(nvidia, rel=0.1)
