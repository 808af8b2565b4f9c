"""Writes of the monitoring app: drift reports are created (validated, queued)
and computed by a worker.

A report moves queued → running → done or failed. Computing is repeatable:
the statistics are a pure function of immutable inputs (two dataset
versions, or a past window of the append-only prediction log), so a task
redelivered after its worker died simply computes again, and a result is
written only while the report is still running (a finished report is never
overwritten)."""

from __future__ import annotations

import logging
import math
import time
import uuid
from functools import partial
from types import SimpleNamespace

from django.db import transaction
from django.utils import timezone

from apps.core import events
from apps.core.errors import NotFound, ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record
from apps.datasets.selectors import dataset_version_get, dataset_version_read_frame
from apps.monitoring.choices import Correction, ReportStatus
from apps.monitoring.current import drift_window_parse, logged_inputs_frame, signature_schema
from apps.monitoring.drift import DriftInputError, column_drift, dataset_drift
from apps.monitoring.models import DriftReport
from apps.monitoring.plan import MAX_COLUMNS, DriftPlan, drift_overrides_clean, drift_plan_build

logger = logging.getLogger(__name__)

MONITORING_QUEUE = "monitoring"


def _version(*, actor, pk, field: str):
    try:
        version = dataset_version_get(user=actor, pk=pk)
    except NotFound as exc:
        raise NotFound(exc.message, details={"field": field, field: pk})
    if not (version.schema or {}).get("columns"):
        raise ValidationFailed(
            f"{version} has no schema yet (it is {version.status}); wait for its validation to finish.",
            code="dataset_version_not_ready",
            details={"field": field, "status": version.status},
        )
    return version


def _options_clean(*, columns, drift_share, correction) -> list[str]:
    if isinstance(drift_share, bool) or not isinstance(drift_share, (int, float)) or not 0 < drift_share <= 1:
        raise ValidationFailed("drift_share must be a number in (0, 1].", details={"field": "drift_share"})
    if correction not in Correction.values:
        raise ValidationFailed(f"correction must be one of {', '.join(Correction.values)}.",
                               details={"field": "correction"})
    columns = list(dict.fromkeys(columns or []))
    if len(columns) > MAX_COLUMNS:
        raise ValidationFailed(f"At most {MAX_COLUMNS} columns per report.", details={"field": "columns"})
    return columns


def drift_report_create(
    *,
    actor,
    reference_version_id: int,
    current_version_id: int,
    columns: list[str] | None = None,
    drift_share: float = 0.5,
    correction: str = Correction.NONE,
    methods: dict | None = None,
    thresholds: dict | None = None,
) -> DriftReport:
    """Check a drift request against both versions' schemas and queue it.

    The actor needs the capability to create reports and must be able to see
    both dataset versions (a hidden version is a 404, as if it did not exist).
    """
    require_perm(actor, "monitoring.add_driftreport")
    reference = _version(actor=actor, pk=reference_version_id, field="reference_version_id")
    current = _version(actor=actor, pk=current_version_id, field="current_version_id")
    columns = _options_clean(columns=columns, drift_share=drift_share, correction=correction)
    target = reference.dataset.target_column or ""
    plan = drift_plan_build(reference=reference, current=current, columns=columns, target=target)
    methods, thresholds = drift_overrides_clean(plan=plan, methods=methods, thresholds=thresholds)
    with transaction.atomic():
        report = DriftReport.objects.create(
            owner=actor,
            reference_version=reference,
            current_version=current,
            columns=columns,
            plan=plan.as_dict(),
            drift_share=float(drift_share),
            correction=correction,
            methods=methods,
            thresholds=thresholds,
            celery_task_id=uuid.uuid4().hex,
        )
        audit_record(actor=actor, action="drift_report.created", target=report, after={
            "reference_version": reference.pk, "current_version": current.pk, "columns": sorted(plan.columns),
            "target": plan.target[0] if plan.target else None, "drift_share": report.drift_share,
            "correction": correction, "methods": methods, "thresholds": thresholds,
        })
        transaction.on_commit(partial(_enqueue, report.pk, report.celery_task_id))
    return report


def _serving_model_version(*, endpoint, since, until):
    """The model version that answered most of the window's requests (400
    ``empty_window`` when none was logged)."""
    from apps.registry.models import ModelVersion
    from apps.serving.selectors import prediction_log_window_versions

    served = prediction_log_window_versions(endpoint=endpoint, since=since, until=until)
    if not served:
        raise ValidationFailed(
            f"Endpoint {endpoint.slug!r} logged no request between {since.isoformat()} and {until.isoformat()}: "
            "there is nothing to compare with the reference.",
            code="empty_window", details={"field": "since", "since": since, "until": until})
    return (ModelVersion.objects.select_related("registered_model", "dataset_version__dataset",
                                                "source_run__dataset_version__dataset").get(pk=served[0][0]))


