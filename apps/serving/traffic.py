"""Reads of an endpoint's traffic for the apps above serving that plan or
chart on it (A/B tests): how many units an endpoint sees a day, and a held
split's per-day sums per arm. Plain aggregates in the database over indexed
rows (``prediction_endpoint_time_idx``, ``prediction_split_time_idx``);
serving knows nothing about tests: a split is an id."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.serving.models import Endpoint, Feedback, PredictionLog

# A 4xx is the caller's error, not the model's: it is no observation.
_OBSERVED = Q(status_code__lt=400) | Q(status_code__gte=500)


def endpoint_traffic_per_day(*, endpoint: Endpoint, days: int = 7) -> dict:
    """Units and requests a day over the last ``days`` days. A request
    without a ``unit_id`` counts as its own unit, as the router treats it."""
    since = timezone.now() - timedelta(days=days)
    totals = (PredictionLog.objects.filter(endpoint=endpoint, created_at__gte=since).filter(_OBSERVED)
              .aggregate(requests=Count("id"), anonymous=Count("id", filter=Q(unit_id="")),
                         units=Count("unit_id", distinct=True, filter=~Q(unit_id=""))))
    units = totals["units"] + totals["anonymous"]
    return {"days": days, "units": units, "requests": totals["requests"],
            "units_per_day": units / days, "requests_per_day": totals["requests"] / days}


def split_daily_sums(*, split_id: int) -> dict:
    """Per day (UTC date of the request) and arm, the sums a split's rows give:
    ``{"predictions": [{day, arm, requests, errors, answered, latency_sum,
    latency_squares}], "feedback": [{day, arm, labelled, correct, abs_n,
    abs_sum, abs_squares}]}``; feedback counts on the day of the prediction
    it labels, for the arm that answered it."""
    predictions = (
        PredictionLog.objects.filter(split_id=split_id, split_arm__isnull=False).filter(_OBSERVED)
        .annotate(day=TruncDate("created_at")).values("day", arm=F("split_arm"))
        .annotate(requests=Count("id"), errors=Count("id", filter=Q(status_code__gte=500)),
                  answered=Count("id", filter=Q(status_code__lt=400)),
                  latency_sum=Sum("latency_ms", filter=Q(status_code__lt=400)),
                  latency_squares=Sum(F("latency_ms") * F("latency_ms"), filter=Q(status_code__lt=400)))
        .order_by("day", "arm"))
    feedback = (
        Feedback.objects.filter(prediction__split_id=split_id, prediction__split_arm__isnull=False,
                                joined_at__isnull=False)
        .annotate(day=TruncDate("prediction__created_at")).values("day", arm=F("prediction__split_arm"))
        .annotate(labelled=Count("id", filter=Q(correct__isnull=False)), correct=Count("id", filter=Q(correct=True)),
                  abs_n=Count("abs_error"), abs_sum=Sum("abs_error"), abs_squares=Sum(F("abs_error") * F("abs_error")))
        .order_by("day", "arm"))
    return {"predictions": list(predictions), "feedback": list(feedback)}
