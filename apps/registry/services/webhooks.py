"""Webhooks: subscriptions, the outbox of deliveries, and one signed HTTP
attempt at a time.

``webhooks_emit`` writes one delivery row per interested subscription in the
caller's transaction (so a rolled-back change sends nothing) and enqueues the
sending after commit. The Celery task ``deliver_webhook`` calls
``webhook_delivery_attempt`` and retries with exponential backoff while the
receiver fails with a network error, a 5xx, 408 or 429.

The database, not the broker, is the record of what is owed: every minute
``webhook_delivery_sweep`` (beat) re-sends deliveries whose first task never
ran, whose retry is overdue, or whose sender died mid-attempt, so a worker or
broker restart loses no delivery. An attempt first claims its row (status
``sending`` until a lease ends), so a sweep and a Celery retry arriving
together send once.

Targets are configured by administrators only (the Admin role holds the
webhook permissions): the platform sends requests from inside the lab
network, so who may point it at a URL matters. Only http and https URLs to
public addresses are accepted (see ``apps.registry.outbound``), checked when
the subscription is saved and again, on the resolved address, at each send;
redirects are never followed.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.errors import ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record, snapshot
from apps.registry import outbound, signing
from apps.registry.choices import WEBHOOK_TEST_EVENT, DeliveryStatus
from apps.registry.models import RegisteredModel, WebhookAttempt, WebhookDelivery, WebhookSubscription

EVENT_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
TERMINAL = (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED)
SUBSCRIPTION_AUDIT_FIELDS = ["name", "url", "registered_model", "events", "is_active"]
RESPONSE_EXCERPT_BYTES = 2048
MAX_BACKOFF_SECONDS = 3600.0
# How long an attempt holds its delivery: far above the task's time limit, so
# only a dead sender's claim expires.
SEND_LEASE_SECONDS = 300
# How long a delivery handed out by the sweep waits for its task (the task
# expires with it, and the next sweep hands it out again).
DISPATCH_LEASE_SECONDS = 300
# A new delivery's own task normally runs within seconds of the commit.
PENDING_GRACE_SECONDS = 60
SWEEP_BATCH = 500


def _max_attempts() -> int:
    return int(getattr(settings, "WEBHOOK_MAX_ATTEMPTS", 6))


def _backoff_base() -> float:
    return float(getattr(settings, "WEBHOOK_RETRY_BACKOFF_SECONDS", 30.0))


def _timeout() -> float:
    return float(getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 5.0))


def _allowed_hosts() -> list[str]:
    return list(getattr(settings, "WEBHOOK_ALLOWED_HOSTS", []) or [])


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
    try:
        parts.port  # noqa: B018 (a bad port raises here, not at the first send)
        outbound.check_url(url, allowed_hosts=_allowed_hosts())
    except ValueError:
        raise ValidationFailed("The webhook URL has an invalid port.",
                               details={"fields": {"url": ["Invalid port."]}}) from None
    except outbound.DestinationRefused as exc:
        raise ValidationFailed(f"Webhooks only go to public addresses: {exc}",
                               details={"fields": {"url": ["Not a public address."]}}) from None
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


@dataclass(frozen=True)
class _Response:
    status_code: int | None = None
    error: str = ""
    excerpt: str = ""
    elapsed_ms: float | None = None
    # A refused destination is a configuration problem: retrying cannot help.
    retryable: bool = True


def _post(subscription: WebhookSubscription, delivery: WebhookDelivery) -> _Response:
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "TracSeq-MLOps-Webhook/1",
        signing.SIGNATURE_HEADER: signing.sign(body, subscription.secret),
        signing.EVENT_HEADER: delivery.event,
        signing.DELIVERY_HEADER: str(delivery.uuid),
    }
    start = time.perf_counter()
    try:
        result = outbound.post_pinned(subscription.url, body=body, headers=headers, timeout=_timeout(),
                                      allowed_hosts=_allowed_hosts(), excerpt_bytes=RESPONSE_EXCERPT_BYTES)
    except outbound.DestinationRefused as exc:
        return _Response(error=f"Refused: {exc}"[:1000], retryable=False)
    except (OSError, urllib3.exceptions.HTTPError, ValueError) as exc:
        return _Response(error=f"{type(exc).__name__}: {exc}"[:1000],
                         elapsed_ms=(time.perf_counter() - start) * 1000)
    error = ""
    if 300 <= result.status_code < 400:
        error = "Redirects are not followed; point the webhook at the final URL."
    return _Response(status_code=result.status_code, error=error, excerpt=result.excerpt,
                     elapsed_ms=(time.perf_counter() - start) * 1000)


def _may_send(delivery: WebhookDelivery, *, claim: str | None) -> bool:
    if delivery.status in TERMINAL:
        return False
    if claim is not None:
        # Handed out by the sweep: only while that hand-out is the current one.
        return (delivery.status == DeliveryStatus.SENDING and delivery.next_attempt_at is not None
                and delivery.next_attempt_at == datetime.fromisoformat(claim))
    # The delivery's own task or its Celery retry; an attempt in flight
    # (``sending``) is left to its sender, or to the sweep once its lease ends.
    return delivery.status in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)


def webhook_delivery_attempt(*, delivery_id: int, claim: str | None = None) -> DeliveryOutcome:
    """Make one HTTP attempt of a delivery and log it. Returns when to try
    again (``retry_in`` seconds) or None when the delivery is finished.

    ``claim`` is the hand-out stamp of ``webhook_delivery_sweep``. The row is
    claimed (``sending``) before the request, so a duplicate task, a late
    Celery retry or a second sweep does not send the same delivery twice."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None:
            return DeliveryOutcome(status=DeliveryStatus.FAILED)
        if not _may_send(delivery, claim=claim):
            return DeliveryOutcome(status=delivery.status)
        delivery.status = DeliveryStatus.SENDING
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=SEND_LEASE_SECONDS)
        delivery.save(update_fields=["status", "next_attempt_at"])
    subscription = WebhookSubscription.objects.get(pk=delivery.subscription_id)
    if subscription.is_active:
        response = _post(subscription, delivery)
    else:
        response = _Response(error="The subscription is disabled.", retryable=False)
    status_code, error = response.status_code, response.error
    succeeded = status_code is not None and 200 <= status_code < 300
    retryable = response.retryable and not succeeded and (
        status_code is None or status_code >= 500 or status_code in (408, 429))
    if status_code is not None and not succeeded and not error:
        error = f"HTTP {status_code}"
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        if delivery.status in TERMINAL:
            return DeliveryOutcome(status=delivery.status)
        delivery.attempt_count += 1
        WebhookAttempt.objects.create(delivery=delivery, number=delivery.attempt_count, status_code=status_code,
                                      response_time_ms=response.elapsed_ms, error=error,
                                      response_excerpt=response.excerpt)
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


