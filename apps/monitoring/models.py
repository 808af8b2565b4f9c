"""Monitoring records. A drift report compares a current data set with a
reference column by column (see ``apps.monitoring.drift``)."""

from django.conf import settings
from django.db import models

from apps.monitoring.choices import Correction, ReportStatus


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


# Alerting keeps its models in its own package; importing them here registers
# them with the monitoring app.
from apps.monitoring.alerts.models import Alert, AlertRule, AlertTransition, Silence  # noqa: E402

__all__ = ["Alert", "AlertRule", "AlertTransition", "DriftReport", "Silence"]
