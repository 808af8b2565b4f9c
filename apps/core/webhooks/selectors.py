"""What a user may see of webhook subscriptions and their deliveries."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from apps.core.errors import NotFound
from apps.core.permissions import filter_visible, has_perm, is_admin
from apps.core.webhooks.models import WebhookDelivery, WebhookSubscription
from apps.core.webhooks.subjects import subject_filter


def webhook_list(*, user, subject: models.Model | None = None):
    """Subscriptions the user may see: needs the webhook view capability;
    scoped ones also need their object to be visible (checked with the
    permission helper on the object's own model). With ``subject``: the
    subscriptions that hear of that object's events (its own and the
    unscoped ones)."""
    if not has_perm(user, "core.view_webhooksubscription"):
        return WebhookSubscription.objects.none()
    qs = WebhookSubscription.objects.all()
    if not is_admin(user):
        visible = Q(subject_type__isnull=True)
        scoped_types = (WebhookSubscription.objects.filter(subject_type__isnull=False)
                        .values_list("subject_type", flat=True).distinct())
        for content_type in ContentType.objects.filter(pk__in=list(scoped_types)):
            model = content_type.model_class()
            if model is None:
                continue
            visible |= Q(subject_type=content_type,
                         subject_id__in=filter_visible(user, model.objects.all()).values("pk"))
        qs = qs.filter(visible)
    if subject is not None:
        qs = qs.filter(Q(**subject_filter(None)) | Q(**subject_filter(subject)))
    return qs.select_related("subject_type", "created_by").order_by("name", "id")


def webhook_get(*, user, pk: int) -> WebhookSubscription:
    found = webhook_list(user=user).filter(pk=pk).first()
    if found is None:
        raise NotFound("Webhook not found.")
    return found


def webhook_delivery_list(*, user, subscription: WebhookSubscription | None = None,
                          subject: models.Model | None = None):
    """Deliveries the user may see; of one ``subscription`` when given (which
    the caller got through ``webhook_get``, so it is visible already)."""
    if subscription is not None:
        qs = WebhookDelivery.objects.filter(subscription=subscription)
    else:
        subscriptions = webhook_list(user=user, subject=subject)
        qs = WebhookDelivery.objects.filter(subscription__in=subscriptions.values("pk"))
    return qs.select_related("subscription").prefetch_related("attempts").order_by("-created_at", "-id")