def webhook_delivery_sweep(*, limit: int = SWEEP_BATCH) -> list[tuple[int, str]]:
    """Hand out every delivery that is owed a send and has no live task: a
    new one whose task never ran, a retry past its time (its Celery retry
    was lost with a worker or broker), an attempt whose sender died
    (``sending`` past its lease). Each is stamped ``sending`` with a
    hand-out lease and sent by a ``deliver_webhook`` task carrying the stamp,
    after commit. Safe to run concurrently: rows another sweep holds are
    skipped, and a row changed since it was read is not handed out.
    Returns (delivery id, stamp) pairs."""
    from apps.registry.tasks import deliver_webhook

    now = timezone.now()
    due = (Q(status=DeliveryStatus.PENDING, created_at__lte=now - timedelta(seconds=PENDING_GRACE_SECONDS))
           | Q(status__in=[DeliveryStatus.RETRYING, DeliveryStatus.SENDING], next_attempt_at__lte=now)
           | Q(status=DeliveryStatus.RETRYING, next_attempt_at__isnull=True))
    lease = now + timedelta(seconds=DISPATCH_LEASE_SECONDS)
    handed_out = []
    with transaction.atomic():
        rows = (WebhookDelivery.objects.select_for_update(skip_locked=True).filter(due)
                .order_by("id").values_list("pk", "status", "next_attempt_at")[:limit])
        for pk, status, next_attempt_at in list(rows):
            # Compare-and-set: where row locks do not exist (SQLite), a
            # concurrent sweep that got there first makes this a no-op.
            claimed = WebhookDelivery.objects.filter(pk=pk, status=status, next_attempt_at=next_attempt_at).update(
                status=DeliveryStatus.SENDING, next_attempt_at=lease)
            if claimed:
                handed_out.append((pk, lease.isoformat()))
        for pk, stamp in handed_out:
            transaction.on_commit(partial(deliver_webhook.apply_async, args=(pk,), kwargs={"claim": stamp},
                                          expires=DISPATCH_LEASE_SECONDS))
    return handed_out
