"""Domain events: how a lower app tells higher apps that something happened.

A service publishes inside its transaction; subscribers run after commit (or
not at all when the transaction rolls back). Higher apps subscribe in their
``AppConfig.ready()``. Handlers should be quick (enqueue a task); an error in
one handler is logged and does not stop the others.

Event names are ``<app>.<entity>.<happened>``, e.g.
``registry.model_version.stage_changed``; the payload is JSON-safe.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

from django.db import transaction

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


def publish(event: str, payload: dict) -> None:
    transaction.on_commit(lambda: dispatch(event, payload))


def dispatch(event: str, payload: dict) -> None:
    for handler in [*_subscribers.get(event, ()), *_wildcard]:
        try:
            handler(event, payload)
        except Exception:  # a subscriber must never break the publisher
            logger.exception("event handler %r failed for %s", handler, event)
