"""Domain events: how a lower app tells higher apps that something happened.

A service publishes inside its transaction; subscribers run after commit (or
not at all when the transaction rolls back). Higher apps subscribe in their
``AppConfig.ready()``. Handlers should be quick (enqueue a task); an error in
one handler is logged and does not stop the others.

Event names are ``<app>.<entity>.<happened>``, e.g.
``registry.model_version.stage_changed``; the payload is JSON-safe.

Outside the process, events reach webhooks (``apps.core.webhooks``):
``publish`` writes a delivery for each matching subscription in the
publisher's transaction, so a change and the deliveries announcing it commit
or roll back together. ``subject`` (a model instance) scopes the event to one
object, for subscriptions scoped to it; ``envelope`` adds top-level keys to
the webhook body. ``webhooks=False`` keeps an event in-process (an internal
twin of an event already sent under another name).

Notifications (the inbox, ``apps.core.services.notifications_send``) are
in-process subscribers: the dashboard subscribes its receivers in
``DashboardConfig.ready()`` with ``subscribe(name, handler)`` — exact names,
or ``subscribe("*", handler)`` and a prefix test for a family of events.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

from django.db import models, transaction

logger = logging.getLogger(__name__)

Handler = Callable[[str, dict], None]
_subscribers: dict[str, list[Handler]] = defaultdict(list)
_wildcard: list[Handler] = []


def subscribe(event: str, handler: Handler) -> None:
    """Call ``handler(event, payload)`` after commit for ``event`` ("*" for all)."""
    target = _wildcard if event == "*" else _subscribers[event]
    if handler not in target:
        target.append(handler)


def unsubscribe(event: str, handler: Handler) -> None:
    target = _wildcard if event == "*" else _subscribers[event]
    if handler in target:
        target.remove(handler)


def publish(event: str, payload: dict, *, subject: models.Model | None = None, envelope: dict | None = None,
            webhooks: bool = True) -> None:
    """Announce ``event``: webhook deliveries now (in the caller's
    transaction), in-process subscribers after commit."""
    if webhooks:
        from apps.core.webhooks.delivery import webhooks_emit

        webhooks_emit(event=event, payload=payload, subject=subject, envelope=envelope)
    transaction.on_commit(lambda: dispatch(event, payload))


def dispatch(event: str, payload: dict) -> None:
    for handler in [*_subscribers.get(event, ()), *_wildcard]:
        try:
            handler(event, payload)
        except Exception:  # a subscriber must never break the publisher
            logger.exception("event handler %r failed for %s", handler, event)
