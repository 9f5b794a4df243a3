"""Quality metrics: FID, KID, precision/recall, PPL, IS and SWD, as NVIDIA computes them."""

from stylegan_jax.metrics.distances import FeatureStats, frechet_distance

__all__ = ["FeatureStats", "frechet_distance"]