def _training_version(*, actor, model_version):
    """The dataset version ``model_version`` was trained on: its own lineage,
    else its run's; visible to ``actor`` and validated."""
    run = model_version.source_run
    training = model_version.dataset_version or (run.dataset_version if run is not None else None)
    if training is None:
        raise ValidationFailed(
            f"{model_version} has no training data on record (it was not registered from a run with a dataset "
            "version); name the reference with reference_version_id.",
            code="no_reference", details={"field": "reference_version_id", "model_version_id": model_version.pk})
    try:
        return _version(actor=actor, pk=training.pk, field="reference_version_id")
    except NotFound:
        raise NotFound(f"The training data of {model_version} is not visible to you.",
                       details={"field": "reference_version_id"})


def drift_report_create_for_endpoint(
    *,
    actor,
    endpoint: str,
    since=None,
    until=None,
    reference_version_id: int | None = None,
    columns: list[str] | None = None,
    drift_share: float = 0.5,
    correction: str = Correction.NONE,
    methods: dict | None = None,
    thresholds: dict | None = None,
) -> DriftReport:
    """Queue a check of the inputs ``endpoint`` received in ``[since, until)``
    (ISO strings; until defaults to now, since to an hour before) against the
    training data of the model version that answered most of them, or
    against ``reference_version_id``. The columns are the version's signature
    inputs that the reference also has. The actor must see the endpoint (404
    naming ``endpoint`` otherwise) and the reference."""
    from apps.serving.selectors import endpoint_get

    require_perm(actor, "monitoring.add_driftreport")
    try:
        served_by = endpoint_get(user=actor, slug=str(endpoint))
    except NotFound:
        raise NotFound(f"No endpoint {endpoint!r}.", details={"field": "endpoint", "endpoint": endpoint})
    since, until = drift_window_parse(since=since, until=until)
    columns = _options_clean(columns=columns, drift_share=drift_share, correction=correction)
    model_version = _serving_model_version(endpoint=served_by, since=since, until=until)
    if reference_version_id is not None:
        reference = _version(actor=actor, pk=reference_version_id, field="reference_version_id")
    else:
        reference = _training_version(actor=actor, model_version=model_version)
    inputs = SimpleNamespace(schema=signature_schema(model_version.signature))
    plan = drift_plan_build(reference=reference, current=inputs, columns=columns,
                            target=reference.dataset.target_column or "")
    methods, thresholds = drift_overrides_clean(plan=plan, methods=methods, thresholds=thresholds)
    stored_plan = {**plan.as_dict(), "model_version": {"id": model_version.pk, "name": str(model_version)}}
    with transaction.atomic():
        report = DriftReport.objects.create(
            owner=actor, reference_version=reference, current_version=None, endpoint_slug=served_by.slug,
            window_start=since, window_end=until, columns=columns, plan=stored_plan,
            drift_share=float(drift_share), correction=correction, methods=methods, thresholds=thresholds,
            celery_task_id=uuid.uuid4().hex,
        )
        audit_record(actor=actor, action="drift_report.created", target=report, after={
            "reference_version": reference.pk, "endpoint": served_by.slug, "since": since.isoformat(),
            "until": until.isoformat(), "model_version": model_version.pk, "columns": sorted(plan.columns),
            "drift_share": report.drift_share, "correction": correction, "methods": methods,
            "thresholds": thresholds,
        })
        transaction.on_commit(partial(_enqueue, report.pk, report.celery_task_id))
    return report


def _enqueue(report_id: int, task_id: str) -> None:
    from apps.monitoring import tasks

    tasks.drift_report_compute.apply_async(args=[report_id], task_id=task_id, queue=MONITORING_QUEUE)


def _json_safe(value):
    """NaN and ±inf (e.g. a χ² p-value with one category) become null in the stored JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _current_frame(*, report: DriftReport, names: list[str]):
    """The current data: the current dataset version, or the endpoint's logged inputs in the window."""
    if report.current_version_id is not None:
        return dataset_version_read_frame(version=report.current_version, columns=names)
    from apps.serving.models import Endpoint
    from apps.serving.selectors import prediction_log_inputs

    endpoint = Endpoint.objects.filter(slug=report.endpoint_slug).first()
    if endpoint is None:
        raise DriftInputError(f"endpoint {report.endpoint_slug!r} no longer exists")
    instances = prediction_log_inputs(endpoint=endpoint, since=report.window_start, until=report.window_end)
    if not instances:
        raise DriftInputError(f"endpoint {report.endpoint_slug!r} logged no input object in the window")
    types = {c["name"]: c.get("type") for c in (report.reference_version.schema or {}).get("columns", [])}
    return logged_inputs_frame(instances, types={name: types.get(name) for name in names})


