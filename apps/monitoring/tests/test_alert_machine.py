"""The alert state machine with a controlled clock (no database)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apps.monitoring.alerts.machine import (
    CRITICAL,
    FIRING,
    INACTIVE,
    PENDING,
    RESOLVED,
    WARNING,
    AlertStatus,
    breach_severity,
    next_state,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Rule:
    for_seconds: int = 120
    keep_firing_for_seconds: int = 180


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def run(breaches, rule=None, status=None):
    """Feed one breach (or None) per minute; the states seen after each."""
    rule = rule or Rule()
    status = status or AlertStatus()
    seen = []
    for minute, breach in enumerate(breaches):
        status = next_state(status, breach, at(minute), rule)
        seen.append(status.state)
    return seen, status


def test_a_breach_is_pending_until_it_has_lasted_for_then_fires():
    seen, status = run([WARNING, WARNING, WARNING])
    assert seen == [PENDING, PENDING, FIRING]
    assert status.active_since == at(0) and status.severity == WARNING


def test_a_pending_alert_whose_breach_stops_never_fires():
    seen, _ = run([WARNING, None, WARNING, WARNING, WARNING])
    assert seen == [PENDING, INACTIVE, PENDING, PENDING, FIRING]


def test_without_for_an_alert_fires_at_once():
    seen, _ = run([CRITICAL], rule=Rule(for_seconds=0))
    assert seen == [FIRING]


def test_keep_firing_for_rides_out_a_flapping_metric_then_resolves():
    seen, status = run([WARNING, WARNING, WARNING, None, WARNING, None, None, None, None])
    # Fires at minute 2; the gaps at 3 and 5..7 are inside keep_firing_for (3 min after the last breach at 4).
    assert seen == [PENDING, PENDING, FIRING, FIRING, FIRING, FIRING, FIRING, RESOLVED, RESOLVED]
    assert status.last_breach_at == at(4)


def test_a_resolved_alert_fires_again_on_a_new_breach_after_for():
    _, resolved = run([CRITICAL, None], rule=Rule(for_seconds=0, keep_firing_for_seconds=0))
    assert resolved.state == RESOLVED
    again = next_state(resolved, WARNING, at(10), Rule(for_seconds=60, keep_firing_for_seconds=0))
    assert (again.state, again.active_since) == (PENDING, at(10))
    fired = next_state(again, CRITICAL, at(11), Rule(for_seconds=60, keep_firing_for_seconds=0))
    assert (fired.state, fired.severity) == (FIRING, CRITICAL)


def test_severity_follows_the_thresholds_in_the_comparisons_direction():
    above = {"comparison": ">", "warning": 0.05, "critical": 0.10}
    assert [breach_severity(v, **above) for v in (0.01, 0.05, 0.07, 0.2, None)] == [
        None, None, WARNING, CRITICAL, None]
    below = {"comparison": "<=", "warning": 0.85, "critical": 0.75}
    assert [breach_severity(v, **below) for v in (0.9, 0.85, 0.75)] == [None, WARNING, CRITICAL]
