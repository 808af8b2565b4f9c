"""Reads of alerting, scoped through the endpoint's view right."""

from __future__ import annotations

from apps.core.errors import NotFound
from apps.core.permissions import filter_visible
from apps.monitoring.alerts.choices import AlertState, EndpointHealth
from apps.monitoring.alerts.machine import CRITICAL
from apps.monitoring.alerts.models import Alert, AlertRule, Silence

VIEW = "serving.view_endpoint"


def alert_rule_list(*, user, endpoint=None):
    qs = AlertRule.objects.select_related("endpoint", "alert")
    if endpoint is not None:
        qs = qs.filter(endpoint=endpoint)
    return filter_visible(user, qs, VIEW, via="endpoint").order_by("endpoint__slug", "name")


def alert_rule_get(*, user, pk) -> AlertRule:
    rule = alert_rule_list(user=user).filter(pk=pk).first()
    if rule is None:
        raise NotFound("Alert rule not found.")
    return rule


def alert_list(*, user, state: str | None = None, endpoint_slug: str | None = None):
    qs = Alert.objects.select_related("rule__endpoint", "acked_by")
    if state:
        qs = qs.filter(state=state)
    if endpoint_slug:
        qs = qs.filter(rule__endpoint__slug=endpoint_slug)
    return filter_visible(user, qs, VIEW, via="rule__endpoint").order_by("-active_since", "-id")


def alert_get(*, user, pk) -> Alert:
    alert = alert_list(user=user).filter(pk=pk).first()
    if alert is None:
        raise NotFound("Alert not found.")
    return alert


def silence_list(*, user, endpoint_slug: str | None = None):
    qs = Silence.objects.select_related("endpoint", "created_by")
    if endpoint_slug:
        qs = qs.filter(endpoint__slug=endpoint_slug)
    return filter_visible(user, qs, VIEW, via="endpoint")


def silence_get(*, user, pk) -> Silence:
    silence = silence_list(user=user).filter(pk=pk).first()
    if silence is None:
        raise NotFound("Silence not found.")
    return silence


def endpoint_health(*, endpoint) -> str:
    """``critical`` when a critical alert of the endpoint fires, ``warning``
    when any other does, else ``healthy``. The caller has checked the
    endpoint is visible."""
    severities = set(Alert.objects.filter(rule__endpoint=endpoint, state=AlertState.FIRING)
                     .values_list("severity", flat=True))
    if CRITICAL in severities:
        return EndpointHealth.CRITICAL
    return EndpointHealth.WARNING if severities else EndpointHealth.HEALTHY
