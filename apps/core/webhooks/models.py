"""Webhook subscriptions, their deliveries (the outbox) and every attempt.

Registered through ``apps/core/models.py``; the tables are ``core_webhook*``
(moved from the registry by ``registry/0007_webhooks_to_core``)."""

import uuid

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models

from apps.core.choices import DeliveryStatus


class WebhookSubscription(models.Model):
    """An HTTP endpoint told about domain events, optionally only about those
    of one object (the ``subject``, e.g. one registered model). Configured by
    administrators only: the platform makes requests to these URLs from
    inside the lab network."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    subject_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                     help_text="Empty: events of every object.")
    subject_id = models.PositiveBigIntegerField(null=True, blank=True)
    subject = GenericForeignKey("subject_type", "subject_id")
    # Event names or prefixes ("serving.*") to deliver; an empty list means every event.
    events = models.JSONField(default=list, blank=True)
    # Kept in clear because signing needs it; shown to the creator once.
    secret = models.CharField(max_length=128)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="webhook_subject_idx")]
        constraints = [models.CheckConstraint(
            condition=models.Q(subject_type__isnull=True, subject_id__isnull=True)
            | models.Q(subject_type__isnull=False, subject_id__isnull=False),
            name="webhook_subject_complete")]

    def __str__(self):
        return self.name

    def wants(self, event: str) -> bool:
        """True for an event named exactly in ``events`` or under one of its
        prefixes (``registry.*`` matches ``registry.alias.moved``)."""
        if not self.is_active:
            return False
        if not self.events:
            return True
        return any(event == wanted or (wanted.endswith(".*") and event.startswith(wanted[:-1]))
                   for wanted in self.events)


class WebhookDelivery(models.Model):
    """One event sent to one subscription: the exact signed body, and its
    outcome after every attempt."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=100, db_index=True)
    # The raw JSON body, signed and sent byte for byte the same on every retry.
    body = models.TextField()
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING,
                              db_index=True)
    attempt_count = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self):
        return f"{self.event} → {self.subscription} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: what came back and how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_time_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="core_webhook_attempt_number")]

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error[:40]}"
