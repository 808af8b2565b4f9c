"""Per endpoint and model version counters and latency histograms for
``/metrics``, read from the metric series' day points, so every web worker
answers the same totals however many gunicorn processes there are (the
series are in the database, not in a process). Registered with
``apps.core.metrics.register_collector`` in ``MonitoringConfig.ready()``;
``/metrics`` is open to anyone unless ``METRICS_TOKEN`` is set, and these
series name endpoints and models (private ones too), so they are only
exposed when a token protects ``/metrics``, or when
``MONITORING_METRICS_PUBLIC`` says the scrape address is private anyway.

The totals trail the log by the series' update (about a minute). The
histogram exposes every fourth fixed edge (0.1 ms · 2^k): cumulative counts
at a subset of the edges are exact, only coarser."""

from __future__ import annotations

from django.conf import settings
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from apps.monitoring.choices import Granularity
from apps.monitoring.models import MetricSeriesPoint
from apps.monitoring.series import buckets

EXPOSED_EDGES_MS = buckets.LATENCY_EDGES_MS[::4]
LABELS = ["endpoint", "model", "version"]
OUTCOMES = ("successes", "invalid", "errors")


def _totals() -> dict[tuple[str, str, str], dict]:
    totals: dict[tuple[str, str, str], dict] = {}
    rows = (MetricSeriesPoint.objects.filter(granularity=Granularity.DAY).order_by()
            .values_list("endpoint__slug", "deployment__model_version__registered_model__name",
                         "deployment__model_version__version", *OUTCOMES, "latency_sum_ms", "latency_counts"))
    for slug, model, version, successes, invalid, errors, latency_sum, latency_counts in rows.iterator(
            chunk_size=1000):
        entry = totals.setdefault((slug, model, str(version)), {"successes": 0, "invalid": 0, "errors": 0,
                                                                 "latency_sum": 0.0, "latency_counts": []})
        entry["successes"] += successes
        entry["invalid"] += invalid
        entry["errors"] += errors
        entry["latency_sum"] += latency_sum
        if latency_counts:
            entry["latency_counts"] = buckets.merge_counts(entry["latency_counts"], latency_counts)
    return totals


class MetricSeriesCollector:
    """``mlops_endpoint_requests_total{endpoint, model, version, outcome}``
    (outcome: success, invalid = 4xx, error = 5xx) and
    ``mlops_endpoint_latency_seconds`` (answered requests)."""

    def collect(self):
        requests = CounterMetricFamily("mlops_endpoint_requests", "Predict requests by endpoint, model version "
                                       "and outcome (success, invalid: 4xx, error: 5xx).", labels=[*LABELS, "outcome"])
        latency = HistogramMetricFamily("mlops_endpoint_latency_seconds",
                                        "Latency of answered predict requests by endpoint and model version.",
                                        labels=LABELS)
        try:
            totals = _totals() if _exposed() else {}
        except Exception:  # /metrics must answer even while the database is down
            totals = {}
        for labels, entry in sorted(totals.items()):
            for outcome, field in (("success", "successes"), ("invalid", "invalid"), ("error", "errors")):
                requests.add_metric([*labels, outcome], entry[field])
            counts = entry["latency_counts"] or buckets.empty_counts(buckets.LATENCY_EDGES_MS)
            cumulative = buckets.cumulative(counts, buckets.LATENCY_EDGES_MS, EXPOSED_EDGES_MS)
            histogram = [(_seconds(edge), count) for edge, count in cumulative]
            histogram.append(("+Inf", sum(counts)))
            latency.add_metric(list(labels), histogram, sum_value=entry["latency_sum"] / 1000)
        yield requests
        yield latency


def _exposed() -> bool:
    return bool(getattr(settings, "METRICS_TOKEN", "")) or settings.MONITORING_METRICS_PUBLIC


def _seconds(edge_ms: float) -> str:
    return repr(round(edge_ms / 1000, 9))


__all__ = ["MetricSeriesCollector"]
