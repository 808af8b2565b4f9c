"""Reading the metric series: points for a chart or the API
(``metric_series_get``) and one aggregated value over a window for alert
rules (``metric_value``). Percentiles come from the merged fixed-bucket
histograms (``buckets.quantile``), so they are right across minutes and
deployments to within one bucket width.

Definitions, per point or window: ``error_rate`` = 5xx / (requests - 4xx)
(a caller's invalid request is not the model's error); ``invalid_rate`` =
4xx / requests; ``request_rate`` = requests per second; latency over
answered requests; ``mean_confidence`` over answered instances with class
probabilities; ``accuracy`` = correct / judged feedback; ``abs_error`` and
``rmse`` over scored (regression) feedback.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core.errors import NotFound, ValidationFailed
from apps.monitoring.choices import Granularity
from apps.monitoring.models import MetricSeriesPoint
from apps.monitoring.series import buckets
from apps.monitoring.series.rollup import bucket_start
from apps.serving.selectors import endpoint_get

STEP = {Granularity.MINUTE: timedelta(minutes=1), Granularity.HOUR: timedelta(hours=1),
        Granularity.DAY: timedelta(days=1)}
DEFAULT_SPAN = {Granularity.MINUTE: timedelta(hours=1), Granularity.HOUR: timedelta(days=7),
                Granularity.DAY: timedelta(days=90)}
MAX_POINTS = 20_000
METRICS = ("request_rate", "error_rate", "invalid_rate", "latency_p50", "latency_p95", "latency_p99", "accuracy",
           "mean_confidence", "abs_error")
_FIELDS = ("requests", "successes", "invalid", "errors", "instances", "confidence_count", "judged", "correct",
           "scored", "latency_sum_ms", "prediction_sum", "confidence_sum", "abs_error_sum", "squared_error_sum")


class Totals:
    """The sum of several points (same shape as one point)."""

    def __init__(self):
        self.values = dict.fromkeys(_FIELDS, 0)
        self.latency_counts: list[int] = []
        self.prediction_counts: list[int] = []
        self.class_counts: dict[str, int] = {}

    def add(self, point: MetricSeriesPoint) -> None:
        for name in _FIELDS:
            self.values[name] += getattr(point, name)
        if point.latency_counts:
            self.latency_counts = buckets.merge_counts(self.latency_counts, point.latency_counts)
        if point.prediction_counts:
            self.prediction_counts = buckets.merge_counts(self.prediction_counts, point.prediction_counts)
        for key, count in (point.class_counts or {}).items():
            self.class_counts[key] = self.class_counts.get(key, 0) + count

    def _ratio(self, numerator: str | float, denominator: str) -> float | None:
        den = self.values[denominator] if isinstance(denominator, str) else denominator
        num = self.values[numerator] if isinstance(numerator, str) else numerator
        return num / den if den else None

    def metric(self, name: str, *, seconds: float) -> float | None:
        v = self.values
        if name == "request_rate":
            return v["requests"] / seconds if seconds > 0 else None
        if name == "error_rate":
            judged = v["requests"] - v["invalid"]
            return v["errors"] / judged if judged else None
        if name == "invalid_rate":
            return self._ratio("invalid", "requests")
        if name.startswith("latency_p"):
            return buckets.quantile(self.latency_counts, int(name[len("latency_p"):]) / 100)
        if name == "accuracy":
            return self._ratio("correct", "judged")
        if name == "mean_confidence":
            return self._ratio("confidence_sum", "confidence_count")
        if name == "abs_error":
            return self._ratio("abs_error_sum", "scored")
        raise ValueError(f"Unknown metric {name!r}.")

    def payload(self, *, start: datetime, seconds: float) -> dict:
        v = self.values
        mse = self._ratio("squared_error_sum", "scored")
        out = {"start": start, "requests": v["requests"], "successes": v["successes"], "invalid": v["invalid"],
               "errors": v["errors"], "instances": v["instances"], "judged": v["judged"], "correct": v["correct"],
               "scored": v["scored"], "latency_mean": self._ratio("latency_sum_ms", "successes"),
               "rmse": math.sqrt(mse) if mse is not None else None,
               "class_counts": dict(sorted(self.class_counts.items())),
               "prediction_histogram": self._histogram()}
        for name in METRICS:
            out[name] = self.metric(name, seconds=seconds)
        return out

    def _histogram(self) -> list[dict]:
        """Non-empty regression buckets as ``{"le": upper edge, "count"}`` (``le`` null: overflow)."""
        edges = buckets.PREDICTION_EDGES
        return [{"le": edges[i] if i < len(edges) else None, "count": c}
                for i, c in enumerate(self.prediction_counts) if c]


def _parse_moment(value, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        moment = parse_datetime(str(value))
        if moment is None:
            raise ValidationFailed(f'"{field}" must be an ISO 8601 date-time.', details={"field": field})
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def _points(*, endpoint_id: int, deployment_id: int | None, granularity: str, since: datetime, until: datetime):
    rows = MetricSeriesPoint.objects.filter(endpoint_id=endpoint_id, granularity=granularity,
                                            bucket_start__gte=since, bucket_start__lt=until)
    if deployment_id is not None:
        rows = rows.filter(deployment_id=deployment_id)
    return rows.order_by("bucket_start", "deployment_id")


def metric_series_get(*, user, endpoint: str, deployment=None, granularity: str = Granularity.MINUTE,
                      since=None, until=None) -> dict:
    """The series of endpoint ``endpoint`` (slug) the user may see (404
    otherwise), one point per ``granularity`` bucket in ``[since, until)``
    with data, all deployments merged unless ``deployment`` (an id of one of
    the endpoint's deployments) is given. Defaults: the last hour of minutes,
    week of hours or 90 days of days."""
    if granularity not in Granularity.values:
        raise ValidationFailed(f'"granularity" must be one of {", ".join(Granularity.values)}.',
                               details={"field": "granularity"})
    until_at = _parse_moment(until, "until") or timezone.now()
    since_at = _parse_moment(since, "since") or until_at - DEFAULT_SPAN[granularity]
    if since_at >= until_at:
        raise ValidationFailed('"since" must be before "until".', details={"field": "since"})
    if (until_at - since_at) / STEP[granularity] > MAX_POINTS:
        raise ValidationFailed(f"At most {MAX_POINTS} {granularity} points per request; narrow the window.",
                               details={"field": "since"})
    deployment_id = None
    if deployment not in (None, ""):
        try:
            deployment_id = int(deployment)
        except (TypeError, ValueError):
            raise ValidationFailed('"deployment" must be a deployment id.', details={"field": "deployment"}) from None
    found = endpoint_get(user=user, slug=endpoint)
    if deployment_id is not None and not found.deployments.filter(pk=deployment_id).exists():
        raise NotFound(f"No deployment {deployment_id} on endpoint {found.slug!r}.")
    by_start: dict[datetime, Totals] = {}
    for point in _points(endpoint_id=found.pk, deployment_id=deployment_id, granularity=granularity,
                         since=bucket_start(since_at, granularity), until=until_at):
        by_start.setdefault(point.bucket_start, Totals()).add(point)
    seconds = STEP[granularity].total_seconds()
    return {"endpoint": found.slug, "deployment": deployment_id, "granularity": granularity,
            "since": since_at, "until": until_at,
            "points": [totals.payload(start=start, seconds=seconds) for start, totals in sorted(by_start.items())]}


def metric_value(*, endpoint, deployment=None, metric: str, window_seconds: float, now: datetime | None = None):
    """The value of ``metric`` (one of ``METRICS``) over the minute points in
    ``[now - window_seconds, now)`` of ``endpoint`` (an Endpoint or its id),
    optionally of one deployment (a Deployment or its id); None when the
    window holds no data for it. For the alert engine: no permission scope.
    Minute points live ``MONITORING_RETENTION_MINUTE_DAYS``; longer windows
    read hour points."""
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; one of {', '.join(METRICS)}.")
    now = now or timezone.now()
    window = timedelta(seconds=window_seconds)
    granularity = Granularity.MINUTE if window <= timedelta(days=7) else Granularity.HOUR
    totals = Totals()
    for point in _points(endpoint_id=getattr(endpoint, "pk", endpoint),
                         deployment_id=getattr(deployment, "pk", deployment), granularity=granularity,
                         since=now - window, until=now):
        totals.add(point)
    return totals.metric(metric, seconds=window_seconds)


__all__ = ["METRICS", "metric_series_get", "metric_value"]
