"""Canary judges: comparative analyses a canary step may ask for with
``config.analysis`` (Kayenta's pluggable judges, for Spinnaker).

A judge compares the canary with the stable version(s) it replaces on the
same window (since the step started) and names what is significantly worse,
or returns None. Serving does not know how: an app above it registers its
judge here in ``AppConfig.ready()`` (abtests registers ``"sequential"``, its
always-valid sequential test), so serving imports nothing from above.
``"thresholds"`` (the default) is no comparison: only the absolute limits of
``policy.judge`` apply, which every analysis keeps as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

THRESHOLDS = "thresholds"


@dataclass(frozen=True)
class WindowCounts:
    """Sufficient statistics of one side of a canary comparison: requests
    answered or failed by the model (4xx excluded), server errors among them,
    latency sum and sum of squares of the answered ones, and joined feedback
    with a correctness verdict (``judged``) and how many were ``correct``."""

    requests: int = 0
    errors: int = 0
    latency_sum: float = 0.0
    latency_sum_squares: float = 0.0
    judged: int = 0
    correct: int = 0

    @property
    def answered(self) -> int:
        return self.requests - self.errors


Judge = Callable[[WindowCounts, WindowCounts, dict], "str | None"]
_judges: dict[str, Judge] = {}


def register(name: str, judge: Judge) -> None:
    """Make ``config.analysis = name`` available to canary deployments."""
    _judges[name] = judge


def names() -> list[str]:
    return [THRESHOLDS, *sorted(_judges)]


def window_counts(*, deployment_ids: list[int], start: datetime) -> WindowCounts:
    """The counts of ``deployment_ids`` together since ``start`` (one aggregate
    query on the prediction log, one on feedback)."""
    from django.db.models import Count, F, Q, Sum

    from apps.serving.models import Feedback, PredictionLog

    logs = (PredictionLog.objects.filter(deployment_id__in=deployment_ids, created_at__gte=start)
            .exclude(status_code__gte=400, status_code__lt=500)
            .aggregate(requests=Count("id"), errors=Count("id", filter=Q(status_code__gte=500)),
                       latency_sum=Sum("latency_ms", filter=Q(status_code__lt=400)),
                       latency_sum_squares=Sum(F("latency_ms") * F("latency_ms"), filter=Q(status_code__lt=400))))
    feedback = (Feedback.objects.filter(deployment_id__in=deployment_ids, prediction__created_at__gte=start,
                                        correct__isnull=False)
                .aggregate(judged=Count("id"), correct=Count("id", filter=Q(correct=True))))
    return WindowCounts(requests=logs["requests"], errors=logs["errors"],
                        latency_sum=float(logs["latency_sum"] or 0.0),
                        latency_sum_squares=float(logs["latency_sum_squares"] or 0.0),
                        judged=feedback["judged"], correct=feedback["correct"])


def canary_analysis(*, deployment, start: datetime) -> str | None:
    """What the deployment's analysis finds against it since ``start``: a
    breach to roll back for, or None (no analysis configured, no stable
    version to compare with, or nothing significantly worse)."""
    name = (deployment.config or {}).get("analysis", THRESHOLDS)
    stable = [int(pk) for pk, weight in (deployment.rollout_baseline or {}).items() if float(weight) > 0]
    if name == THRESHOLDS or not stable:
        return None
    judge = _judges.get(name)
    if judge is None:
        return f"the canary analysis {name!r} is not available on this platform"
    canary = window_counts(deployment_ids=[deployment.pk], start=start)
    return judge(canary, window_counts(deployment_ids=stable, start=start), deployment.config)


__all__ = ["THRESHOLDS", "WindowCounts", "canary_analysis", "names", "register", "window_counts"]
