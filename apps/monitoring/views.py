"""Browser pages of the monitoring app: drift reports (list, new, one report)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.core.errors import ApplicationError, NotFound
from apps.core.permissions import has_perm
from apps.monitoring import charts, selectors, services
from apps.monitoring.choices import ReportStatus
from apps.monitoring.forms import DriftReportForm


def _form(request, data=None) -> DriftReportForm | None:
    if not has_perm(request.user, "monitoring.add_driftreport"):
        return None
    initial = {}
    for field in ("reference_version", "current_version"):
        if request.GET.get(field, "").isdigit():
            initial[field] = int(request.GET[field])
    return DriftReportForm(data, user=request.user, initial=initial)


@require_GET
def drift_report_list(request):
    return render(request, "monitoring/drift_report_list.html", {
        "reports": selectors.drift_report_list(user=request.user)[:200],
        "form": _form(request),
    })


@require_POST
def drift_report_create(request):
    form = _form(request, request.POST)
    if form is None:
        messages.error(request, "You may not create drift reports.")
        return redirect("monitoring:drift-report-list")
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("monitoring:drift-report-list")
    data = form.cleaned_data
    try:
        report = services.drift_report_create(
            actor=request.user, reference_version_id=data["reference_version"].pk,
            current_version_id=data["current_version"].pk, columns=data["columns"],
            drift_share=data["drift_share"], correction=data["correction"],
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("monitoring:drift-report-list")
    messages.success(request, f"Drift report {report.pk} queued.")
    return redirect("monitoring:drift-report-detail", pk=report.pk)


@require_POST
def drift_report_create_for_endpoint(request, slug: str):
    """The endpoint page's "Check drift (last hour)": its last hour of inputs against its model's training data."""
    try:
        report = services.drift_report_create_for_endpoint(actor=request.user, endpoint=slug)
    except ApplicationError as exc:
        if isinstance(exc, NotFound) and exc.details.get("field") == "endpoint":
            raise Http404("No such endpoint.")
        messages.error(request, exc.message)
        return redirect("serving:detail", slug=slug)
    messages.success(request, f"Drift report {report.pk} queued.")
    return redirect("monitoring:drift-report-detail", pk=report.pk)


@require_GET
def drift_report_detail(request, pk: int):
    try:
        report = selectors.drift_report_get(user=request.user, pk=pk)
    except NotFound:
        raise Http404("No such drift report.")
    payload = selectors.drift_report_payload(report)
    return render(request, "monitoring/drift_report_detail.html", {
        "report": report,
        "payload": payload,
        "busy": report.status in (ReportStatus.QUEUED, ReportStatus.RUNNING),
        "figure": charts.drift_statistic_figure(payload["columns"]),
    })
