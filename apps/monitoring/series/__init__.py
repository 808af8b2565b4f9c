"""Metric series per endpoint and deployment, per minute, hour and day:
``rollup`` keeps them up to date from the prediction log, ``query`` reads
them, ``buckets`` (no Django) holds the fixed histogram edges and quantiles,
``prometheus`` renders them for ``/metrics``."""

from apps.monitoring.series.query import METRICS, metric_series_get, metric_value
from apps.monitoring.series.rollup import metric_series_prune, metric_series_prune_limit, metric_series_update

__all__ = ["METRICS", "metric_series_get", "metric_series_prune", "metric_series_prune_limit",
           "metric_series_update", "metric_value"]
