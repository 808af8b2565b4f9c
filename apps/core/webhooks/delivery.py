"""Webhook deliveries: the outbox, and one signed HTTP attempt at a time.

``webhooks_emit`` (called by ``apps.core.events.publish``) writes one
delivery row per interested subscription in the publisher's transaction (so
a rolled-back change sends nothing) and enqueues ``webhook_delivery_send``
after commit. That task calls ``webhook_delivery_attempt`` and retries with
exponential backoff while the receiver fails with a network error, a 5xx,
408 or 429.

The database, not the broker, is the record of what is owed: every minute
``webhook_delivery_sweep`` (beat) re-sends deliveries whose first task never
ran, whose retry is overdue, or whose sender died mid-attempt, so a worker or
broker restart loses no delivery. An attempt first claims its row (status
``sending`` until a lease ends), so a sweep and a Celery retry arriving
together send once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import urllib3
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.choices import WEBHOOK_TEST_EVENT, DeliveryStatus
from apps.core.permissions import require_perm
from apps.core.services import audit_record
from apps.core.webhooks import outbound, signing
from apps.core.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from apps.core.webhooks.subjects import describe, subject_filter
from apps.core.webhooks.subscriptions import EVENT_NAME, allowed_hosts

TERMINAL = (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED)
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


def backoff_seconds(attempts_made: int) -> float:
    """Delay before the next attempt: the base, doubled after each failure, capped at an hour."""
    return min(_backoff_base() * 2 ** max(attempts_made - 1, 0), MAX_BACKOFF_SECONDS)


# --- Emitting -------------------------------------------------------------------------

def _body(*, delivery_uuid, event: str, envelope: dict | None, payload: dict) -> str:
    body = {
        **(envelope or {}),
        "id": str(delivery_uuid),
        "event": event,
        "created_at": timezone.now(),
        "data": payload,
    }
    return json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True)


def _queue_delivery(*, subscription: WebhookSubscription, event: str, envelope: dict | None, payload: dict):
    from apps.core.tasks import webhook_delivery_send

    delivery = WebhookDelivery(subscription=subscription, event=event)
    delivery.body = _body(delivery_uuid=delivery.uuid, event=event, envelope=envelope, payload=payload)
    delivery.save()
    transaction.on_commit(partial(webhook_delivery_send.delay, delivery.pk))
    return delivery


def webhooks_emit(*, event: str, payload: dict, subject: models.Model | None = None,
                  envelope: dict | None = None) -> int:
    """Deliver ``event`` to every active subscription that wants it: those
    scoped to ``subject`` and the unscoped ones. ``envelope`` adds top-level
    keys to the body next to ``id``, ``event``, ``created_at`` and ``data``
    (the registry's ``registered_model``). Runs inside the publisher's
    transaction (the deliveries then exist exactly when the change does);
    outside one it commits on its own. Returns how many were queued.
    Publishers call ``apps.core.events.publish``, which calls this."""
    if not EVENT_NAME.match(event):
        raise ValueError(f"not an event name: {event!r}")
    scope = Q(**subject_filter(None))
    if subject is not None:
        scope |= Q(**subject_filter(subject))
    wanted = [s for s in WebhookSubscription.objects.filter(scope, is_active=True) if s.wants(event)]
    if not wanted:
        return 0
    with transaction.atomic():
        for subscription in wanted:
            _queue_delivery(subscription=subscription, event=event, envelope=envelope, payload=payload)
    return len(wanted)


def webhook_send_test(*, subscription: WebhookSubscription, actor) -> WebhookDelivery:
    """Send a ``webhook.test`` event to this subscription alone (the "send
    test event" button), whatever events it is filtered to."""
    require_perm(actor, "core.change_webhooksubscription")
    with transaction.atomic():
        delivery = _queue_delivery(
            subscription=subscription, event=WEBHOOK_TEST_EVENT, envelope=describe(subscription),
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
                                      allowed_hosts=allowed_hosts(), excerpt_bytes=RESPONSE_EXCERPT_BYTES)
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
    hand-out lease and sent by a ``webhook_delivery_send`` task carrying the stamp,
    after commit. Safe to run concurrently: rows another sweep holds are
    skipped, and a row changed since it was read is not handed out.
    Returns (delivery id, stamp) pairs."""
    from apps.core.tasks import webhook_delivery_send

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
            transaction.on_commit(partial(webhook_delivery_send.apply_async, args=(pk,), kwargs={"claim": stamp},
                                          expires=DISPATCH_LEASE_SECONDS))
    return handed_out
