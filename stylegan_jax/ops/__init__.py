"""Pure array ops on NHWC images, no parameters: FIR resampling, bias + activation, (modulated) convolution."""

from stylegan_jax.ops.bias_act import ACTIVATIONS, activation_gain, bias_act
from stylegan_jax.ops.conv2d_resample import conv2d_resample
from stylegan_jax.ops.filters import setup_filter
from stylegan_jax.ops.modulated_conv2d import modulated_conv2d
from stylegan_jax.ops.upfirdn2d import downsample2d, filter2d, upfirdn2d, upsample2d

__all__ = [
    "ACTIVATIONS", "activation_gain", "bias_act", "conv2d_resample", "downsample2d", "filter2d",
    "modulated_conv2d", "setup_filter", "upfirdn2d", "upsample2d",
]
