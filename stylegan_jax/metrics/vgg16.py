"""The VGG16 of NVIDIA's metrics (``vgg16.pt``: torchvision's ImageNet VGG16 plus the LPIPS weights of
Zhang et al.) as a Flax module, for precision/recall features and the LPIPS distance of PPL.

Images are float or uint8 [N, H, W, 3] in [0, 255], normalised as torchvision's VGG expects
(``(x / 255 - mean) / std`` with ImageNet's mean and std, which equals LPIPS's own scaling layer).
`features` resizes to 224x224 with TensorFlow 1's bilinear resize (as the Inception detector does), runs the
13 3x3 convolutions (ReLU, 2x2 max pools), flattens pool5 in torch's channel-major order and returns the
ReLU of fc2: [N, 4096]. `lpips_embedding` takes the image at its own size and returns, for the ReLU outputs
conv1_2, conv2_2, conv3_3, conv4_3, conv5_3, each normalised to unit length over channels, scaled by the
square root of its LPIPS channel weight and by 1 / sqrt(H * W), flattened and concatenated: the squared
Euclidean distance of two embeddings is LPIPS. Parameter names are the TorchScript module's
(``layers.conv1.weight`` ... ``layers.conv13``, ``layers.fc1`` ... ``layers.fc3``, ``lpips0`` ... ``lpips4``);
`width_div` divides every channel count, for small test networks.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from stylegan_jax.metrics.inception import HIGHEST, Linear, max_pool, tf1_resize_bilinear

IMAGENET_MEAN = np.float32([0.485, 0.456, 0.406])
IMAGENET_STD = np.float32([0.229, 0.224, 0.225])
#: Output channels of conv1..conv13; a max pool follows the convolutions listed in POOL_AFTER.
CONV_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
POOL_AFTER = (2, 4, 7, 10, 13)
#: LPIPS reads the ReLU outputs of these convolutions (conv1_2, conv2_2, conv3_3, conv4_3, conv5_3).
LPIPS_LAYERS = POOL_AFTER
FC_FEATURES = 4096


class Conv3x3(nn.Module):
    """3x3 convolution, padding 1, with bias (torch OIHW stored as HWIO ``weight``), then ReLU."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.param("weight", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features))
        b = self.param("bias", nn.initializers.normal(0.1), (self.features,))
        y = jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=HIGHEST)
        return jax.nn.relu(y + b)


class VGG16Layers(nn.Module):
    """The convolution stack and the fully connected layers (``conv1``..``conv13``, ``fc1``..``fc3``)."""

    width_div: int = 1
    num_classes: int = 1000

    def setup(self) -> None:
        self.convs = [Conv3x3(n // self.width_div, name=f"conv{i + 1}") for i, n in enumerate(CONV_CHANNELS)]
        self.fc1 = Linear(FC_FEATURES // self.width_div)
        self.fc2 = Linear(FC_FEATURES // self.width_div)
        self.fc3 = Linear(self.num_classes)

    def conv_stack(self, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        """Normalised [N, H, W, 3] -> (pool5 output, the five LPIPS feature maps)."""
        taps = []
        for i, conv in enumerate(self.convs, start=1):
            x = conv(x)
            if i in POOL_AFTER:
                taps.append(x)
                x = max_pool(x, 2, 2)
        return x, taps

    def fc_features(self, pool5: jax.Array) -> jax.Array:
        """pool5 [N, 7, 7, C] -> ReLU(fc2) [N, 4096], flattened channel-major as torch does."""
        x = pool5.transpose(0, 3, 1, 2).reshape(pool5.shape[0], -1)
        return jax.nn.relu(self.fc2(jax.nn.relu(self.fc1(x))))


class VGG16(nn.Module):
    """NVIDIA's VGG16 detector: `features` [N, 4096] for precision/recall, `lpips_embedding` for PPL."""

    width_div: int = 1
    num_classes: int = 1000

    def setup(self) -> None:
        self.layers = VGG16Layers(self.width_div, self.num_classes)
        channels = [CONV_CHANNELS[i - 1] // self.width_div for i in LPIPS_LAYERS]
        self.lpips = [self.param(f"lpips{i}", nn.initializers.uniform(1.0), (c,)) for i, c in enumerate(channels)]

    @staticmethod
    def normalize(images: jax.Array) -> jax.Array:
        return (images.astype(jnp.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD

    def features(self, images: jax.Array) -> jax.Array:
        """[N, H, W, 3] in [0, 255] -> [N, 4096] (resized to 224x224 first)."""
        x = tf1_resize_bilinear(images.astype(jnp.float32), 224)
        pool5, _ = self.layers.conv_stack(self.normalize(x))
        return self.layers.fc_features(pool5)

    def lpips_embedding(self, images: jax.Array) -> jax.Array:
        """[N, H, W, 3] in [0, 255] (no resize) -> [N, D] whose squared distances are LPIPS distances."""
        _, taps = self.layers.conv_stack(self.normalize(images))
        parts = []
        for f, w in zip(taps, self.lpips, strict=True):
            f = f / (jnp.sqrt(jnp.square(f).sum(axis=-1, keepdims=True)) + 1e-10)
            parts.append((f * jnp.sqrt(w) / np.sqrt(f.shape[1] * f.shape[2])).reshape(f.shape[0], -1))
        return jnp.concatenate(parts, axis=1)
