"""Monitoring records. A drift report compares a current data set with a
reference column by column (see ``apps.monitoring.drift``)."""

from django.conf import settings
from django.db import models

from apps.monitoring.choices import Correction, Granularity, ReportStatus


class DriftReport(models.Model):
    """One data drift check of a current data set against a reference: two
    dataset versions (the reference usually the training data), or an
    endpoint's logged inputs over ``[window_start, window_end)`` against the
    serving model version's training data. Queued on creation and computed
    by a worker on the ``monitoring`` queue; ``result`` holds the per-column
    statistics and the dataset verdict once ``done``. Visible to whoever may
    see both dataset versions (for an endpoint check: the endpoint and the
    reference)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="drift_reports")
    reference_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.PROTECT, related_name="drift_reports_as_reference"
    )
    current_version = models.ForeignKey(
        "datasets.DatasetVersion",
        on_delete=models.PROTECT,
        related_name="drift_reports_as_current",
        null=True,
        blank=True,
    )
    # For checks of an endpoint's logged inputs (current = the window's inputs).
    endpoint_slug = models.SlugField(max_length=100, blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    # Requested columns (empty: every feature column both sides share).
    columns = models.JSONField(default=list, blank=True)
    # What the worker tests, resolved from the two schemas at creation:
    # {"columns": {name: "numeric"|"categorical"}, "target": [name, kind] | null, "skipped": [...]}.
    plan = models.JSONField(default=dict, blank=True)
    drift_share = models.FloatField(default=0.5)
    correction = models.CharField(max_length=12, choices=Correction.choices, default=Correction.NONE)
    # Per-column overrides: {"column": "method"} and {"column": threshold}.
    methods = models.JSONField(default=dict, blank=True)
    thresholds = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=ReportStatus.choices, default=ReportStatus.QUEUED, db_index=True)
    result = models.JSONField(null=True, blank=True)
    dataset_drift = models.BooleanField(null=True, blank=True)
    error = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(drift_share__gt=0) & models.Q(drift_share__lte=1),
                name="drift_report_share_in_range",
            ),
        ]

    def __str__(self):
        return f"Drift report {self.pk}"


class MetricSeriesPoint(models.Model):
    """What one deployment (model version) of an endpoint served in one
    minute, hour or day (``bucket_start``, UTC, truncated): counts, a latency
    histogram on the fixed edges of ``apps.monitoring.series.buckets`` (so
    percentiles merge across points), the prediction distribution, confidence
    and — for feedback joined later — correctness or error, attributed to the
    bucket of the prediction. Written only by ``metric_series_update``, which
    adds each logged request and joined feedback to its minute, hour and day
    points at once."""

    granularity = models.CharField(max_length=6, choices=Granularity.choices)
    bucket_start = models.DateTimeField()
    endpoint = models.ForeignKey("serving.Endpoint", on_delete=models.CASCADE, related_name="metric_series")
    deployment = models.ForeignKey("serving.Deployment", on_delete=models.CASCADE, related_name="metric_series")
    requests = models.PositiveIntegerField(default=0)
    successes = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0, help_text="Requests refused with a 4xx.")
    errors = models.PositiveIntegerField(default=0, help_text="Requests that failed with a 5xx.")
    # Answered requests' latency: counts per fixed bucket (len(LATENCY_EDGES_MS) + 1), and their sum.
    latency_counts = models.JSONField(default=list)
    latency_sum_ms = models.FloatField(default=0.0)
    # Answered instances; classifiers: {class: count}; regressors: counts on PREDICTION_EDGES and the sum.
    instances = models.PositiveIntegerField(default=0)
    class_counts = models.JSONField(default=dict)
    prediction_counts = models.JSONField(default=list)
    prediction_sum = models.FloatField(default=0.0)
    confidence_count = models.PositiveIntegerField(default=0)
    confidence_sum = models.FloatField(default=0.0)
    # Joined feedback: ``judged``/``correct`` for classifiers, the errors' sums for regressors.
    judged = models.PositiveIntegerField(default=0)
    correct = models.PositiveIntegerField(default=0)
    scored = models.PositiveIntegerField(default=0)
    abs_error_sum = models.FloatField(default=0.0)
    squared_error_sum = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["granularity", "bucket_start", "deployment_id"]
        constraints = [
            models.UniqueConstraint(fields=["granularity", "deployment", "bucket_start"],
                                    name="metric_series_point_once"),
        ]
        indexes = [
            models.Index(fields=["endpoint", "granularity", "bucket_start"], name="metric_series_endpoint_idx"),
            models.Index(fields=["granularity", "bucket_start"], name="metric_series_retention_idx"),
        ]

    def __str__(self):
        return f"{self.granularity} {self.bucket_start:%Y-%m-%d %H:%M} deployment {self.deployment_id}"


class MetricSeriesWatermark(models.Model):
    """How far ``metric_series_update`` has read: the last prediction log id
    added to the series, and the join time up to which joined feedback was
    added. One row (``name="metric_series"``), locked by each update, moved in
    the same transaction as the points it wrote."""

    name = models.CharField(max_length=40, unique=True)
    prediction_id = models.BigIntegerField(default=0)
    feedback_joined_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.name}: log id {self.prediction_id}"


# Alerting keeps its models in its own package; importing them here registers
# them with the monitoring app.
from apps.monitoring.alerts.models import Alert, AlertRule, AlertTransition, Silence  # noqa: E402

__all__ = ["Alert", "AlertRule", "AlertTransition", "DriftReport", "MetricSeriesPoint", "MetricSeriesWatermark",
           "Silence"]
