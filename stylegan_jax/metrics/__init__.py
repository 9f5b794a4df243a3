"""Quality metrics: FID, KID, precision/recall, PPL, IS (NVIDIA's definitions and detectors) and PGGAN's SWD.

    from stylegan_jax.metrics import calc_metric, append_result
    result = calc_metric("fid50k_full", G=G, G_vars=G_ema, dataset=path)   # {"results": {...}, ...}
    append_result(run_dir, result, snapshot)                                # metric-fid50k_full.jsonl

The detectors (NVIDIA's TorchScript files) are read from the detector directory: see
`stylegan_jax.metrics.detectors`. SWD needs none.
"""

from stylegan_jax.metrics.detectors import DETECTOR_DIR_ENV, DetectorError, load_inception, load_vgg16
from stylegan_jax.metrics.distances import FeatureStats, frechet_distance
from stylegan_jax.metrics.metric_main import METRICS, MetricError, append_result, calc_metric, has_result

__all__ = ["DETECTOR_DIR_ENV", "METRICS", "DetectorError", "FeatureStats", "MetricError", "append_result",
           "calc_metric", "frechet_distance", "has_result", "load_inception", "load_vgg16"]
