"""Webhooks: subscriptions, the outbox of deliveries, and one signed HTTP
attempt at a time.

``webhooks_emit`` writes one delivery row per interested subscription in the
caller's transaction (so a rolled-back change sends nothing) and enqueues the
sending after commit. The Celery task ``deliver_webhook`` calls
``webhook_delivery_attempt`` and retries with exponential backoff while the
receiver fails with a network error, a 5xx, 408 or 429.

Targets are configured by administrators only (the Admin role holds the
webhook permissions): the platform sends requests from inside the lab
network, so who may point it at a URL matters. Only http and https URLs are
accepted and redirects are never followed.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.errors import ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record, snapshot
from apps.registry import signing
from apps.registry.choices import WEBHOOK_TEST_EVENT, DeliveryStatus
from apps.registry.models import RegisteredModel, WebhookAttempt, WebhookDelivery, WebhookSubscription

EVENT_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
TERMINAL = (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED)
SUBSCRIPTION_AUDIT_FIELDS = ["name", "url", "registered_model", "events", "is_active"]
RESPONSE_EXCERPT_BYTES = 2048
MAX_BACKOFF_SECONDS = 3600.0


def _max_attempts() -> int:
    return int(getattr(settings, "WEBHOOK_MAX_ATTEMPTS", 6))


def _backoff_base() -> float:
    return float(getattr(settings, "WEBHOOK_RETRY_BACKOFF_SECONDS", 30.0))


def _timeout() -> float:
    return float(getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 5.0))


def backoff_seconds(attempts_made: int) -> float:
    """Delay before the next attempt: the base, doubled after each failure, capped at an hour."""
    return min(_backoff_base() * 2 ** max(attempts_made - 1, 0), MAX_BACKOFF_SECONDS)


# --- Subscriptions ----------------------------------------------------------------

def _clean_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed("A webhook URL must be an http:// or https:// URL with a host.",
                               details={"fields": {"url": ["Only http and https URLs are allowed."]}})
    if parts.username or parts.password:
        raise ValidationFailed("Put credentials in the signature secret, not in the webhook URL.",
                               details={"fields": {"url": ["Credentials in the URL are not allowed."]}})
    return url


def _clean_events(events) -> list[str]:
    if events is None:
        return []
    if not isinstance(events, (list, tuple)) or not all(isinstance(e, str) for e in events):
        raise ValidationFailed("events must be a list of event names.")
    bad = [e for e in events if not EVENT_NAME.match(e)]
    if bad:
        raise ValidationFailed(f"Not event names: {', '.join(bad)} (expected e.g. registry.model_version.created).",
                               details={"fields": {"events": bad}})
    return sorted(set(events))


def webhook_subscription_create(
    *, actor, name: str, url: str, registered_model: RegisteredModel | None = None, events=None,
    secret: str = "", is_active: bool = True,
) -> WebhookSubscription:
    """Subscribe ``url`` to events of one model (or of all when
    ``registered_model`` is None). Without a ``secret`` one is generated; the
    caller shows it once."""
    require_perm(actor, "registry.add_webhooksubscription")
    if registered_model is not None:
        require_perm(actor, "registry.view_registeredmodel", registered_model)
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A webhook needs a name.", details={"fields": {"name": ["Required."]}})
    if secret and len(secret) < 16:
        raise ValidationFailed("A webhook secret must have at least 16 characters.",
                               details={"fields": {"secret": ["Too short."]}})
    with transaction.atomic():
        subscription = WebhookSubscription.objects.create(
            name=name[:100], url=_clean_url(url), registered_model=registered_model,
            events=_clean_events(events), secret=secret or secrets.token_urlsafe(32),
            is_active=is_active, created_by=actor,
        )
        audit_record(actor=actor, action="webhook.created", target=subscription,
                     after=snapshot(subscription, SUBSCRIPTION_AUDIT_FIELDS))
    return subscription


def webhook_subscription_update(*, subscription: WebhookSubscription, actor, **changes) -> WebhookSubscription:
    """Change name, url, events, is_active or secret of a subscription."""
    require_perm(actor, "registry.change_webhooksubscription")
    allowed = {"name", "url", "events", "is_active", "secret"}
    if unknown := set(changes) - allowed:
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))} of a webhook.")
    with transaction.atomic():
        subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        before = snapshot(subscription, SUBSCRIPTION_AUDIT_FIELDS)
        if "name" in changes:
            if not (changes["name"] or "").strip():
                raise ValidationFailed("A webhook needs a name.")
            subscription.name = changes["name"].strip()[:100]
        if "url" in changes:
            subscription.url = _clean_url(changes["url"])
        if "events" in changes:
            subscription.events = _clean_events(changes["events"])
        if "is_active" in changes:
            subscription.is_active = bool(changes["is_active"])
        if changes.get("secret"):
            if len(changes["secret"]) < 16:
                raise ValidationFailed("A webhook secret must have at least 16 characters.")
            subscription.secret = changes["secret"]
        subscription.save()
        after = snapshot(subscription, SUBSCRIPTION_AUDIT_FIELDS)
        audit_record(actor=actor, action="webhook.updated", target=subscription, before=before, after=after,
                     message="secret rotated" if changes.get("secret") else "")
    return subscription


def webhook_subscription_delete(*, subscription: WebhookSubscription, actor) -> None:
    require_perm(actor, "registry.delete_webhooksubscription")
    with transaction.atomic():
        audit_record(actor=actor, action="webhook.deleted", target=subscription,
                     before=snapshot(subscription, SUBSCRIPTION_AUDIT_FIELDS))
        subscription.delete()


# --- Emitting -------------------------------------------------------------------------

def _body(*, delivery_uuid, event: str, registered_model: RegisteredModel | None, payload: dict) -> str:
    envelope = {
        "id": str(delivery_uuid),
        "event": event,
        "created_at": timezone.now(),
        "registered_model": registered_model.name if registered_model is not None else None,
        "data": payload,
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True)


def _queue_delivery(*, subscription: WebhookSubscription, event: str, registered_model, payload: dict):
    from apps.registry.tasks import deliver_webhook

    delivery = WebhookDelivery(subscription=subscription, event=event)
    delivery.body = _body(delivery_uuid=delivery.uuid, event=event, registered_model=registered_model,
                          payload=payload)
    delivery.save()
    transaction.on_commit(partial(deliver_webhook.delay, delivery.pk))
    return delivery


def webhooks_emit(*, event: str, registered_model: RegisteredModel | None, payload: dict) -> None:
    """Deliver ``event`` to every active subscription that wants it: those of
    ``registered_model`` and the global ones. Call it inside the transaction
    of the change (the deliveries then exist exactly when the change does);
    outside one it commits on its own. Any app may emit its own event names
    (e.g. serving's deployment events)."""
    if not EVENT_NAME.match(event):
        raise ValueError(f"not an event name: {event!r}")
    subscriptions = WebhookSubscription.objects.filter(is_active=True)
    if registered_model is None:
        subscriptions = subscriptions.filter(registered_model__isnull=True)
    else:
        subscriptions = subscriptions.filter(Q(registered_model__isnull=True) | Q(registered_model=registered_model))
    wanted = [s for s in subscriptions if s.wants(event)]
    if not wanted:
        return
    with transaction.atomic():
        for subscription in wanted:
            _queue_delivery(subscription=subscription, event=event, registered_model=registered_model,
                            payload=payload)


def webhook_send_test(*, subscription: WebhookSubscription, actor) -> WebhookDelivery:
    """Send a ``webhook.test`` event to this subscription alone (the "send
    test event" button), whatever events it is filtered to."""
    require_perm(actor, "registry.change_webhooksubscription")
    with transaction.atomic():
        delivery = _queue_delivery(
            subscription=subscription, event=WEBHOOK_TEST_EVENT, registered_model=subscription.registered_model,
            payload={"message": "Test event from TracSeq MLOps.", "subscription": subscription.name,
                     "sent_by": actor.get_username()},
        )
        audit_record(actor=actor, action="webhook.test_sent", target=subscription,
                     after={"delivery": str(delivery.uuid)})
    return delivery


# --- Sending ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DeliveryOutcome:
    status: str
    retry_in: float | None = None


def _post(subscription: WebhookSubscription, delivery: WebhookDelivery) -> tuple[int | None, str, str, float]:
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "TracSeq-MLOps-Webhook/1",
        signing.SIGNATURE_HEADER: signing.sign(body, subscription.secret),
        signing.EVENT_HEADER: delivery.event,
        signing.DELIVERY_HEADER: str(delivery.uuid),
    }
    status_code, error, excerpt = None, "", ""
    start = time.perf_counter()
    try:
        with requests.post(subscription.url, data=body, headers=headers, timeout=_timeout(),
                           allow_redirects=False, stream=True) as response:
            status_code = response.status_code
            excerpt = response.raw.read(RESPONSE_EXCERPT_BYTES, decode_content=True).decode("utf-8", "replace")
        if 300 <= status_code < 400:
            error = "Redirects are not followed; point the webhook at the final URL."
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    return status_code, error, excerpt, (time.perf_counter() - start) * 1000


