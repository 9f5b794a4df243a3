"""The metric formulas on feature arrays, as NVIDIA's stylegan2-ada-pytorch ``metrics/`` computes them.

Everything here takes features already extracted (NumPy, one row per image) and returns Python floats:
the Frechet distance (FID), the kernel distance (KID), precision/recall by k-NN manifolds (PR), the
Inception score (IS) and the percentile-trimmed mean of path lengths (PPL). `FeatureStats` accumulates
features batch by batch, in float64 for the mean and covariance, as NVIDIA's ``FeatureStats`` does.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from stylegan_jax.atomic import atomic_write


class FeatureStats:
    """Features of up to ``max_items`` images: all rows (``capture_all``) and/or float64 sums for the mean
    and the (biased, 1/N) covariance (``capture_mean_cov``)."""

    def __init__(self, capture_all: bool = False, capture_mean_cov: bool = False, max_items: int | None = None):
        self.capture_all, self.capture_mean_cov, self.max_items = capture_all, capture_mean_cov, max_items
        self.num_items = 0
        self.features: list[np.ndarray] = []
        self.raw_mean: np.ndarray | None = None
        self.raw_cov: np.ndarray | None = None

    def is_full(self) -> bool:
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, x: np.ndarray) -> None:
        """Adds rows ``x`` [n, D] (cast to float32 as NVIDIA does), dropping rows beyond ``max_items``."""
        x = np.asarray(x, np.float32)
        if self.max_items is not None:
            x = x[: max(self.max_items - self.num_items, 0)]
        if not len(x):
            return
        self.num_items += len(x)
        if self.capture_all:
            self.features.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            if self.raw_mean is None:
                self.raw_mean = np.zeros(x.shape[1], np.float64)
                self.raw_cov = np.zeros((x.shape[1], x.shape[1]), np.float64)
            self.raw_mean += x64.sum(axis=0)
            self.raw_cov += x64.T @ x64

    def get_all(self) -> np.ndarray:
        """All rows [num_items, D] float32."""
        return np.concatenate(self.features) if self.features else np.zeros((0, 0), np.float32)

    def get_mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean [D], covariance [D, D]) in float64, the covariance normalised by N as NVIDIA's."""
        mean = self.raw_mean / self.num_items
        return mean, self.raw_cov / self.num_items - np.outer(mean, mean)

    def save(self, path: str | os.PathLike) -> None:
        """Writes an .npz at ``path``, whole or not at all (`atomic_write`)."""
        arrays = {"num_items": np.int64(self.num_items)}
        if self.capture_all:
            arrays["features"] = self.get_all()
        if self.capture_mean_cov:
            arrays["raw_mean"], arrays["raw_cov"] = self.raw_mean, self.raw_cov
        with atomic_write(path) as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        """Reads what `save` wrote."""
        with np.load(path) as data:
            stats = cls(capture_all="features" in data, capture_mean_cov="raw_mean" in data)
            stats.num_items = int(data["num_items"])
            if stats.capture_all:
                stats.features = [data["features"]]
            if stats.capture_mean_cov:
                stats.raw_mean, stats.raw_cov = data["raw_mean"], data["raw_cov"]
        return stats


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2) (means [D], covariances [D, D]):
    ``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))`` in float64 with SciPy's ``sqrtm``,
    the real part taken as NVIDIA does."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    m = np.square(mu1 - mu2).sum()
    s = scipy.linalg.sqrtm(sigma1 @ sigma2)
    return float(np.real(m + np.trace(sigma1 + sigma2 - s * 2)))


