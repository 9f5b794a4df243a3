"""Float64 NumPy forward passes of NVIDIA's Inception-v3 and VGG16 detectors, written from their TorchScript
structure (NCHW torch weights read by their state_dict names), for comparing against the Flax modules.

`Weights` hands out tensors by name; built without a state dict it creates random ones on first use, so
one reference forward pass defines the state dict of a small random test detector (channels // div).
"""

import numpy as np


class Weights:
    def __init__(self, state: dict | None = None, seed: int = 0):
        self.state = {} if state is None else state
        self.create = state is None
        self.rng = np.random.default_rng(seed)

    def __call__(self, name: str, shape: tuple, kind: str = "weight") -> np.ndarray:
        if name not in self.state:
            assert self.create, f"missing tensor {name}"
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            self.state[name] = {
                "weight": lambda: self.rng.standard_normal(shape) * np.sqrt(2 / fan_in),
                "small": lambda: self.rng.standard_normal(shape) * 0.1,
                "var": lambda: self.rng.uniform(0.5, 1.5, shape),
                "positive": lambda: self.rng.uniform(0.0, 1.0, shape),
            }[kind]().astype(np.float32)
        return self.state[name].astype(np.float64)


def conv(x, w, stride=1, pad=(0, 0)):
    """NHWC float64 correlation with a torch OIHW weight."""
    x = np.pad(x, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1]), (0, 0)))
    _, _, kh, kw = w.shape
    oh, ow = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[0]))
    for dy in range(kh):
        for dx in range(kw):
            patch = x[:, dy: dy + stride * (oh - 1) + 1: stride, dx: dx + stride * (ow - 1) + 1: stride]
            out += patch @ w[:, :, dy, dx].T
    return out


def max_pool(x, k, stride, pad=0):
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-np.inf)
    oh, ow = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    return np.max([x[:, dy: dy + stride * (oh - 1) + 1: stride, dx: dx + stride * (ow - 1) + 1: stride]
                   for dy in range(k) for dx in range(k)], axis=0)


def avg_pool_exclude_pad(x):
    """3x3 stride 1 padding 1, count_include_pad=False (TensorFlow SAME)."""
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ones = np.pad(np.ones(x.shape[1:3]), 1)
    h, w = x.shape[1:3]
    total = sum(xp[:, dy: dy + h, dx: dx + w] for dy in range(3) for dx in range(3))
    count = sum(ones[dy: dy + h, dx: dx + w] for dy in range(3) for dx in range(3))
    return total / count[None, :, :, None]


def resize_grid_sample(x, size):
    """NVIDIA's resize: affine_grid (align_corners=False) with theta[:, 2] += 1/in - 1/size, then bilinear
    grid_sample with border padding."""
    def coords(n_in):
        g = (2 * np.arange(size) + 1) / size - 1 + (1 / n_in - 1 / size)
        pos = np.clip(((g + 1) * n_in - 1) / 2, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), pos - lo

    (y0, y1, fy), (x0, x1, fx) = coords(x.shape[1]), coords(x.shape[2])
    fy, fx = fy[None, :, None, None], fx[None, None, :, None]
    top = x[:, y0][:, :, x0] * (1 - fx) + x[:, y0][:, :, x1] * fx
    bottom = x[:, y1][:, :, x0] * (1 - fx) + x[:, y1][:, :, x1] * fx
    return top * (1 - fy) + bottom * fy


