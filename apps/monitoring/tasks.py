"""Drift computation on the ``monitoring`` queue. The task takes the report's
id and calls the service, which re-reads the row and returns early when the
report already finished. ``acks_late``: computing is repeatable (a pure
function of immutable dataset versions or a past window of the prediction
log) and a finished report is never
overwritten, so a task redelivered after its worker died is safe."""

from celery import Task, shared_task

from apps.monitoring import services


class DriftReportTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        report_id = args[0] if args else kwargs.get("report_id")
        if report_id is not None:
            services.drift_report_fail(report_id=report_id, reason=f"The drift task failed: {exc!r}")


@shared_task(base=DriftReportTask, queue="monitoring", acks_late=True, soft_time_limit=540, time_limit=600)
def drift_report_compute(report_id: int) -> str:
    report = services.drift_report_compute(report_id=report_id)
    return report.status if report is not None else "skipped"


@shared_task(queue="monitoring", acks_late=True, soft_time_limit=50, time_limit=58)
def metric_series_update() -> dict:
    """Fold the newly logged predictions and joined feedback into the metric
    series, then prune old points (each minute, from beat). ``acks_late``:
    the watermark moves in the transaction that writes the points, so a
    redelivered run reads only what is still unread."""
    return services.metric_series_update()


@shared_task(queue="monitoring", soft_time_limit=50, time_limit=58)
def alert_rules_evaluate() -> dict:
    """Every minute (beat ``monitoring-alert-rules-evaluate``): evaluate the due alert rules."""
    from apps.monitoring.alerts import services as alerts

    return alerts.alert_rules_evaluate()


@shared_task(queue="monitoring", acks_late=True)
def alert_rules_ensure_defaults(endpoint_id: int) -> int:
    """A new endpoint's default alert rules (idempotent: rules are unique by name)."""
    from apps.monitoring.alerts import services as alerts
    from apps.serving.models import Endpoint

    endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return 0
    return len(alerts.alert_rules_ensure_defaults(endpoint=endpoint, actor=None))


__all__ = ["alert_rules_ensure_defaults", "alert_rules_evaluate", "drift_report_compute", "metric_series_update"]