def kernel_distance(real: np.ndarray, gen: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000,
                    seed: int = 0) -> float:
    """KID: the unbiased MMD^2 with the cubic polynomial kernel ``(x.y / D + 1)^3``, averaged over
    ``num_subsets`` random subsets of m = min(len(real), len(gen), max_subset_size) rows of each set
    (drawn without replacement, generated first, from ``np.random.RandomState(seed)``). real [Nr, D],
    gen [Ng, D]."""
    rng = np.random.RandomState(seed)
    real, gen = np.asarray(real, np.float64), np.asarray(gen, np.float64)
    n = real.shape[1]
    m = min(len(real), len(gen), max_subset_size)
    t = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(len(gen), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(t / num_subsets / m)


@jax.jit
def _distances(rows: jax.Array, cols: jax.Array) -> jax.Array:
    """Euclidean distances [R, C] between float16 rows [R, D] and cols [C, D], computed in float32."""
    rows, cols = rows.astype(jnp.float32), cols.astype(jnp.float32)
    sq = (rows * rows).sum(1)[:, None] + (cols * cols).sum(1)[None, :] - 2 * jnp.matmul(
        rows, cols.T, precision=jax.lax.Precision.HIGHEST)
    return jnp.sqrt(jnp.maximum(sq, 0))


def kth_smallest(x: jax.Array, k: int) -> jax.Array:
    """The k-th smallest value of each row of [R, C], repeated values counted (torch's ``kthvalue``): [R].

    k - 1 passes that each set one minimum per row to +inf, then a row minimum. For NVIDIA's k = 4 over 50,000
    columns this is 17x faster on the CPU than ``lax.top_k`` (docs/performance.md) and a few reductions on
    an accelerator."""
    rows = jnp.arange(x.shape[0])
    for _ in range(k - 1):
        x = x.at[rows, jnp.argmin(x, axis=1)].set(jnp.inf)
    return x.min(axis=1)


@functools.partial(jax.jit, static_argnames="k")
def _kth_distance(rows: jax.Array, cols: jax.Array, k: int) -> jax.Array:
    """The k-th smallest distance from each row to ``cols`` (counting the row itself when it is among them),
    as float16 [R]."""
    return kth_smallest(_distances(rows, cols), k).astype(jnp.float16)


@jax.jit
def _covered(rows: jax.Array, cols: jax.Array, radii: jax.Array) -> jax.Array:
    """Whether each row lies within the float16 radius of some col: bool [R]."""
    return (_distances(rows, cols).astype(jnp.float16) <= radii[None, :]).any(axis=1)


def _row_batches(x: np.ndarray, row_batch: int):
    """``x`` in row batches of ``row_batch`` (the last padded by repeating row 0) and the valid counts."""
    for start in range(0, len(x), row_batch):
        part = x[start: start + row_batch]
        yield np.concatenate([part, np.repeat(x[:1], row_batch - len(part), axis=0)]), len(part)


def precision_recall(real: np.ndarray, gen: np.ndarray, nhood_size: int = 3, row_batch: int = 1024
                     ) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al.) as NVIDIA computes them: features cast to float16,
    each manifold point's radius the distance to its (nhood_size + 1)-th nearest manifold point (itself
    counted), kept in float16; precision = fraction of generated points inside the real manifold, recall =
    fraction of real points inside the generated one. real [Nr, D], gen [Ng, D]."""
    real16, gen16 = np.asarray(real, np.float16), np.asarray(gen, np.float16)
    results = []
    for manifold, probes in ((real16, gen16), (gen16, real16)):
        cols = jnp.asarray(manifold)
        radii = jnp.concatenate([_kth_distance(rows, cols, nhood_size + 1)[:n]
                                 for rows, n in _row_batches(manifold, row_batch)])
        hits = np.concatenate([np.asarray(_covered(rows, cols, radii))[:n]
                               for rows, n in _row_batches(probes, row_batch)])
        results.append(float(hits.astype(np.float32).mean()))
    return results[0], results[1]


def inception_score(probs: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
    """IS: mean and std over ``num_splits`` consecutive splits of exp(E[KL(p(y|x) || p(y))]); probs
    [N, classes] (softmax outputs)."""
    probs = np.asarray(probs, np.float64)
    n = len(probs)
    scores = []
    for i in range(num_splits):
        part = probs[i * n // num_splits: (i + 1) * n // num_splits]
        kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
    return float(np.mean(scores)), float(np.std(scores))


def trimmed_path_length(dist: np.ndarray) -> float:
    """PPL from per-sample path lengths [N]: the mean of those between the 1st percentile (interpolation
    'lower') and the 99th ('higher'), as NVIDIA drops outliers."""
    dist = np.asarray(dist, np.float64)
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(np.extract(np.logical_and(dist >= lo, dist <= hi), dist).mean())
