"""Prometheus metrics exposed at /metrics.

HTTP request counts and latency histograms are recorded by
``PrometheusMiddleware`` per resolved view name (bounded cardinality). With
several gunicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` so every worker's
samples are aggregated. Celery task counts come from the task results table,
so they cover every worker process."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

HTTP_REQUESTS = Counter(
    "mlops_http_requests_total", "HTTP requests by view, method and status.", ["view", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "mlops_http_request_duration_seconds",
    "HTTP request latency by view.",
    ["view"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10),
)


class CeleryTaskCollector:
    """Task counts by name and state, read from django-celery-results."""

    def collect(self):
        from django.db.models import Count
        from django_celery_results.models import TaskResult

        family = GaugeMetricFamily("mlops_celery_tasks", "Celery tasks recorded, by task and state.",
                                   labels=["task", "state"])
        try:
            rows = TaskResult.objects.values("task_name", "status").annotate(n=Count("id"))
            for row in rows:
                family.add_metric([row["task_name"] or "unknown", row["status"]], row["n"])
        except Exception:  # /metrics must answer even while the database is down
            pass
        yield family


_extra_collectors = [CeleryTaskCollector()]


def register_collector(collector) -> None:
    """Apps add collectors for their own gauges (e.g. serving, monitoring)."""
    _extra_collectors.append(collector)


def render_metrics() -> tuple[bytes, str]:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
        output = generate_latest(registry)
        extra = CollectorRegistry()
        for collector in _extra_collectors:
            extra.register(collector)
        return output + generate_latest(extra), CONTENT_TYPE_LATEST
    for collector in _extra_collectors:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
