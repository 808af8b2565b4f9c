"""Selectors that read the prediction log and joined feedback past a
cursor, for apps above serving that keep incremental aggregates (monitoring's
metric series). Rows come as plain tuples, oldest first; no permission
scope: these feed platform tasks, never a user's request."""

from __future__ import annotations

from datetime import datetime

from apps.serving.models import Feedback, PredictionLog

PREDICTION_FIELDS = ("id", "endpoint_id", "deployment_id", "created_at", "status_code", "latency_ms",
                     "predictions", "probabilities")
FEEDBACK_FIELDS = ("id", "endpoint_id", "prediction__deployment_id", "prediction__created_at", "correct",
                   "abs_error", "joined_at")


def prediction_log_after(*, after_id: int, limit: int) -> list[tuple]:
    """Up to ``limit`` log rows with id above ``after_id``, by id, as tuples of
    ``PREDICTION_FIELDS``."""
    return list(PredictionLog.objects.filter(pk__gt=after_id).order_by("pk")
                .values_list(*PREDICTION_FIELDS)[:limit])


def prediction_log_first_id_after(*, after_id: int) -> int | None:
    """The first log id above ``after_id`` (None when there is none)."""
    return PredictionLog.objects.filter(pk__gt=after_id).order_by("pk").values_list("pk", flat=True).first()


def feedback_joined_between(*, after: datetime | None, until: datetime) -> list[tuple]:
    """Feedback joined to a logged prediction in ``(after, until]``, by join
    time, as tuples of ``FEEDBACK_FIELDS``."""
    rows = Feedback.objects.filter(joined_at__lte=until, prediction__isnull=False)
    if after is not None:
        rows = rows.filter(joined_at__gt=after)
    return list(rows.order_by("joined_at", "pk").values_list(*FEEDBACK_FIELDS))


def feedback_first_prediction_joined_after(*, after: datetime | None) -> int | None:
    """The lowest prediction id among feedback joined after ``after``: a
    guard keeps those log rows until their feedback was read."""
    rows = Feedback.objects.filter(prediction__isnull=False)
    if after is not None:
        rows = rows.filter(joined_at__gt=after)
    return rows.order_by("prediction_id").values_list("prediction_id", flat=True).first()


__all__ = ["FEEDBACK_FIELDS", "PREDICTION_FIELDS", "feedback_first_prediction_joined_after",
           "feedback_joined_between", "prediction_log_after", "prediction_log_first_id_after"]
