"""What a user may see of webhook subscriptions and their deliveries."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from apps.core.errors import NotFound
from apps.core.permissions import filter_visible, has_perm
from apps.core.webhooks import subjects
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
    # Scoped subscriptions are visible with their object, for the kinds of
    # object the apps registered (apps.core.webhooks.subjects): one
    # permission-helper subquery per kind (Admins see every object), no
    # extra query. A scope of a kind no app registered names no object a
    # user could be kept from; it is shown like a global subscription.
    registered = [ContentType.objects.get_for_model(kind.model) for kind in subjects.kinds()]
    visible = Q(subject_type__isnull=True) | ~Q(subject_type__in=registered)
    for kind, content_type in zip(subjects.kinds(), registered, strict=True):
        visible |= Q(subject_type=content_type,
                     subject_id__in=filter_visible(user, kind.model.objects.all()).values("pk"))
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
