"""Silences and acknowledgements: who is on it, and what stays quiet.
Both need the deploy right on the endpoint and are audited."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.core.errors import InvalidState, ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record
from apps.monitoring.alerts.models import Alert, AlertRule, Silence

MAX_SILENCE = timedelta(days=30)


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details={"fields": {field: [message]}})


def silence_create(*, actor, endpoint, ends_at: datetime, reason: str, rule: AlertRule | None = None,
                   starts_at: datetime | None = None) -> Silence:
    """Silence one rule's alert, or every alert of ``endpoint``, until ``ends_at``."""
    require_perm(actor, "serving.deploy_endpoint", endpoint)
    now = timezone.now()
    starts_at = starts_at or now
    if rule is not None and rule.endpoint_id != endpoint.pk:
        raise _invalid("rule_id", "is not a rule of this endpoint")
    if ends_at <= starts_at or ends_at <= now:
        raise _invalid("ends_at", "must be after the start and in the future")
    if ends_at - starts_at > MAX_SILENCE:
        raise _invalid("ends_at", "a silence lasts at most 30 days")
    if not isinstance(reason, str) or not reason.strip():
        raise _invalid("reason", "say why the alerts are silenced")
    with transaction.atomic():
        silence = Silence.objects.create(endpoint=endpoint, rule=rule, starts_at=starts_at, ends_at=ends_at,
                                         reason=reason.strip()[:500], created_by=actor)
        audit_record(actor=actor, action="silence.created", target=silence,
                     after={"endpoint": endpoint.slug, "rule_id": rule.pk if rule else None,
                            "starts_at": starts_at, "ends_at": ends_at, "reason": silence.reason})
    return silence


def silence_expire(*, actor, silence: Silence) -> Silence:
    """End a silence now (409 when it already ended)."""
    require_perm(actor, "serving.deploy_endpoint", silence.endpoint)
    now = timezone.now()
    with transaction.atomic():
        silence = Silence.objects.select_for_update().get(pk=silence.pk)
        if silence.ends_at <= now:
            raise InvalidState("This silence has already ended.")
        before = {"starts_at": silence.starts_at, "ends_at": silence.ends_at}
        if silence.starts_at >= now:
            silence.starts_at = now - timedelta(microseconds=1)
        silence.ends_at = now
        silence.save(update_fields=["starts_at", "ends_at"])
        audit_record(actor=actor, action="silence.expired", target=silence, before=before,
                     after={"starts_at": silence.starts_at, "ends_at": silence.ends_at})
    return silence


def alert_acknowledge(*, actor, alert: Alert) -> Alert:
    """Someone is on it: record who acknowledged a firing alert, and when."""
    require_perm(actor, "serving.deploy_endpoint", alert.rule.endpoint)
    with transaction.atomic():
        alert = Alert.objects.select_for_update().select_related("rule__endpoint").get(pk=alert.pk)
        if alert.state != "firing":
            raise InvalidState("Only a firing alert can be acknowledged.")
        if alert.acked_by_id is not None:
            raise InvalidState("This alert is already acknowledged.")
        alert.acked_by, alert.acked_at = actor, timezone.now()
        alert.save(update_fields=["acked_by", "acked_at"])
        audit_record(actor=actor, action="alert.acknowledged", target=alert,
                     after={"acked_at": alert.acked_at, "rule": alert.rule.name})
    return alert
