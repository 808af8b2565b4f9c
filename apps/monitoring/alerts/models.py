"""Alerting records: rules on an endpoint's live numbers, one alert per rule
with its transitions, and silences. Registered with the monitoring app
through ``apps/monitoring/models.py``."""

from django.conf import settings
from django.db import models

from apps.monitoring.alerts.choices import AlertMetric, AlertSeverity, AlertState, Comparison


class AlertRule(models.Model):
    """A condition on one metric of an endpoint (or one of its deployments)
    over a window: ``value <comparison> threshold``, warning and critical.
    It must hold ``for_seconds`` before the alert fires, and the alert keeps
    firing ``keep_firing_for_seconds`` after it last held. Seen and changed
    through the endpoint's rights (view to read, deploy to change)."""

    endpoint = models.ForeignKey("serving.Endpoint", on_delete=models.CASCADE, related_name="alert_rules")
    deployment = models.ForeignKey("serving.Deployment", on_delete=models.CASCADE, null=True, blank=True,
                                   related_name="alert_rules")
    name = models.CharField(max_length=100)
    metric = models.CharField(max_length=20, choices=AlertMetric.choices)
    window_seconds = models.PositiveIntegerField(default=300)
    comparison = models.CharField(max_length=2, choices=Comparison.choices, default=Comparison.GT)
    warning_threshold = models.FloatField(null=True, blank=True)
    critical_threshold = models.FloatField(null=True, blank=True)
    for_seconds = models.PositiveIntegerField(default=0)
    keep_firing_for_seconds = models.PositiveIntegerField(default=0)
    labels = models.JSONField(default=dict, blank=True)
    runbook_url = models.URLField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["endpoint_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "name"], name="alert_rule_name_per_endpoint"),
            models.CheckConstraint(condition=models.Q(warning_threshold__isnull=False)
                                   | models.Q(critical_threshold__isnull=False),
                                   name="alert_rule_has_threshold"),
        ]

    def __str__(self):
        return f"{self.name} on endpoint {self.endpoint_id}"


class Alert(models.Model):
    """The current state of one rule's alert: inactive, pending, firing or
    resolved, with the severity and value of the last evaluation. Every
    change of state is an ``AlertTransition``."""

    rule = models.OneToOneField(AlertRule, on_delete=models.CASCADE, related_name="alert")
    state = models.CharField(max_length=10, choices=AlertState.choices, default=AlertState.INACTIVE,
                             db_index=True)
    severity = models.CharField(max_length=10, choices=AlertSeverity.choices, default="", blank=True)
    value = models.FloatField(null=True, blank=True)
    active_since = models.DateTimeField(null=True, blank=True)
    last_breach_at = models.DateTimeField(null=True, blank=True)
    last_evaluated = models.DateTimeField(null=True, blank=True)
    acked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="+")
    acked_at = models.DateTimeField(null=True, blank=True)
    # Fired or resolved since the endpoint's last alert email (grouping).
    notify_pending = models.BooleanField(default=False)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-active_since", "-id"]

    def __str__(self):
        return f"Alert {self.pk} ({self.state})"


class AlertTransition(models.Model):
    """One change of an alert's state, kept for its history."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=10, choices=AlertState.choices)
    to_state = models.CharField(max_length=10, choices=AlertState.choices)
    severity = models.CharField(max_length=10, choices=AlertSeverity.choices, blank=True)
    value = models.FloatField(null=True, blank=True)
    silenced = models.BooleanField(default=False)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.from_state} → {self.to_state}"


class Silence(models.Model):
    """No notifications for one rule's alert, or every alert of an endpoint,
    from ``starts_at`` to ``ends_at``. The alerts still change state."""

    endpoint = models.ForeignKey("serving.Endpoint", on_delete=models.CASCADE, related_name="alert_silences")
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, null=True, blank=True, related_name="silences")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")),
                                              name="silence_ends_after_start")]

    def __str__(self):
        return f"Silence {self.pk} on endpoint {self.endpoint_id}"