def webhook_delivery_attempt(*, delivery_id: int) -> DeliveryOutcome:
    """Make one HTTP attempt of a delivery and log it. Returns when to try
    again (``retry_in`` seconds) or None when the delivery is finished."""
    delivery = WebhookDelivery.objects.select_related("subscription").filter(pk=delivery_id).first()
    if delivery is None:
        return DeliveryOutcome(status=DeliveryStatus.FAILED)
    if delivery.status in TERMINAL:
        return DeliveryOutcome(status=delivery.status)
    subscription = delivery.subscription
    if subscription.is_active:
        status_code, error, excerpt, elapsed_ms = _post(subscription, delivery)
    else:
        status_code, error, excerpt, elapsed_ms = None, "The subscription is disabled.", "", None
    succeeded = status_code is not None and 200 <= status_code < 300
    retryable = subscription.is_active and not succeeded and (
        status_code is None or status_code >= 500 or status_code in (408, 429))
    if status_code is not None and not succeeded and not error:
        error = f"HTTP {status_code}"
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        if delivery.status in TERMINAL:
            return DeliveryOutcome(status=delivery.status)
        delivery.attempt_count += 1
        WebhookAttempt.objects.create(delivery=delivery, number=delivery.attempt_count, status_code=status_code,
                                      response_time_ms=elapsed_ms, error=error, response_excerpt=excerpt)
        delivery.last_status_code = status_code
        delivery.last_error = error
        retry_in = None
        if succeeded:
            delivery.status = DeliveryStatus.SUCCEEDED
        elif retryable and delivery.attempt_count < _max_attempts():
            delivery.status = DeliveryStatus.RETRYING
            retry_in = backoff_seconds(delivery.attempt_count)
        else:
            delivery.status = DeliveryStatus.FAILED
        now = timezone.now()
        delivery.next_attempt_at = now + timedelta(seconds=retry_in) if retry_in is not None else None
        delivery.completed_at = None if retry_in is not None else now
        delivery.save()
    return DeliveryOutcome(status=delivery.status, retry_in=retry_in)
