"""Evaluating alert rules: each due rule's metric read through a provider,
the alert moved by the state machine (``machine.next_state``), every change
of state stored as an ``AlertTransition`` and audited as ``alert.<state>``.
Firing and resolving are announced as ``alert.firing`` / ``alert.resolved``
(webhooks get them signed), unless a silence covers the alert; the grouped
email follows in ``notify.py``."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core import events
from apps.core.services import audit_record
from apps.monitoring.alerts import machine, notify, values
from apps.monitoring.alerts.models import Alert, AlertRule, AlertTransition, Silence

# Beat runs evaluation every minute; a rule evaluated less than this long
# ago is not due yet (a little under a minute, so a late beat skips nothing).
EVALUATION_INTERVAL = timedelta(seconds=55)
ANNOUNCED = {machine.FIRING: "alert.firing", machine.RESOLVED: "alert.resolved"}


def silence_covers(*, rule: AlertRule, now: datetime) -> bool:
    """Whether an active silence covers ``rule``'s alert at ``now``."""
    return Silence.objects.filter(Q(rule=rule) | Q(rule__isnull=True, endpoint_id=rule.endpoint_id),
                                  starts_at__lte=now, ends_at__gt=now).exists()


def alert_payload(alert: Alert, rule: AlertRule) -> dict:
    return {
        "alert_id": alert.pk, "rule_id": rule.pk, "rule": rule.name, "endpoint": rule.endpoint.slug,
        "deployment_id": rule.deployment_id, "metric": rule.metric, "comparison": rule.comparison,
        "warning_threshold": rule.warning_threshold, "critical_threshold": rule.critical_threshold,
        "value": alert.value, "state": alert.state, "severity": alert.severity,
        "active_since": alert.active_since.isoformat() if alert.active_since else None,
        "labels": rule.labels, "runbook_url": rule.runbook_url,
    }


def alert_evaluate(*, rule: AlertRule, value: float | None, now: datetime) -> AlertTransition | None:
    """One evaluation of ``rule`` with its metric at ``value``; returns the
    transition when the alert changed state."""
    breach = machine.breach_severity(value, comparison=rule.comparison, warning=rule.warning_threshold,
                                     critical=rule.critical_threshold)
    with transaction.atomic():
        alert, _ = Alert.objects.select_for_update().get_or_create(rule=rule)
        before = machine.AlertStatus(state=alert.state, severity=alert.severity, active_since=alert.active_since,
                                     last_breach_at=alert.last_breach_at)
        after = machine.next_state(before, breach, now, rule)
        alert.state, alert.severity = after.state, after.severity
        alert.active_since, alert.last_breach_at = after.active_since, after.last_breach_at
        alert.value, alert.last_evaluated = value, now
        transition = None
        if after.state != before.state:
            silenced = silence_covers(rule=rule, now=now)
            if after.state == machine.FIRING:
                alert.acked_by, alert.acked_at = None, None  # a new firing needs a new acknowledgement
            if after.state in ANNOUNCED and not silenced:
                alert.notify_pending = True
            transition = AlertTransition.objects.create(alert=alert, from_state=before.state, to_state=after.state,
                                                        severity=after.severity, value=value, silenced=silenced,
                                                        at=now)
            audit_record(actor=None, action=f"alert.{after.state}", target=alert,
                         before={"state": before.state, "severity": before.severity},
                         after={"state": after.state, "severity": after.severity, "value": value,
                                "rule": rule.name, "silenced": silenced})
            if after.state in ANNOUNCED and not silenced:
                events.publish(ANNOUNCED[after.state], alert_payload(alert, rule), subject=rule.endpoint)
        alert.save()
    return transition


def alert_rules_evaluate(*, now: datetime | None = None, provider: values.MetricValue | None = None) -> dict:
    """Evaluate every enabled rule that is due, then send the grouped emails.
    ``provider`` (tests) replaces the metric source."""
    now = now or timezone.now()
    value_of = provider or values.provider()
    due = (AlertRule.objects.filter(enabled=True)
           .filter(Q(alert__isnull=True) | Q(alert__last_evaluated__isnull=True)
                   | Q(alert__last_evaluated__lte=now - EVALUATION_INTERVAL))
           .select_related("endpoint", "deployment").order_by("pk"))
    evaluated = changed = 0
    for rule in due:
        value = value_of(endpoint=rule.endpoint, deployment=rule.deployment, metric=rule.metric,
                         window_seconds=rule.window_seconds, now=now)
        evaluated += 1
        if alert_evaluate(rule=rule, value=value, now=now) is not None:
            changed += 1
    emails = notify.alert_emails_send(now=now)
    return {"evaluated": evaluated, "changed": changed, "emails": emails}
