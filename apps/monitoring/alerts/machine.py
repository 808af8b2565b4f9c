"""The alert state machine, with Prometheus's semantics (no Django).

An alert starts ``inactive``. When its rule's condition breaches it becomes
``pending``; once it has breached for ``for_seconds`` without a gap it is
``firing`` (at once when ``for_seconds`` is 0). A pending alert whose breach
stops goes back to ``inactive`` without ever having fired. A firing alert
keeps firing while it breaches, and for ``keep_firing_for_seconds`` after the
last breach (so a flapping metric does not resolve and re-fire every
evaluation); then it is ``resolved``, and a new breach starts the cycle
again. See the Prometheus documentation, "Alerting rules" (``for`` and
``keep_firing_for``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

INACTIVE, PENDING, FIRING, RESOLVED = "inactive", "pending", "firing", "resolved"
WARNING, CRITICAL = "warning", "critical"
COMPARISONS = {
    ">": lambda value, threshold: value > threshold,
    ">=": lambda value, threshold: value >= threshold,
    "<": lambda value, threshold: value < threshold,
    "<=": lambda value, threshold: value <= threshold,
}


class Timing(Protocol):
    for_seconds: int
    keep_firing_for_seconds: int


@dataclass(frozen=True)
class AlertStatus:
    """Where an alert stands: ``active_since`` is when the current breach
    began (pending or firing), ``last_breach_at`` the last evaluation that
    breached."""

    state: str = INACTIVE
    severity: str = ""
    active_since: datetime | None = None
    last_breach_at: datetime | None = None


def breach_severity(value: float | None, *, comparison: str, warning: float | None,
                    critical: float | None) -> str | None:
    """``critical``, ``warning`` or None for a metric ``value`` (None: no data, no breach)."""
    if value is None:
        return None
    compare = COMPARISONS[comparison]
    if critical is not None and compare(value, critical):
        return CRITICAL
    if warning is not None and compare(value, warning):
        return WARNING
    return None


def next_state(status: AlertStatus, breach: str | None, now: datetime, rule: Timing) -> AlertStatus:
    """The alert's status after one evaluation at ``now`` whose breach (a
    severity or None) is ``breach``."""
    hold = timedelta(seconds=rule.for_seconds)
    keep = timedelta(seconds=rule.keep_firing_for_seconds)
    if breach is not None:
        if status.state in (INACTIVE, RESOLVED):
            state = FIRING if hold <= timedelta(0) else PENDING
            return AlertStatus(state=state, severity=breach, active_since=now, last_breach_at=now)
        if status.state == PENDING:
            state = FIRING if now - status.active_since >= hold else PENDING
            return replace(status, state=state, severity=breach, last_breach_at=now)
        return replace(status, severity=breach, last_breach_at=now)
    if status.state == PENDING:
        return AlertStatus(state=INACTIVE)
    if status.state == FIRING:
        if status.last_breach_at is not None and now - status.last_breach_at < keep:
            return status
        return replace(status, state=RESOLVED)
    return status
