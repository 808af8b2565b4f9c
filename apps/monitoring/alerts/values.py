"""Metric values for alert rules. ``provider()`` is the series module's
``metric_value`` when the monitoring app has one, else ``metric_value``
here, computed from serving's window statistics of the prediction log (read
only through ``apps.serving.selectors``). ``dataset_drift`` always comes from
the endpoint's latest finished drift report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from apps.monitoring.alerts.choices import AlertMetric
from apps.monitoring.choices import ReportStatus
from apps.serving import selectors as serving

MetricValue = Callable[..., float | None]


def drift_value(*, endpoint) -> float | None:
    """1.0 when the endpoint's latest finished drift report found dataset drift, 0.0 when not."""
    from apps.monitoring.models import DriftReport

    report = (DriftReport.objects.filter(endpoint_slug=endpoint.slug, status=ReportStatus.DONE)
              .order_by("-finished_at", "-id").only("dataset_drift").first())
    if report is None or report.dataset_drift is None:
        return None
    return 1.0 if report.dataset_drift else 0.0


def metric_value(*, endpoint, deployment=None, metric: str, window_seconds: int, now: datetime) -> float | None:
    """The value of ``metric`` over the last ``window_seconds`` before ``now``
    (None without requests, or without judged feedback for accuracy)."""
    if metric == AlertMetric.DATASET_DRIFT:
        return drift_value(endpoint=endpoint)
    numbers = serving.endpoint_metrics(endpoint=endpoint, window=timedelta(seconds=window_seconds), now=now,
                                       buckets=1)
    row = numbers["total"]
    if deployment is not None:
        row = next((d for d in numbers["deployments"] if d["deployment_id"] == deployment.pk), None)
        if row is None:
            return None
    if metric == AlertMetric.REQUEST_RATE:
        return float(row["rps"])
    if not row["requests"] and metric != AlertMetric.ACCURACY:
        return None
    key = {AlertMetric.ERROR_RATE: "error_rate", AlertMetric.LATENCY_P95: "p95_ms",
           AlertMetric.ACCURACY: "accuracy"}[metric]
    value = row[key]
    return None if value is None else float(value)


def provider() -> MetricValue:
    """The metric source: ``apps.monitoring.series.metric_value`` if it exists."""
    try:
        from apps.monitoring.series import metric_value as series_value
    except ImportError:
        return metric_value

    def value(*, endpoint, deployment=None, metric: str, window_seconds: int, now: datetime) -> float | None:
        if metric == AlertMetric.DATASET_DRIFT:
            return drift_value(endpoint=endpoint)
        return series_value(endpoint=endpoint, deployment=deployment, metric=metric,
                            window_seconds=window_seconds, now=now)
    return value