def inception_ref(W: Weights, images: np.ndarray, div: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, H, W, 3] -> (pool3 features [N, 2048 // div], softmax of the bias-free head [N, classes])."""

    def cbr(name, x, n, k=(1, 1), s=1, p=(0, 0)):
        n //= div
        w = W(f"{name}.weight", (n, x.shape[3], *k))
        y = conv(x, w, s, p)
        mean, var = W(f"{name}.mean", (n,), "small"), W(f"{name}.var", (n,), "var")
        return np.maximum((y - mean) / np.sqrt(var + 1e-3) + W(f"{name}.beta", (n,), "small"), 0)

    def block_a(name, x, pool_features):
        t = cbr(f"{name}.tower.conv_1", cbr(f"{name}.tower.conv", x, 48), 64, (5, 5), p=(2, 2))
        t1 = cbr(f"{name}.tower_1.conv", x, 64)
        t1 = cbr(f"{name}.tower_1.conv_1", t1, 96, (3, 3), p=(1, 1))
        t1 = cbr(f"{name}.tower_1.conv_2", t1, 96, (3, 3), p=(1, 1))
        t2 = cbr(f"{name}.tower_2.conv", avg_pool_exclude_pad(x), pool_features)
        return np.concatenate([cbr(f"{name}.conv", x, 64), t, t1, t2], axis=3)

    def block_b(name, x):
        t = cbr(f"{name}.tower.conv_1", cbr(f"{name}.tower.conv", x, 64), 96, (3, 3), p=(1, 1))
        t = cbr(f"{name}.tower.conv_2", t, 96, (3, 3), s=2)
        return np.concatenate([cbr(f"{name}.conv", x, 384, (3, 3), s=2), t, max_pool(x, 3, 2)], axis=3)

    def block_c(name, x, c7):
        t = cbr(f"{name}.tower.conv", x, c7)
        t = cbr(f"{name}.tower.conv_2", cbr(f"{name}.tower.conv_1", t, c7, (1, 7), p=(0, 3)), 192, (7, 1), p=(3, 0))
        u = cbr(f"{name}.tower_1.conv", x, c7)
        for i, (k, p) in enumerate([((7, 1), (3, 0)), ((1, 7), (0, 3)), ((7, 1), (3, 0))]):
            u = cbr(f"{name}.tower_1.conv_{i + 1}", u, c7, k, p=p)
        u = cbr(f"{name}.tower_1.conv_4", u, 192, (1, 7), p=(0, 3))
        v = cbr(f"{name}.tower_2.conv", avg_pool_exclude_pad(x), 192)
        return np.concatenate([cbr(f"{name}.conv", x, 192), t, u, v], axis=3)

    def block_d(name, x):
        t = cbr(f"{name}.tower.conv_1", cbr(f"{name}.tower.conv", x, 192), 320, (3, 3), s=2)
        u = cbr(f"{name}.tower_1.conv_1", cbr(f"{name}.tower_1.conv", x, 192), 192, (1, 7), p=(0, 3))
        u = cbr(f"{name}.tower_1.conv_3", cbr(f"{name}.tower_1.conv_2", u, 192, (7, 1), p=(3, 0)), 192, (3, 3), s=2)
        return np.concatenate([t, u, max_pool(x, 3, 2)], axis=3)

    def block_e(name, x, pool):
        a = cbr(f"{name}.tower_conv", x, 384)
        b = cbr(f"{name}.tower_1_conv_1", cbr(f"{name}.tower_1_conv", x, 448), 384, (3, 3), p=(1, 1))
        pooled = avg_pool_exclude_pad(x) if pool == "avg" else max_pool(x, 3, 1, 1)
        return np.concatenate([
            cbr(f"{name}.conv", x, 320),
            cbr(f"{name}.tower_mixed_conv", a, 384, (1, 3), p=(0, 1)),
            cbr(f"{name}.tower_mixed_conv_1", a, 384, (3, 1), p=(1, 0)),
            cbr(f"{name}.tower_1_mixed_conv", b, 384, (1, 3), p=(0, 1)),
            cbr(f"{name}.tower_1_mixed_conv_1", b, 384, (3, 1), p=(1, 0)),
            cbr(f"{name}.tower_2_conv", pooled, 192),
        ], axis=3)

    x = (resize_grid_sample(images.astype(np.float64), 299) - 128) / 128
    x = cbr("layers.conv", x, 32, (3, 3), s=2)
    x = cbr("layers.conv_1", x, 32, (3, 3))
    x = max_pool(cbr("layers.conv_2", x, 64, (3, 3), p=(1, 1)), 3, 2)
    x = max_pool(cbr("layers.conv_4", cbr("layers.conv_3", x, 80), 192, (3, 3)), 3, 2)
    x = block_a("layers.mixed_2", block_a("layers.mixed_1", block_a("layers.mixed", x, 32), 64), 64)
    x = block_b("layers.mixed_3", x)
    for i, c7 in enumerate([128, 160, 160, 192]):
        x = block_c(f"layers.mixed_{4 + i}", x, c7)
    x = block_e("layers.mixed_10", block_e("layers.mixed_9", block_d("layers.mixed_8", x), "avg"), "max")
    assert x.shape[1:3] == (8, 8)
    features = x.mean(axis=(1, 2))
    W("output.bias", (num_classes,), "small")
    logits = features @ W("output.weight", (num_classes, features.shape[1])).T
    probs = np.exp(logits - logits.max(1, keepdims=True))
    return features, probs / probs.sum(1, keepdims=True)


VGG_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _vgg_convs(W: Weights, x: np.ndarray, div: int):
    """Normalised input -> (pool5, [relu1_2, relu2_2, relu3_3, relu4_3, relu5_3])."""
    taps = []
    for i, n in enumerate(VGG_CHANNELS, start=1):
        w = W(f"layers.conv{i}.weight", (n // div, x.shape[3], 3, 3))
        x = np.maximum(conv(x, w, 1, (1, 1)) + W(f"layers.conv{i}.bias", (n // div,), "small"), 0)
        if i in (2, 4, 7, 10, 13):
            taps.append(x)
            x = max_pool(x, 2, 2)
    return x, taps


def vgg_features_ref(W: Weights, images: np.ndarray, div: int) -> np.ndarray:
    """[N, H, W, 3] in [0, 255] -> ReLU(fc2) [N, 4096 // div] after NVIDIA's 224x224 resize."""
    x = (resize_grid_sample(images.astype(np.float64), 224) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    pool5, _ = _vgg_convs(W, x, div)
    x = pool5.transpose(0, 3, 1, 2).reshape(len(x), -1)
    for name in ("fc1", "fc2"):
        w = W(f"layers.{name}.weight", (4096 // div, x.shape[1]))
        x = np.maximum(x @ w.T + W(f"layers.{name}.bias", (4096 // div,), "small"), 0)
    return x


def lpips_ref(W: Weights, img0: np.ndarray, img1: np.ndarray, div: int) -> np.ndarray:
    """LPIPS (Zhang et al.) between [N, H, W, 3] images in [0, 255]: sum over layers of the spatial mean of the
    channel-weighted squared difference of unit-normalised features."""
    def taps(images):
        return _vgg_convs(W, (images / 255 - IMAGENET_MEAN) / IMAGENET_STD, div)[1]

    total = 0
    for i, (f0, f1) in enumerate(zip(taps(img0), taps(img1), strict=True)):
        n0 = f0 / (np.sqrt((f0 ** 2).sum(3, keepdims=True)) + 1e-10)
        n1 = f1 / (np.sqrt((f1 ** 2).sum(3, keepdims=True)) + 1e-10)
        total = total + ((n0 - n1) ** 2 @ W(f"lpips{i}", (f0.shape[3], 1, 1), "positive").reshape(-1)).mean(axis=(1, 2))
    return total
