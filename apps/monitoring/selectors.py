"""Reads of the monitoring app: visible drift reports and their API shape."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.core.errors import NotFound
from apps.core.permissions import filter_visible, has_perm
from apps.monitoring.models import DriftReport


def drift_report_list(*, user) -> QuerySet[DriftReport]:
    """Reports the user may see, newest first: both dataset versions visible,
    or for an endpoint check the endpoint and the reference."""
    from apps.datasets.models import Dataset
    from apps.serving.selectors import endpoint_visible_slugs

    queryset = DriftReport.objects.select_related(
        "owner", "reference_version__dataset", "current_version__dataset"
    )
    datasets = filter_visible(user, Dataset.objects.all(), "datasets.view_dataset").values("pk")
    queryset = queryset.filter(reference_version__dataset__in=datasets).filter(
        Q(current_version__isnull=True) | Q(current_version__dataset__in=datasets)).filter(
        Q(endpoint_slug="") | Q(endpoint_slug__in=endpoint_visible_slugs(user=user)))
    return queryset.order_by("-created_at", "-id")


def drift_report_get(*, user, pk) -> DriftReport:
    """The report, or NotFound when it does not exist or either dataset version is hidden from the user."""
    report = (
        DriftReport.objects.select_related("owner", "reference_version__dataset", "current_version__dataset")
        .filter(pk=pk)
        .first()
    )
    if report is None or not drift_report_visible(user=user, report=report):
        raise NotFound("Drift report not found.")
    return report


def drift_report_visible(*, user, report: DriftReport) -> bool:
    versions = [report.reference_version, report.current_version]
    if not all(v is None or has_perm(user, "datasets.view_dataset", v.dataset) for v in versions):
        return False
    if report.endpoint_slug:
        from apps.serving.models import Endpoint

        endpoint = Endpoint.objects.filter(slug=report.endpoint_slug).first()
        return endpoint is not None and has_perm(user, "serving.view_endpoint", endpoint)
    return True


def drift_report_payload(report: DriftReport) -> dict:
    """The report as the API and the page show it; the verdict and columns once done."""
    result = report.result or {}
    return {
        "id": report.pk,
        "status": report.status,
        "reference_version_id": report.reference_version_id,
        "current_version_id": report.current_version_id,
        "endpoint": report.endpoint_slug or None,
        "since": report.window_start,
        "until": report.window_end,
        "model_version": (report.plan or {}).get("model_version"),
        "drift_share": report.drift_share,
        "correction": report.correction,
        "dataset_drift": result.get("dataset_drift"),
        "drifted_share": result.get("drifted_share"),
        "drifted_count": result.get("drifted_count"),
        "columns": result.get("columns", []),
        "target": result.get("target"),
        "skipped": result.get("skipped", []),
        "reference_rows": result.get("reference_rows"),
        "current_rows": result.get("current_rows"),
        "error": report.error,
        "owner": report.owner.get_username(),
        "created_at": report.created_at,
        "started_at": report.started_at,
        "finished_at": report.finished_at,
    }


# Metric series (apps/monitoring/series/query.py).
from apps.monitoring.series.query import metric_series_get, metric_value  # noqa: E402, F401
