"""Reads of the monitoring app: visible drift reports and their API shape."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.core.permissions import filter_visible, has_perm
from apps.monitoring.models import DriftReport


def drift_report_list(*, user) -> QuerySet[DriftReport]:
    """Reports whose reference and current dataset versions the user may both see, newest first."""
    queryset = DriftReport.objects.select_related(
        "owner", "reference_version__dataset", "current_version__dataset"
    )
    queryset = filter_visible(user, queryset, "datasets.view_dataset", via="reference_version__dataset")
    queryset = filter_visible(user, queryset, "datasets.view_dataset", via="current_version__dataset")
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
    return all(v is None or has_perm(user, "datasets.view_dataset", v.dataset) for v in versions)


def drift_report_payload(report: DriftReport) -> dict:
    """The report as the API and the page show it; the verdict and columns once done."""
    result = report.result or {}
    return {
        "id": report.pk,
        "status": report.status,
        "reference_version_id": report.reference_version_id,
        "current_version_id": report.current_version_id,
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
