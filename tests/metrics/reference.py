"""Float64 NumPy references for the metrics, written from the papers' and NVIDIA's definitions."""

import numpy as np
import scipy.ndimage

GAUSS = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0


def fid_ref(real: np.ndarray, gen: np.ndarray) -> float:
    """FID from raw features via the eigenvalues of sigma_r sigma_g: tr sqrtm(A) = sum sqrt(eig(A))."""
    mu_r, mu_g = real.mean(0), gen.mean(0)
    s_r, s_g = np.cov(real, rowvar=False, bias=True), np.cov(gen, rowvar=False, bias=True)
    eig = np.linalg.eigvals(s_g @ s_r)
    trace_sqrt = np.sqrt(eig.astype(complex)).real.sum()
    return float(np.sum((mu_g - mu_r) ** 2) + np.trace(s_r) + np.trace(s_g) - 2 * trace_sqrt)


def kid_ref(real: np.ndarray, gen: np.ndarray, num_subsets: int, max_subset_size: int, seed: int) -> float:
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, by explicit double loops over the kernel matrices."""
    rng = np.random.RandomState(seed)
    d = real.shape[1]
    m = min(len(real), len(gen), max_subset_size)
    total = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(len(gen), m, replace=False)].astype(np.float64)
        y = real[rng.choice(len(real), m, replace=False)].astype(np.float64)
        k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
        kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
        kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
        kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
        total += (kxx + kyy) / (m * (m - 1)) - 2 * kxy / (m * m)
    return total / num_subsets


def pr_ref(real: np.ndarray, gen: np.ndarray, k: int) -> tuple[float, float]:
    """Brute-force k-NN precision/recall on float16-rounded features, radii rounded to float16."""
    r, g = real.astype(np.float16).astype(np.float64), gen.astype(np.float16).astype(np.float64)

    def cdist(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    def coverage(manifold, probes):
        radii = np.sort(cdist(manifold, manifold), axis=1)[:, k].astype(np.float16)
        return float((cdist(probes, manifold).astype(np.float16) <= radii[None, :]).any(1).mean())

    return coverage(r, g), coverage(g, r)


def _pyr_down(x):
    return scipy.ndimage.convolve(x, GAUSS[None, :, :, None], mode="mirror")[:, ::2, ::2]


def _pyr_up(x):
    n, h, w, c = x.shape
    up = np.zeros((n, 2 * h, 2 * w, c))
    up[:, ::2, ::2] = x
    return scipy.ndimage.convolve(up, GAUSS[None, :, :, None] * 4, mode="mirror")


def swd_ref(real: np.ndarray, fake: np.ndarray, centres: list[np.ndarray], dirs: list[list[np.ndarray]]) -> list:
    """PGGAN's SWD (x1e3 per level) on uint8 NHWC images with given patch centres [N, P, 2] and directions
    (each column normalised here, as PGGAN normalises its random directions)."""
    def descriptors(images):
        pyramid = [images.astype(np.float64)]
        for _ in range(1, len(centres)):
            pyramid.append(_pyr_down(pyramid[-1]))
            pyramid[-2] = pyramid[-2] - _pyr_up(pyramid[-1])
        out = []
        for level, cen in zip(pyramid, centres, strict=True):
            n, p, _ = cen.shape
            d = np.zeros((n, p, level.shape[3], 7, 7))
            for i in range(n):
                for j in range(p):
                    y, x = cen[i, j]
                    d[i, j] = level[i, y - 3: y + 4, x - 3: x + 4].transpose(2, 0, 1)
            d = d.reshape(n * p, level.shape[3], 49)
            d = (d - d.mean(axis=(0, 2), keepdims=True)) / d.std(axis=(0, 2), keepdims=True)
            out.append(d.reshape(n * p, -1))
        return out

    result = []
    for a, b, level_dirs in zip(descriptors(real), descriptors(fake), dirs, strict=True):
        level_dirs = [d / np.sqrt(np.square(np.float64(d)).sum(axis=0, keepdims=True)) for d in level_dirs]
        dists = [np.abs(np.sort(a @ d, axis=0) - np.sort(b @ d, axis=0)).mean() for d in level_dirs]
        result.append(1e3 * np.mean(dists))
    return result
