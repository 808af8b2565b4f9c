"""Alert email, grouped and rate-limited: at most one email per endpoint per
``ALERT_GROUP_WINDOW_SECONDS`` (5 minutes by default), listing every alert of
that endpoint that fired or resolved since its last email. It goes to the
people with the deploy right on the endpoint who asked for email
(``NotificationPreference``), through Django's email backend. Silenced
alerts are never marked for email (see ``evaluation.py``)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db.models import Max

from apps.core.models import NotificationPreference
from apps.core.permissions import users_with_perm
from apps.monitoring.alerts.models import Alert

logger = logging.getLogger(__name__)


def group_window() -> timedelta:
    return timedelta(seconds=settings.ALERT_GROUP_WINDOW_SECONDS)


def alert_recipients(*, endpoint) -> list:
    """Users with the deploy right on ``endpoint`` who want email and have an address."""
    users = [u for u in users_with_perm("serving.deploy_endpoint", endpoint) if u.email]
    wanted = set(NotificationPreference.objects.filter(user_id__in=[u.pk for u in users], email=True)
                 .values_list("user_id", flat=True))
    return [u for u in users if u.pk in wanted]


def _body(endpoint, alerts: list[Alert]) -> str:
    lines = [f"Alerts on endpoint {endpoint.slug}:", ""]
    for alert in alerts:
        rule = alert.rule
        value = "no data" if alert.value is None else f"{alert.value:.4g}"
        lines.append(f"- [{alert.state.upper()}] {rule.name} ({alert.severity or 'ok'}): {rule.metric} = {value}"
                     f" ({rule.comparison} {rule.warning_threshold} / {rule.critical_threshold})")
        if rule.runbook_url:
            lines.append(f"  runbook: {rule.runbook_url}")
    return "\n".join(lines)


def alert_emails_send(*, now: datetime) -> int:
    """Send the grouped email of each endpoint whose last one is older than
    the group window; returns how many emails went out. Alerts of an endpoint
    still inside its window wait for the next evaluation."""
    pending = list(Alert.objects.filter(notify_pending=True).select_related("rule__endpoint")
                   .order_by("rule__endpoint_id", "pk"))
    by_endpoint = defaultdict(list)
    for alert in pending:
        by_endpoint[alert.rule.endpoint].append(alert)
    sent = 0
    for endpoint, alerts in by_endpoint.items():
        last = Alert.objects.filter(rule__endpoint=endpoint).aggregate(last=Max("notified_at"))["last"]
        if last is not None and now - last < group_window():
            continue
        recipients = alert_recipients(endpoint=endpoint)
        firing = sum(1 for a in alerts if a.state == "firing")
        subject = f"[TracSeq MLOps] {endpoint.slug}: {firing} firing, {len(alerts) - firing} resolved"
        if recipients:
            message = EmailMessage(subject=subject, body=_body(endpoint, alerts), to=[u.email for u in recipients])
            try:
                get_connection().send_messages([message])
                sent += 1
            except Exception:  # the alert states and webhooks stand; a mail outage must not break evaluation
                logger.exception("sending the alert email of endpoint %s failed", endpoint.slug)
                continue
        Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(notify_pending=False, notified_at=now)
    return sent
