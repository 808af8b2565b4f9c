"""Webhooks and notifications as a platform facility.

Any app publishes a domain event with ``apps.core.events.publish(event,
payload, subject=obj)``; the facility writes a delivery for every matching
subscription in the publisher's transaction and a worker sends it, signed,
with durable retries. Modules:

* ``models``        subscriptions, deliveries (the outbox) and attempts;
* ``subscriptions`` creating and changing subscriptions, event-name syntax;
* ``delivery``      the outbox, one attempt at a time, the sweep of lost sends;
* ``subjects``      objects a subscription may be scoped to, named by their apps;
* ``selectors``     what a user may see of subscriptions and deliveries;
* ``signing``       the HMAC-SHA256 signature header (no Django: receivers may copy it);
* ``outbound``      the refusal of private and link-local destinations (SSRF);
* ``admin``, ``api``  the Django admin and ``/api/v1/webhooks/``.

The Celery tasks are ``apps.core.tasks.webhook_delivery_send`` and
``webhook_delivery_sweep`` (queue ``default``). Nothing here is imported by
this ``__init__``: ``apps/core/models.py`` loads ``models`` early.
"""