def drift_report_result(*, report: DriftReport) -> dict:
    """Compute the report's statistics (no database writes): read both frames
    through the datasets selector, test every planned column, and the target apart."""
    plan = DriftPlan.from_dict(report.plan)
    names = list(plan.columns) + ([plan.target[0]] if plan.target else [])
    started = time.perf_counter()
    reference = dataset_version_read_frame(version=report.reference_version, columns=names)
    current = _current_frame(report=report, names=names)
    tested, skipped = [], list(plan.skipped)
    for name, kind in plan.columns.items():
        try:
            tested.append(column_drift(reference[name], current[name], kind=kind, name=name,
                                       method=report.methods.get(name), threshold=report.thresholds.get(name)))
        except DriftInputError as exc:  # e.g. a column with no value on one side: reported, not fatal
            skipped.append({"name": name, "reason": str(exc)})
    if not tested:
        raise DriftInputError("no column could be tested: " + "; ".join(f"{s['name']}: {s['reason']}"
                                                                      for s in skipped[-5:]))
    drift = dataset_drift(tested, drift_share=report.drift_share, correction=report.correction)
    result = drift.as_dict()
    result["target"] = None
    if plan.target:
        name, kind = plan.target
        try:
            result["target"] = column_drift(reference[name], current[name], kind=kind, name=name,
                                            method=report.methods.get(name),
                                            threshold=report.thresholds.get(name)).as_dict()
        except DriftInputError as exc:
            result["target"] = {"name": name, "error": str(exc)}
    result["skipped"] = skipped
    if report.endpoint_slug:
        result["model_version"] = report.plan.get("model_version")
    result["reference_rows"] = len(reference)
    result["current_rows"] = len(current)
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    return _json_safe(result)


def _claim(report_id: int) -> DriftReport | None:
    with transaction.atomic():
        report = DriftReport.objects.select_for_update().filter(pk=report_id).first()
        if report is None or report.status not in (ReportStatus.QUEUED, ReportStatus.RUNNING):
            return None
        if report.status == ReportStatus.QUEUED:
            report.status, report.started_at = ReportStatus.RUNNING, timezone.now()
            report.save(update_fields=["status", "started_at"])
            audit_record(actor=None, action="drift_report.started", target=report,
                         before={"status": ReportStatus.QUEUED}, after={"status": ReportStatus.RUNNING})
    return DriftReport.objects.select_related("reference_version__dataset", "current_version__dataset").get(
        pk=report_id)


def _finish(report_id: int, *, result: dict | None, error: str = "") -> DriftReport | None:
    with transaction.atomic():
        report = DriftReport.objects.select_for_update().get(pk=report_id)
        if report.status != ReportStatus.RUNNING:
            return None  # another delivery of the task finished it first
        report.status = ReportStatus.FAILED if error else ReportStatus.DONE
        report.result, report.error, report.finished_at = result, error, timezone.now()
        report.dataset_drift = None if result is None else bool(result["dataset_drift"])
        report.save(update_fields=["status", "result", "error", "finished_at", "dataset_drift"])
        audit_record(actor=None, action=f"drift_report.{'failed' if error else 'done'}", target=report,
                     before={"status": ReportStatus.RUNNING},
                     after={"status": report.status, "dataset_drift": report.dataset_drift, "error": error})
        if report.dataset_drift and report.endpoint_slug:
            events.publish("drift.detected", {"drift_report_id": report.pk, "endpoint": report.endpoint_slug})
    return report


def drift_report_compute(*, report_id: int) -> DriftReport | None:
    """Compute a queued (or interrupted running) report and store the result.
    Returns None when the report is already finished or gone."""
    report = _claim(report_id)
    if report is None:
        return None
    try:
        result = drift_report_result(report=report)
    except (DriftInputError, ValidationFailed) as exc:
        return _finish(report_id, result=None, error=str(getattr(exc, "message", exc)))
    except Exception:
        logger.exception("drift report %s failed", report_id)
        return _finish(report_id, result=None, error="The drift computation failed unexpectedly; see the worker log.")
    return _finish(report_id, result=result)


def drift_report_fail(*, report_id: int, reason: str) -> DriftReport | None:
    """Fail a report whose task could not record its own failure (time limit, lost database)."""
    with transaction.atomic():
        report = DriftReport.objects.select_for_update().filter(pk=report_id).first()
        if report is None or report.status not in (ReportStatus.QUEUED, ReportStatus.RUNNING):
            return None
        before = report.status
        report.status, report.error, report.finished_at = ReportStatus.FAILED, reason, timezone.now()
        report.save(update_fields=["status", "error", "finished_at"])
        audit_record(actor=None, action="drift_report.failed", target=report, before={"status": before},
                     after={"status": report.status, "error": reason})
    return report


# Metric series (apps/monitoring/series/rollup.py).
from apps.monitoring.series.rollup import metric_series_prune, metric_series_update  # noqa: E402, F401
